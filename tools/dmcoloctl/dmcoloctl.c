// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmcoloctl: set up and drive dm-colo block replication.
 *
 * Exit status: 0 success, 1 the operation failed, 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include <libdevmapper.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "version", "", "show the tool's version and the loaded dm-colo targets' versions",
	  cmd_version },
	{ "help", "[COMMAND]", "show this help, or one command's", cmd_help },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: dmcoloctl [--help|--version] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(out, "  %-10s %-12s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(out, "\nexit status: 0 success, 1 the operation failed, 2 bad usage\n");
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int wants_help(int argc, char **argv)
{
	return argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
}

static void command_usage(const struct command *c)
{
	printf("usage: dmcoloctl %s %s\n  %s\n", c->name, c->args, c->help);
}

/* Print every loaded target whose name starts with "colo-". */
static int print_target_versions(void)
{
	struct dm_versions *target, *last;
	struct dm_task *dmt;
	int found = 0;

	dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
	if (!dmt)
		return -1;
	if (!dm_task_run(dmt)) {
		dm_task_destroy(dmt);
		return -1;
	}
	target = dm_task_get_versions(dmt);
	do {
		last = target;
		if (!strncmp(target->name, "colo-", 5)) {
			printf("target %s v%u.%u.%u\n", target->name, target->version[0],
			       target->version[1], target->version[2]);
			found = 1;
		}
		target = (struct dm_versions *)((char *)target + target->next);
	} while (last != target);
	dm_task_destroy(dmt);
	if (!found)
		printf("no dm-colo target loaded (modprobe dm-colo)\n");
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "dmcoloctl version: unexpected argument '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	printf("dmcoloctl %s\n", DMCOLOCTL_VERSION);
	if (print_target_versions()) {
		fprintf(stderr, "dmcoloctl: cannot query device-mapper target versions\n");
		return EXIT_FAILED;
	}
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "dmcoloctl: unknown command '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	command_usage(c);
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "dmcoloctl: unknown command '%s' (see dmcoloctl --help)\n", argv[1]);
		return EXIT_USAGE;
	}
	if (wants_help(argc - 1, argv + 1)) {
		command_usage(c);
		return 0;
	}
	return c->run(argc - 1, argv + 1);
}
