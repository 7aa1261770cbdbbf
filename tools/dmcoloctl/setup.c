// SPDX-License-Identifier: GPL-2.0-only
/* dmcoloctl secondary create, primary create, remove, agent. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "dm.h"
#include "dmcoloctl.h"
#include "nbd.h"
#include "net.h"
#include "options.h"
#include "units.h"

static int valid_dm_name(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n + sizeof(COLO_INGRESS_SUFFIX) <= 120 && !strchr(name, '/') &&
	       name[0] != '.' && !strpbrk(name, " \t\n");
}

/* The options both create commands take: --control-port and the TLS files. */
struct common_opts {
	unsigned int control_port;	/* 0: the NBD port + 1 */
	const char *tls_cert, *tls_key, *tls_ca;
};

#define COMMON_OPTIONS(c) \
	{ "control-port", OPT_PORT, &(c).control_port }, \
	{ "tls-cert", OPT_STRING, &(c).tls_cert }, \
	{ "tls-key", OPT_STRING, &(c).tls_key }, \
	{ "tls-ca", OPT_STRING, &(c).tls_ca }

/* The command's NAME and the TLS files into @st; 0 or EXIT_USAGE. */
static int apply_common(const char *cmd, const char *name, const struct common_opts *c,
			struct node_state *st)
{
	if (!valid_dm_name(name))
		return usage_error(cmd, "bad NAME '%s'", name);
	snprintf(st->tls_cert, sizeof(st->tls_cert), "%s", c->tls_cert ? c->tls_cert : "");
	snprintf(st->tls_key, sizeof(st->tls_key), "%s", c->tls_key ? c->tls_key : "");
	snprintf(st->tls_ca, sizeof(st->tls_ca), "%s", c->tls_ca ? c->tls_ca : "");
	return 0;
}

/* TLS options: all three or none; each a readable file. */
static int check_tls(const char *cmd, struct node_state *st)
{
	const char *files[] = { st->tls_cert, st->tls_key, st->tls_ca };
	int given = !!st->tls_cert[0] + !!st->tls_key[0] + !!st->tls_ca[0], i;

	if (given == 0)
		return 0;
	if (given != 3)
		return usage_error(cmd, "TLS needs all of --tls-cert, --tls-key and --tls-ca");
	char *const dst[] = { st->tls_cert, st->tls_key, st->tls_ca };
	char abs[PATH_MAX];

	for (i = 0; i < 3; i++) {
		/* Absolute: later commands and the server run elsewhere. */
		if (access(files[i], R_OK) || !realpath(files[i], abs)) {
			errorf("%s: %s", files[i], strerror(errno));
			return EXIT_FAILED;
		}
		snprintf(dst[i], PATH_MAX, "%s", abs);
	}
	return 0;
}

static int abs_path(const char *cmd, const char *in, char *out)
{
	if (!realpath(in, out)) {
		errorf("%s: %s: %s", cmd, in, strerror(errno));
		return -1;
	}
	return 0;
}

static void remove_quietly(const char *name)
{
	if (dm_exists(name))
		dm_remove(name);
}

/* Start `dmcoloctl agent NAME` as a daemon; wait until it listens. */
static int spawn_agent(const char *name, const struct node_state *st)
{
	char log[PATH_MAX], pidfile[PATH_MAX], self[PATH_MAX];
	ssize_t n;
	pid_t pid;
	int i, fd;

	state_path(name, "agent.log", log);
	state_path(name, "agent.pid", pidfile);
	unlink(pidfile);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		errorf("cannot find my own executable: %s", strerror(errno));
		return -1;
	}
	self[n] = '\0';
	pid = fork();
	if (pid < 0) {
		errorf("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		setsid();
		if (fork() > 0)
			_exit(0);
		fd = open("/dev/null", O_RDWR);
		dup2(fd, 0);
		dup2(fd, 1);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		execl(self, "dmcoloctl", "agent", name, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		if (pidfile_alive(pidfile, "dmcoloctl") && tcp_port_listening(st->control_port))
			return 0;
		sleep_ms(100);
	}
	errorf("the agent of %s did not start (see %s)", name, log);
	return -1;
}

static void stop_agent(const char *name)
{
	char pidfile[PATH_MAX];
	int pid, i;

	state_path(name, "agent.pid", pidfile);
	pid = pidfile_alive(pidfile, "dmcoloctl");
	if (!pid)
		return;
	kill(pid, SIGTERM);
	for (i = 0; i < 50 && !kill(pid, 0); i++)
		sleep_ms(100);
}

static int secondary_create(int argc, char **argv)
{
	const char *cmd = "secondary", *disk = NULL, *buffer = NULL, *listen = NULL;
	char ingress[256], params[PATH_MAX * 2 + 64], err[512], disk_abs[PATH_MAX];
	char buf_abs[PATH_MAX];
	uint64_t chunk = 65536, disk_bytes, buf_bytes;
	unsigned int disk_lbs, buf_lbs;
	struct node_state st = { .role = ROLE_SECONDARY };
	struct common_opts common = { 0 };
	const struct opt_spec opts[] = {
		{ "disk", OPT_STRING, &disk },
		{ "buffer", OPT_STRING, &buffer },
		{ "chunk", OPT_SIZE, &chunk },
		{ "listen", OPT_STRING, &listen },
		COMMON_OPTIONS(common),
		{ NULL }
	};
	struct stat d1, d2;
	const char *name;
	int r;

	r = parse_options(cmd, argc, argv, opts, &name, 1, 1);
	if (!r)
		r = apply_common(cmd, name, &common, &st);
	if (r)
		return r;
	if (!disk || !buffer || !listen)
		return usage_error(cmd, "--disk, --buffer and --listen are required");
	if (parse_endpoint(listen, DEFAULT_NBD_PORT, st.host, sizeof(st.host), &st.port))
		return usage_error(cmd, "bad --listen '%s' (ADDR, ADDR:PORT or [IPV6]:PORT)",
				   listen);
	st.control_port = common.control_port ? common.control_port : st.port + 1;
	if (st.control_port == st.port || st.control_port > 65535)
		return usage_error(cmd, "the control port must differ from the NBD port");
	if (chunk < 4096 || chunk > (32u << 20) || (chunk & (chunk - 1)))
		return usage_error(cmd, "--chunk must be a power of two from 4k to 32m");
	r = check_tls(cmd, &st);
	if (r)
		return r;
	if (check_target_version(COLO_SECONDARY_TARGET))
		return EXIT_FAILED;
	if (blockdev_info(disk, &disk_bytes, &disk_lbs, err, sizeof(err)) ||
	    blockdev_info(buffer, &buf_bytes, &buf_lbs, err, sizeof(err))) {
		errorf("%s", err);
		return EXIT_FAILED;
	}
	if (!stat(disk, &d1) && !stat(buffer, &d2) && d1.st_rdev == d2.st_rdev) {
		errorf("the buffer %s is the disk %s", buffer, disk);
		return EXIT_FAILED;
	}
	if (buf_bytes < chunk) {
		errorf("buffer %s (%" PRIu64 " bytes) smaller than one chunk (%" PRIu64 " bytes)",
		       buffer, buf_bytes, chunk);
		return EXIT_FAILED;
	}
	if (chunk % disk_lbs || chunk % buf_lbs) {
		errorf("chunk %" PRIu64 " is not a multiple of the logical block size", chunk);
		return EXIT_FAILED;
	}
	if (disk_bytes < 4096 || disk_bytes % disk_lbs) {
		errorf("disk %s is too small", disk);
		return EXIT_FAILED;
	}
	snprintf(ingress, sizeof(ingress), "%s%s", name, COLO_INGRESS_SUFFIX);
	if (dm_exists(name) || dm_exists(ingress)) {
		errorf("%s or %s exists already", name, ingress);
		return EXIT_FAILED;
	}
	if (state_exists(name)) {
		errorf("%s/%s is left from an earlier %s: dmcoloctl remove %s", run_dir(), name,
		       name, name);
		return EXIT_FAILED;
	}
	if (abs_path(cmd, disk, disk_abs) || abs_path(cmd, buffer, buf_abs))
		return EXIT_FAILED;
	snprintf(st.disk, sizeof(st.disk), "%s", disk_abs);
	snprintf(st.buffer, sizeof(st.buffer), "%s", buf_abs);
	st.chunk_bytes = chunk;
	if (state_mkdir(name) || state_save(name, &st)) {
		errorf("cannot write %s/%s: %s", run_dir(), name, strerror(errno));
		return EXIT_FAILED;
	}

	snprintf(params, sizeof(params), "%s %s %" PRIu64, st.disk, st.buffer, chunk >> 9);
	if (dm_create(name, disk_bytes >> 9, COLO_SECONDARY_TARGET, params)) {
		errorf("creating colo-secondary %s: %s (see dmesg)", name, dm_error());
		goto fail;
	}
	snprintf(params, sizeof(params), "%s", st.disk);
	if (dm_create(ingress, disk_bytes >> 9, COLO_INGRESS_TARGET, params)) {
		errorf("creating colo-ingress %s: %s (see dmesg)", ingress, dm_error());
		goto fail;
	}
	if (nbd_server_start(name, &st, err, sizeof(err))) {
		errorf("NBD export of %s on %s port %u: %s", ingress, st.host, st.port, err);
		goto fail;
	}
	if (spawn_agent(name, &st))
		goto fail;
	printf("secondary %s: disk %s, buffer %s (%" PRIu64 " chunks of %" PRIu64 " KiB)\n",
	       name, st.disk, st.buffer, buf_bytes / chunk, chunk >> 10);
	printf("  NBD export '%s' of /dev/mapper/%s on %s port %u%s, agent on port %u\n",
	       name, ingress, st.host, st.port, st.tls_cert[0] ? " (TLS)" : "",
	       st.control_port);
	printf("  the VM's drive: /dev/mapper/%s; start the pair from the primary\n", name);
	return EXIT_OK;

fail:
	stop_agent(name);
	nbd_server_stop(name);
	remove_quietly(ingress);
	remove_quietly(name);
	state_remove(name);
	return EXIT_FAILED;
}

/* `dmcoloctl NODE create ...`: create is the only subcommand. */
static int create_only(const char *node, int argc, char **argv,
		       int (*create)(int argc, char **argv))
{
	if (argc < 2 || strcmp(argv[1], "create"))
		return usage_error(node, "the only subcommand is 'create'");
	return create(argc - 1, argv + 1);
}

int cmd_secondary(int argc, char **argv)
{
	return create_only("secondary", argc, argv, secondary_create);
}

static int primary_create(int argc, char **argv)
{
	const char *cmd = "primary", *disk = NULL, *secondary = NULL, *export = NULL;
	const char *tls_hostname = NULL;
	char params[PATH_MAX + 256], opt_args[128] = "", err[512], disk_abs[PATH_MAX];
	uint64_t inflight = 0, region = 0, disk_bytes, remote_bytes;
	unsigned int lbs, rlbs, nopts = 0;
	struct node_state st = { .role = ROLE_PRIMARY, .nbd_timeout = DEFAULT_NBD_TIMEOUT,
				 .nbd_connections = 1 };
	struct common_opts common = { 0 };
	int r, sync_mode = 0, nosync = 0, len;
	const struct opt_spec opts[] = {
		{ "disk", OPT_STRING, &disk },
		{ "secondary", OPT_STRING, &secondary },
		{ "export", OPT_STRING, &export },
		{ "sync", OPT_FLAG, &sync_mode },
		{ "max-inflight", OPT_SIZE, &inflight },
		{ "region", OPT_SIZE, &region },
		{ "nosync", OPT_FLAG, &nosync },
		{ "timeout", OPT_COUNT, &st.nbd_timeout },
		{ "connections", OPT_COUNT, &st.nbd_connections },
		{ "tls-hostname", OPT_STRING, &tls_hostname },
		COMMON_OPTIONS(common),
		{ NULL }
	};
	const char *name;

	r = parse_options(cmd, argc, argv, opts, &name, 1, 1);
	if (!r)
		r = apply_common(cmd, name, &common, &st);
	if (r)
		return r;
	if (inflight && (inflight < 4096 || inflight > (4ULL << 30) || inflight % 1024))
		return usage_error(cmd, "--max-inflight must be 4k to 4g");
	if (region && (region < 4096 || region > (1ULL << 30) || (region & (region - 1))))
		return usage_error(cmd, "--region must be a power of two from 4k to 1g");
	if (st.nbd_timeout < 1 || st.nbd_timeout > 3600)
		return usage_error(cmd, "--timeout must be 1 to 3600 seconds");
	/*
	 * With several sockets the kernel's NBD client resends a timed-out
	 * request on another one while the first server process may still
	 * apply it, after a newer overlapping write: a stale write on the
	 * secondary that nothing reports (dm-colo.rst, "What the NBD export
	 * must do").
	 */
	if (st.nbd_connections != 1)
		return usage_error(cmd, "--connections must be 1: with several NBD sockets a timed-out write is resent on another while the first may still land after a newer one");
	if (tls_hostname)
		snprintf(st.tls_hostname, sizeof(st.tls_hostname), "%s", tls_hostname);
	if (st.tls_hostname[0] && !st.tls_cert[0])
		return usage_error(cmd, "--tls-hostname needs the TLS options");
	if (!disk || !secondary)
		return usage_error(cmd, "--disk and --secondary are required");
	if (parse_endpoint(secondary, DEFAULT_NBD_PORT, st.host, sizeof(st.host), &st.port))
		return usage_error(cmd, "bad --secondary '%s' (HOST, HOST:PORT or [IPV6]:PORT)",
				   secondary);
	st.control_port = common.control_port ? common.control_port : st.port + 1;
	if (st.control_port > 65535)
		return usage_error(cmd, "bad control port");
	export = export ? export : name;
	if (!valid_dm_name(export))
		return usage_error(cmd, "bad --export '%s'", export);
	snprintf(st.export_name, sizeof(st.export_name), "%s", export);
	r = check_tls(cmd, &st);
	if (r)
		return r;
	if (check_target_version(COLO_PRIMARY_TARGET))
		return EXIT_FAILED;
	if (blockdev_info(disk, &disk_bytes, &lbs, err, sizeof(err))) {
		errorf("%s", err);
		return EXIT_FAILED;
	}
	if (dm_exists(name)) {
		errorf("%s exists already", name);
		return EXIT_FAILED;
	}
	if (state_exists(name)) {
		errorf("%s/%s is left from an earlier %s: dmcoloctl remove %s", run_dir(), name,
		       name, name);
		return EXIT_FAILED;
	}
	if (abs_path(cmd, disk, disk_abs))
		return EXIT_FAILED;
	snprintf(st.disk, sizeof(st.disk), "%s", disk_abs);
	if (nbd_free_device(st.nbd_dev, err, sizeof(err))) {
		errorf("%s", err);
		return EXIT_FAILED;
	}
	if (state_mkdir(name) || state_save(name, &st)) {
		errorf("cannot write %s/%s: %s", run_dir(), name, strerror(errno));
		return EXIT_FAILED;
	}
	if (nbd_client_connect(st.nbd_dev, &st, err, sizeof(err))) {
		errorf("secondary %s port %u: %s", st.host, st.port, err);
		state_remove(name);
		return EXIT_PEER;
	}
	if (blockdev_info(st.nbd_dev, &remote_bytes, &rlbs, err, sizeof(err))) {
		errorf("%s", err);
		goto fail;
	}
	if (remote_bytes < disk_bytes) {
		errorf("the secondary's export %s (%" PRIu64 " bytes) is smaller than %s (%"
		       PRIu64 " bytes)", export, remote_bytes, disk, disk_bytes);
		goto fail;
	}
	len = 0;
	if (sync_mode) {
		len += snprintf(opt_args + len, sizeof(opt_args) - len, " mode sync");
		nopts += 2;
	}
	if (inflight) {
		len += snprintf(opt_args + len, sizeof(opt_args) - len, " max_inflight_kb %" PRIu64,
				inflight >> 10);
		nopts += 2;
	}
	if (region) {
		if (region > disk_bytes)
			region = disk_bytes & ~(disk_bytes - 1);
		len += snprintf(opt_args + len, sizeof(opt_args) - len, " region_sectors %" PRIu64,
				region >> 9);
		nopts += 2;
	}
	if (nosync) {
		snprintf(opt_args + len, sizeof(opt_args) - len, " nosync");
		nopts += 1;
	}
	if (nopts)
		snprintf(params, sizeof(params), "%s %s %u%s", st.disk, st.nbd_dev, nopts, opt_args);
	else
		snprintf(params, sizeof(params), "%s %s", st.disk, st.nbd_dev);
	if (dm_create(name, disk_bytes >> 9, COLO_PRIMARY_TARGET, params)) {
		errorf("creating colo-primary %s: %s (see dmesg)", name, dm_error());
		goto fail;
	}
	printf("primary %s: disk %s, secondary %s port %u export '%s' on %s%s (timeout %u s, "
	       "%u connection%s)\n", name, st.disk, st.host, st.port, export, st.nbd_dev,
	       st.tls_cert[0] ? " over TLS" : "", st.nbd_timeout, st.nbd_connections,
	       st.nbd_connections == 1 ? "" : "s");
	printf("  the VM's drive: /dev/mapper/%s; next: dmcoloctl start %s\n", name, name);
	return EXIT_OK;

fail:
	nbd_client_disconnect(st.nbd_dev);
	state_remove(name);
	return EXIT_FAILED;
}

int cmd_primary(int argc, char **argv)
{
	return create_only("primary", argc, argv, primary_create);
}

int cmd_remove(int argc, char **argv)
{
	int failed = 0, force = 0, r;
	const struct opt_spec opts[] = { { "force", OPT_FLAG, &force }, { NULL } };
	struct colo_device dev;
	char ingress[256];
	struct node_state st;
	const char *name;

	r = parse_options("remove", argc, argv, opts, &name, 1, 1);
	if (r)
		return r;
	if (load_state(name, &st))
		return EXIT_FAILED;
	if (dm_exists(name) && dm_open_count(name) > 0) {
		errorf("%s is in use (a VM or a file system has it open): stop that first", name);
		return EXIT_FAILED;
	}
	/*
	 * A merge with failed chunks keeps the secondary's writes in the
	 * buffer only. The kernel keeps that buffer for a colo-secondary over
	 * the same devices, but a removal is rarely what the operator meant.
	 */
	if (st.role == ROLE_SECONDARY && !force && dm_exists(name) &&
	    !colo_device_status(name, &dev, 1) && dev.kind == COLO_KIND_SECONDARY &&
	    !strcmp(dev.sec.state, COLO_ST_MERGING) && !strcmp(dev.sec.error, COLO_ERR_MERGE_FAILED)) {
		errorf("%s: the failover merge has failed chunks, whose secondary writes are only in the buffer: repair the disk and run failover again; --force removes it, and the kernel keeps them for a secondary created again over the same devices",
		       name);
		return EXIT_STATE;
	}
	if (st.role == ROLE_SECONDARY) {
		snprintf(ingress, sizeof(ingress), "%s%s", name, COLO_INGRESS_SUFFIX);
		/* The export first: no primary write may arrive half-way. */
		stop_agent(name);
		nbd_server_stop(name);
		if (dm_exists(ingress) && dm_remove(ingress)) {
			errorf("removing %s: %s", ingress, dm_error());
			failed = 1;
		}
		if (!failed && dm_exists(name) && dm_remove(name)) {
			errorf("removing %s: %s (in use by a VM?)", name, dm_error());
			failed = 1;
		}
	} else {
		if (dm_exists(name) && dm_remove(name)) {
			errorf("removing %s: %s (in use by a VM?)", name, dm_error());
			return EXIT_FAILED;
		}
		if (st.nbd_dev[0] && nbd_client_disconnect(st.nbd_dev)) {
			errorf("disconnecting %s failed", st.nbd_dev);
			failed = 1;
		}
	}
	if (failed)
		return EXIT_FAILED;
	state_remove(name);
	printf("removed %s\n", name);
	return EXIT_OK;
}

int cmd_agent(int argc, char **argv)
{
	const char *name;
	int r = parse_options("agent", argc, argv, NULL, &name, 1, 1);

	return r ? r : agent_run(name) ? EXIT_FAILED : EXIT_OK;
}
