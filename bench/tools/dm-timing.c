// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-timing: time device-mapper operations from one process, with
 * libdevmapper, so that a fork and exec of dmsetup (tens of milliseconds
 * under TCG) is not part of what is measured.
 *
 *   dm-timing message NAME TEXT
 *       the message ioctl alone
 *   dm-timing message-until NAME TEXT STATE [TIMEOUT_S]
 *       the message, then until the first status word is STATE (polled
 *       every 2 ms, which costs the emulated CPU little): a failover until
 *       the merge has ended
 *   dm-timing snapshot-recreate ORIGIN SNAPSHOT
 *       the stock way to drop a snapshot's exceptions: suspend the origin,
 *       remove the snapshot, create it again with the same table, resume
 *       the origin
 *   dm-timing snapshot-merge ORIGIN SNAPSHOT [TIMEOUT_S]
 *       the stock merge: suspend the origin and the snapshot, reload the
 *       snapshot as snapshot-merge with the same arguments, resume both, and
 *       wait until its status says every chunk is merged
 *
 * Prints the elapsed time in milliseconds (one line, "%.3f"). The clock
 * starts after a first ioctl on the device: libdevmapper's one-time set-up
 * (opening the control node, the version check) is not measured.
 * Exit: 0 done, 1 an operation failed or timed out, 2 bad usage.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-dm.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(const char *what, const char *name)
{
	fprintf(stderr, "dm-timing: %s %s failed\n", what, name);
	return 1;
}

static int first_word_is(const char *name, const char *state)
{
	uint64_t len;
	char *target, *params;
	size_t n = strlen(state);
	int is;

	if (!test_dm_target(DM_DEVICE_STATUS, name, &len, &target, &params))
		return -1;
	is = !strncmp(params, state, n) && (params[n] == ' ' || !params[n]);
	free(target);
	free(params);
	return is;
}

/* snapshot-merge status: "<allocated>/<total> <metadata>"; done when equal. */
static int merge_done(const char *name, const char *unused)
{
	uint64_t len, allocated, total, metadata;
	char *target, *params;
	int done;

	if (!test_dm_target(DM_DEVICE_STATUS, name, &len, &target, &params))
		return -1;
	done = sscanf(params, "%" SCNu64 "/%" SCNu64 " %" SCNu64, &allocated, &total,
		      &metadata) == 3 && allocated == metadata;
	free(target);
	free(params);
	(void)unused;
	return done;
}

/*
 * Poll @done(name, arg) every 2 ms until it holds; print the time since
 * @start. Returns main's exit status.
 */
static int wait_until(int (*done)(const char *, const char *), const char *name,
		      const char *arg, double start, double timeout_ms)
{
	int r;

	while ((r = done(name, arg)) == 0) {
		if (now_ms() - start > timeout_ms) {
			fprintf(stderr, "dm-timing: %s: not done after %.0f ms\n", name,
				timeout_ms);
			return 1;
		}
		usleep(2000);
	}
	if (r < 0)
		return fail("status", name);
	printf("%.3f\n", now_ms() - start);
	return 0;
}

/* The snapshot's table, checked to be one: snapshot <origin> <cow> ... */
static int snapshot_table(const char *snap, uint64_t *len, char **target, char **params)
{
	return test_dm_target(DM_DEVICE_TABLE, snap, len, target, params) &&
	       !strcmp(*target, "snapshot");
}

static int cmd_message_until(const char *name, const char *text, const char *state,
			     double timeout_ms)
{
	double start = now_ms();

	if (!test_dm_message(name, text))
		return fail("message", name);
	return wait_until(first_word_is, name, state, start, timeout_ms);
}

/*
 * Drop a snapshot's exceptions the stock ways: recreate it (suspend the
 * origin, remove the snapshot, create it again with the same table, resume
 * the origin), or merge it (suspend both, reload the snapshot as
 * snapshot-merge with the same arguments, resume both, wait until every
 * chunk is merged).
 */
static int cmd_snapshot(const char *origin, const char *snap, bool merge, double timeout_ms)
{
	uint64_t len;
	char *target, *params;
	double start;
	int r = 0;

	if (!snapshot_table(snap, &len, &target, &params))
		return fail("reading the snapshot table of", snap);
	start = now_ms();
	if (!test_dm_simple(DM_DEVICE_SUSPEND, origin))
		r = fail("suspend", origin);
	else if (merge && !test_dm_simple(DM_DEVICE_SUSPEND, snap))
		r = fail("suspend", snap);
	else if (!merge && !test_dm_simple(DM_DEVICE_REMOVE, snap))
		r = fail("remove", snap);
	else if (!test_dm_load(merge ? DM_DEVICE_RELOAD : DM_DEVICE_CREATE, snap, len,
			       merge ? "snapshot-merge" : target, params, NULL, 0))
		r = fail(merge ? "reload as snapshot-merge" : "create", snap);
	else if (merge && !test_dm_simple(DM_DEVICE_RESUME, snap))
		r = fail("resume", snap);
	else if (!test_dm_simple(DM_DEVICE_RESUME, origin))
		r = fail("resume", origin);
	free(target);
	free(params);
	if (r || merge)
		return r ? r : wait_until(merge_done, snap, NULL, start, timeout_ms);
	printf("%.3f\n", now_ms() - start);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: dm-timing message NAME TEXT\n"
		"       dm-timing message-until NAME TEXT STATE [TIMEOUT_S]\n"
		"       dm-timing snapshot-recreate ORIGIN SNAPSHOT\n"
		"       dm-timing snapshot-merge ORIGIN SNAPSHOT [TIMEOUT_S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double start, timeout_ms = 600e3;

	if (argc < 2)
		usage();
	dm_log_init_verbose(0);
	if (argc >= 3 && !test_dm_simple(DM_DEVICE_INFO, argv[2]))
		return fail("info", argv[2]);
	if (!strcmp(argv[1], "message") && argc == 4) {
		start = now_ms();
		if (!test_dm_message(argv[2], argv[3]))
			return fail("message", argv[2]);
		printf("%.3f\n", now_ms() - start);
		return 0;
	}
	if (!strcmp(argv[1], "message-until") && (argc == 5 || argc == 6)) {
		if (argc == 6)
			timeout_ms = atof(argv[5]) * 1e3;
		return cmd_message_until(argv[2], argv[3], argv[4], timeout_ms);
	}
	if (!strcmp(argv[1], "snapshot-recreate") && argc == 4)
		return cmd_snapshot(argv[2], argv[3], false, 0);
	if (!strcmp(argv[1], "snapshot-merge") && (argc == 4 || argc == 5)) {
		if (argc == 5)
			timeout_ms = atof(argv[4]) * 1e3;
		return cmd_snapshot(argv[2], argv[3], true, timeout_ms);
	}
	usage();
	return 2;
}
