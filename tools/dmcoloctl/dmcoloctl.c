// SPDX-License-Identifier: GPL-2.0-only
/*
 * dmcoloctl: set up and drive dm-colo block replication on two nodes.
 *
 * The subcommands live in setup.c (create, remove), control.c (start, stop,
 * resync, failover, checkpoint), show.c (status, watch) and agent.c; this
 * file holds the command table, help and what they share. Each command
 * parses its line with parse_options() (options.c) from a table of its
 * options; the targets' status fields are one table each (colo-abi.c), the
 * tool's state file one table (state.c); libdevmapper is only in dm.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dm.h"
#include "dmcoloctl.h"
#include "options.h"

struct command {
	const char *name;
	const char *args;
	const char *summary;
	const char *help;	/* options, one per line */
	int (*run)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "secondary", "create NAME --disk DEV --buffer DEV --listen ADDR[:PORT] [options]",
	  "create the secondary node: colo-secondary NAME, colo-ingress NAME-ingress, "
	  "its NBD export and the agent",
	  "  --disk DEV          the secondary disk\n"
	  "  --buffer DEV        the disk buffer (holds one epoch's chunks)\n"
	  "  --chunk SIZE        chunk size, 4k to 32m, a power of two (default 64k)\n"
	  "  --listen ADDR[:PORT]  where the NBD export listens (default port 10809)\n"
	  "  --control-port N    the agent's port (default: the NBD port + 1)\n"
	  "  --tls-cert FILE --tls-key FILE --tls-ca FILE\n"
	  "                      serve NBD over TLS only (TLS 1.2), and require a\n"
	  "                      client certificate signed by the CA\n",
	  cmd_secondary },
	{ "primary", "create NAME --disk DEV --secondary HOST[:PORT] [options]",
	  "create the primary node: connect a free /dev/nbdX to the secondary and "
	  "colo-primary NAME over DEV and it",
	  "  --disk DEV          the primary disk\n"
	  "  --secondary HOST[:PORT]  the secondary's NBD export (default port 10809)\n"
	  "  --export NAME       the secondary's NAME (default: this NAME)\n"
	  "  --control-port N    the secondary agent's port (default: NBD port + 1)\n"
	  "  --sync              complete writes only when the secondary has them\n"
	  "  --max-inflight SIZE bound on data in flight to the secondary (default 16m)\n"
	  "  --region SIZE       dirty-log region, 4k to 1g, a power of two (default 512k)\n"
	  "  --nosync            the disks are known identical: start copies only\n"
	  "                      what is written from now on\n"
	  "  --timeout SECONDS   NBD request timeout (default 10; never none)\n"
	  "  --connections N     NBD sockets: only 1 (with several, a timed-out\n"
	  "                      write is resent on another socket and may be\n"
	  "                      overtaken by the first)\n"
	  "  --tls-cert FILE --tls-key FILE --tls-ca FILE\n"
	  "                      connect over TLS with this client certificate\n"
	  "  --tls-hostname NAME the name or address the secondary's certificate\n"
	  "                      must carry (default: the --secondary address)\n",
	  cmd_primary },
	{ "start", "NAME [--full] [--no-wait] [--local]",
	  "primary: bring the pair up: initial sync, then start the secondary",
	  "  On the primary: checks the secondary is idle, starts the sync (only\n"
	  "  what differs; --full copies everything), follows it to the end, makes\n"
	  "  a checkpoint barrier and starts the secondary (its next epoch begins).\n"
	  "  Run it again after --no-wait to finish. The secondary must stay idle\n"
	  "  during the sync, so the pair is started from the primary.\n"
	  "  --local             only this node's start message (either node)\n",
	  cmd_start },
	{ "stop", "NAME", "end replication on this node (the device stays usable)", "",
	  cmd_stop },
	{ "resync", "NAME [--full]",
	  "primary, degraded: reconnect the NBD link, copy what differs",
	  "  --full              copy every region (the secondary disk was replaced\n"
	  "                      or its node crashed)\n",
	  cmd_resync },
	{ "failover", "NAME [--no-wait]",
	  "secondary: take over: fence the primary, merge the buffer into the disk",
	  "  Stops the NBD export, sends failover and follows the merge; the\n"
	  "  disk then holds the last checkpoint plus the secondary's writes.\n",
	  cmd_failover },
	{ "checkpoint", "NAME [--local]",
	  "primary: the two-node checkpoint (primary barrier, then the secondary's)",
	  "  Prints the time of each step. A retry after a lost reply is never\n"
	  "  applied twice (epoch numbers).\n"
	  "  --local             only this node's checkpoint message (either node)\n",
	  cmd_checkpoint },
	{ "status", "[NAME] [--json]", "show dm-colo devices: state, epoch, progress, errors",
	  "  --json              one JSON object per device, in an array\n", cmd_status },
	{ "watch", "NAME", "follow a sync or a failover merge until it ends", "", cmd_watch },
	{ "remove", "NAME [--force]", "tear NAME down: dm devices, NBD server or client, agent",
	  "  --force             also a secondary whose merge has failed chunks (the\n"
	  "                      kernel keeps their writes for a secondary created\n"
	  "                      again over the same devices)\n",
	  cmd_remove },
	{ "agent", "NAME", "the secondary's control agent (started by secondary create)", "",
	  cmd_agent },
	{ "version", "", "show the tool's version and the loaded dm-colo module's and targets' versions", "",
	  cmd_version },
	{ "help", "[COMMAND]", "show this help, or one command's", "", cmd_help },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: dmcoloctl [--help|--version] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n`dmcoloctl help COMMAND` or `dmcoloctl COMMAND --help` for one command.\n"
		"exit status: 0 success, 1 the operation failed, 2 bad usage,\n"
		"3 the other node is unreachable, 4 the device is in the wrong state\n");
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void command_usage(const struct command *c)
{
	printf("usage: dmcoloctl %s%s%s\n  %s\n%s%s", c->name, c->args[0] ? " " : "",
	       c->args, c->summary, c->help[0] ? "\n" : "", c->help);
}

void errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("dmcoloctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dmcoloctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see dmcoloctl %s --help)\n", cmd);
	return EXIT_USAGE;
}

int blockdev_info(const char *path, uint64_t *bytes, unsigned int *lbs, char *err, size_t len)
{
	struct stat sb;
	int fd, ssz = 512;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) || !S_ISBLK(sb.st_mode)) {
		snprintf(err, len, "%s is not a block device", path);
		close(fd);
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, bytes) || ioctl(fd, BLKSSZGET, &ssz)) {
		snprintf(err, len, "%s: cannot read its size: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	*lbs = ssz;
	return 0;
}

int check_target_version(const char *target)
{
	uint32_t v[3];
	int r = dm_target_version(target, v);

	if (r == -2) {
		errorf("cannot query device-mapper: %s", dm_error());
		return -1;
	}
	if (r)
		return 0;	/* not loaded: creating a table will load it */
	if (v[0] != COLO_TARGET_MAJOR) {
		errorf("the kernel's %s is v%u.%u.%u; this dmcoloctl knows v%u.x only "
		       "(install the dmcoloctl that came with the module)",
		       target, v[0], v[1], v[2], COLO_TARGET_MAJOR);
		return -1;
	}
	return 0;
}

int colo_device_status(const char *name, struct colo_device *dev, int quiet)
{
	char type[64], params[1024];
	int r = -1;

	memset(dev, 0, sizeof(*dev));
	if (dm_status(name, type, sizeof(type), params, sizeof(params))) {
		if (!quiet)
			errorf("%s: %s", name, dm_exists(name) ? dm_error() : "no such device");
		return -1;
	}
	dev->kind = colo_kind_of(type);
	if (dev->kind == COLO_KIND_NONE) {
		if (!quiet)
			errorf("%s is a %s device, not dm-colo", name, type);
		return -1;
	}
	if (check_target_version(type))
		return -1;
	switch (dev->kind) {
	case COLO_KIND_SECONDARY:
		r = colo_parse_secondary(params, &dev->sec);
		break;
	case COLO_KIND_INGRESS:
		r = colo_parse_ingress(params, &dev->ing);
		break;
	case COLO_KIND_PRIMARY:
		r = colo_parse_primary(params, &dev->pri);
		break;
	case COLO_KIND_NONE:
		break;
	}
	if (r && !quiet)
		errorf("%s: cannot parse the %s status \"%s\"", name, type, params);
	return r;
}

int load_state(const char *name, struct node_state *st)
{
	if (state_load(name, st) == 0)
		return 0;
	errorf("%s was not set up by dmcoloctl (no %s/%s/state)", name, run_dir(), name);
	return -1;
}

/* One line of a /sys/module/dm_colo file, or "" when it is not there. */
static void read_module_attr(const char *attr, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/sys/module/dm_colo/%s", attr);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/*
 * The loaded module's release (MODULE_VERSION) and srcversion, a checksum
 * of its sources that modinfo shows for a module file too: together they
 * tell which build is running.
 */
static void print_module_version(void)
{
	char version[64], srcversion[64], initstate[16];

	if (access("/sys/module/dm_colo", F_OK)) {
		printf("module dm-colo not loaded\n");
		return;
	}
	read_module_attr("version", version, sizeof(version));
	read_module_attr("srcversion", srcversion, sizeof(srcversion));
	read_module_attr("initstate", initstate, sizeof(initstate));
	printf("module dm-colo %s", version[0] ? version : "(no version)");
	if (srcversion[0])
		printf(", srcversion %s", srcversion);
	printf("%s\n", initstate[0] ? "" : ", built into the kernel");
}

static int cmd_version(int argc, char **argv)
{
	static const char *const targets[] = {
		COLO_SECONDARY_TARGET, COLO_INGRESS_TARGET, COLO_PRIMARY_TARGET
	};
	unsigned int i, found = 0;
	uint32_t v[3];
	int r = parse_options("version", argc, argv, NULL, NULL, 0, 0);

	if (r)
		return r;
	printf("dmcoloctl %s (targets v%u.x)\n", DMCOLOCTL_VERSION, COLO_TARGET_MAJOR);
	print_module_version();
	for (i = 0; i < 3; i++) {
		r = dm_target_version(targets[i], v);
		if (r == -2) {
			printf("device-mapper unavailable: %s\n", dm_error());
			return EXIT_OK;
		}
		if (r)
			continue;
		printf("target %s v%u.%u.%u%s\n", targets[i], v[0], v[1], v[2],
		       v[0] != COLO_TARGET_MAJOR ? " (not supported by this dmcoloctl)" : "");
		found++;
	}
	if (!found)
		printf("no dm-colo target loaded (modprobe dm-colo)\n");
	return EXIT_OK;
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stdout);
		return EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c) {
		errorf("unknown command '%s'", argv[1]);
		return EXIT_USAGE;
	}
	command_usage(c);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct command *c;
	int i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return EXIT_OK;
	}
	dm_quiet();
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	c = find_command(argv[1]);
	if (!c) {
		errorf("unknown command '%s' (see dmcoloctl --help)", argv[1]);
		return EXIT_USAGE;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			command_usage(c);
			return EXIT_OK;
		}
	}
	return c->run(argc - 1, argv + 1);
}
