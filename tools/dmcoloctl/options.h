/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dmcoloctl's one command-line parser: each command gives a table of its
 * options, getopt_long does the rest. Option values are parsed by their
 * kind (sizes, ports and counts each by their own parser in units.c);
 * range checks that depend on the command stay with the command.
 */
#ifndef DMCOLOCTL_OPTIONS_H
#define DMCOLOCTL_OPTIONS_H

#include <stdint.h>

enum opt_kind {
	OPT_FLAG,	/* int *: 1 when given */
	OPT_STRING,	/* const char **: the argument as given */
	OPT_SIZE,	/* uint64_t *: parse_size() */
	OPT_PORT,	/* unsigned int *: parse_port() */
	OPT_COUNT,	/* unsigned int *: parse_count() */
};

struct opt_spec {
	const char *name;	/* the long option without "--"; NULL ends a table */
	enum opt_kind kind;
	void *value;
};

/*
 * Parse argv[1..] (argv[0] names the command in errors): the options of
 * @specs (may be NULL), anywhere on the line, and from @min to @max NAMEs
 * into @names. 0, or EXIT_USAGE after printing why.
 */
int parse_options(const char *cmd, int argc, char **argv, const struct opt_spec *specs,
		  const char **names, int min, int max);

#endif
