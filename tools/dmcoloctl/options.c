// SPDX-License-Identifier: GPL-2.0-only
/* dmcoloctl's command-line parser (see options.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "dmcoloctl.h"
#include "options.h"
#include "units.h"

#define MAX_OPTIONS 32

static int set_value(const char *cmd, const struct opt_spec *o, const char *arg)
{
	switch (o->kind) {
	case OPT_FLAG:
		*(int *)o->value = 1;
		return 0;
	case OPT_STRING:
		*(const char **)o->value = arg;
		return 0;
	case OPT_SIZE:
		if (!parse_size(arg, o->value))
			return 0;
		break;
	case OPT_PORT:
		if (!parse_port(arg, o->value))
			return 0;
		break;
	case OPT_COUNT:
		if (!parse_count(arg, o->value))
			return 0;
		break;
	}
	return usage_error(cmd, "bad --%s '%s'", o->name, arg);
}

int parse_options(const char *cmd, int argc, char **argv, const struct opt_spec *specs,
		  const char **names, int min, int max)
{
	struct option longopts[MAX_OPTIONS + 1] = { { 0 } };
	int i, n = 0, c, r;

	for (i = 0; specs && specs[i].name; i++) {
		if (i == MAX_OPTIONS)
			return usage_error(cmd, "too many options in the command table");
		longopts[i].name = specs[i].name;
		longopts[i].has_arg = specs[i].kind == OPT_FLAG ? no_argument : required_argument;
		longopts[i].val = 256 + i;
	}
	opterr = 0;
	optind = 0;	/* glibc: start afresh */
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == ':')
			return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		if (c < 256)
			return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		r = set_value(cmd, &specs[c - 256], optarg);
		if (r)
			return r;
	}
	for (i = optind; i < argc; i++) {
		/* Every command takes one NAME at most. */
		if (!max)
			return usage_error(cmd, "unexpected argument '%s'", argv[i]);
		if (n == max)
			return min == max ? usage_error(cmd, "want exactly one NAME") :
					    usage_error(cmd, "at most one NAME");
		names[n++] = argv[i];
	}
	if (n < min)
		return usage_error(cmd, "want a NAME");
	return 0;
}
