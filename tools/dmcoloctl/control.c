// SPDX-License-Identifier: GPL-2.0-only
/* dmcoloctl start, stop, resync, failover, checkpoint. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "dm.h"
#include "dmcoloctl.h"
#include "nbd.h"
#include "options.h"

#define AGENT_TIMEOUT_MS 60000
#define CHECKPOINT_TRIES 3

/*
 * The start of every command on one device: NAME and its options, then the
 * device's status. 0, or the exit status to return.
 */
static int open_device(const char *cmd, int argc, char **argv, const struct opt_spec *opts,
		       const char **name, struct colo_device *dev)
{
	int r = parse_options(cmd, argc, argv, opts, name, 1, 1);

	if (r)
		return r;
	return colo_device_status(*name, dev, 0) ? EXIT_FAILED : 0;
}

/*
 * The two-node commands run on the primary; hint says what to do on the
 * other node. 0, or the exit status to return.
 */
static int require_primary(const char *name, const struct colo_device *dev, const char *hint)
{
	if (dev->kind == COLO_KIND_PRIMARY)
		return 0;
	errorf("%s is not a colo-primary%s", name, hint);
	return EXIT_USAGE;
}

/*
 * ... in the state it needs; else the error names what to run first where
 * one command leads there (start from idle, resync from degraded).
 */
static int require_state(const char *name, const struct colo_device *dev, const char *want)
{
	const char *now = dev->pri.state;

	if (!strcmp(now, want))
		return 0;
	errorf("%s is %s, not %s%s", name, now, want,
	       !strcmp(now, COLO_ST_IDLE) ? ": dmcoloctl start first" :
	       !strcmp(now, COLO_ST_DEGRADED) ? ": dmcoloctl resync first" : "");
	return EXIT_STATE;
}

static int message(const char *name, const char *msg)
{
	if (dm_message(name, msg)) {
		errorf("%s: %s: %s (the kernel log says why: dmesg | grep colo)", name, msg,
		       dm_error());
		return -1;
	}
	return 0;
}

/* --local: the message to this node's device only (not a colo-ingress). */
static int local_message(const char *cmd, const char *name, const struct colo_device *dev,
			 const char *msg)
{
	long long t0 = now_ms();

	if (dev->kind == COLO_KIND_INGRESS)
		return usage_error(cmd, "%s is a colo-ingress", name);
	if (message(name, msg))
		return EXIT_FAILED;
	printf("%s: %s (local) %lld ms\n", name, cmd, now_ms() - t0);
	return EXIT_OK;
}

static int agent_state_error(const struct agent_reply *rep)
{
	return !strncmp(rep->error, AGENT_STATE_ERROR, strlen(AGENT_STATE_ERROR));
}

static int agent(const struct node_state *st, enum agent_verb verb, uint64_t epoch,
		 struct agent_reply *rep)
{
	struct agent_request req = { .verb = verb, .epoch = epoch };
	char err[300];

	snprintf(req.name, sizeof(req.name), "%s", st->export_name);
	if (agent_call(st->host, st->control_port, st->port, &req, rep, AGENT_TIMEOUT_MS, err,
		       sizeof(err))) {
		errorf("secondary: %s", err);
		return EXIT_PEER;
	}
	if (!rep->ok) {
		errorf("secondary: %s", rep->error);
		return agent_state_error(rep) ? EXIT_STATE : EXIT_FAILED;
	}
	return 0;
}

/* Hold NAME's lock until exit: one dmcoloctl command per pair at a time. */
static int lock_pair(const char *name)
{
	if (state_lock(name) < 0) {
		errorf("cannot lock %s/%s", run_dir(), name);
		return -1;
	}
	return 0;
}

/* `start` of the pair, from the primary, with the pair's state locked. */
static int start_pair(const char *name, const struct colo_device *pri, int full, int no_wait)
{
	struct node_state state, *st = &state;
	struct colo_device dev;
	struct agent_reply rep;
	long long t0;
	int r;

	r = require_primary(name, pri, ": start the pair from the primary (the secondary "
			    "stays idle during the initial sync); --local sends start here only");
	if (r)
		return r;
	if (load_state(name, st) || lock_pair(name))
		return EXIT_FAILED;
	r = agent(st, AGENT_STATUS, 0, &rep);
	if (r)
		return r;
	if (colo_device_status(name, &dev, 0))
		return EXIT_FAILED;
	if (!strcmp(rep.state, COLO_ST_RUNNING) && !strcmp(dev.pri.state, COLO_ST_REPLICATING)) {
		/* A start whose reply was lost: take the secondary's epoch now. */
		if (!st->epoch_known) {
			st->epoch = rep.epoch;
			st->epoch_known = 1;
			if (state_save(name, st)) {
				errorf("cannot save %s's epoch", name);
				return EXIT_FAILED;
			}
		}
		printf("%s: already running (secondary epoch %" PRIu64 ")\n", name, rep.epoch);
		return EXIT_OK;
	}
	if (full && strcmp(dev.pri.state, COLO_ST_IDLE)) {
		errorf("%s is %s: --full applies to a start from idle (dmcoloctl resync --full "
		       "when degraded)", name, dev.pri.state);
		return EXIT_STATE;
	}
	if (strcmp(rep.state, COLO_ST_IDLE)) {
		errorf("secondary %s is %s: it must be idle while the primary syncs",
		       st->export_name, rep.state);
		return EXIT_STATE;
	}
	if (!strcmp(dev.pri.state, COLO_ST_IDLE)) {
		if (message(name, full ? COLO_MSG_START_FULL : COLO_MSG_START))
			return EXIT_FAILED;
		printf("%s: sync to %s started%s\n", name, st->export_name, full ? " (full)" : "");
	} else if (!strcmp(dev.pri.state, COLO_ST_DEGRADED)) {
		errorf("%s is degraded (%s): dmcoloctl resync %s", name, dev.pri.error, name);
		return EXIT_STATE;
	}
	if (no_wait) {
		printf("%s: follow it with `dmcoloctl watch %s`, then run `dmcoloctl start %s` "
		       "again\n", name, name, name);
		return EXIT_OK;
	}
	r = follow_progress(name, 0);
	if (r)
		return r;
	/* The disks are equal once every forward is on the secondary. */
	t0 = now_ms();
	if (message(name, COLO_MSG_CHECKPOINT))
		return EXIT_FAILED;
	r = agent(st, AGENT_START, 0, &rep);
	if (r)
		return r;
	st->epoch = rep.epoch;
	st->epoch_known = 1;
	if (state_save(name, st)) {
		errorf("cannot save %s's epoch", name);
		return EXIT_FAILED;
	}
	printf("%s: secondary %s running at epoch %" PRIu64 " (barrier and start %lld ms)\n",
	       name, st->export_name, rep.epoch, now_ms() - t0);
	return EXIT_OK;
}

int cmd_start(int argc, char **argv)
{
	int full = 0, no_wait = 0, local = 0, r;
	const struct opt_spec opts[] = {
		{ "full", OPT_FLAG, &full }, { "no-wait", OPT_FLAG, &no_wait },
		{ "local", OPT_FLAG, &local }, { NULL }
	};
	struct colo_device dev;
	const char *name;

	r = open_device("start", argc, argv, opts, &name, &dev);
	if (r)
		return r;
	if (local)
		return local_message("start", name, &dev, full && dev.kind == COLO_KIND_PRIMARY ?
				     COLO_MSG_START_FULL : COLO_MSG_START);
	return start_pair(name, &dev, full, no_wait);
}

int cmd_stop(int argc, char **argv)
{
	struct colo_device dev;
	const char *name;
	int r;

	r = open_device("stop", argc, argv, NULL, &name, &dev);
	if (r)
		return r;
	if (dev.kind == COLO_KIND_INGRESS)
		return usage_error("stop", "%s is a colo-ingress", name);
	if (message(name, COLO_MSG_STOP))
		return EXIT_STATE;
	printf("%s: stopped\n", name);
	return EXIT_OK;
}

/* Replace the remote (second word) of a colo-primary table line. */
static int table_with_remote(const char *table, const char *remote, char *out, size_t len)
{
	const char *sp1 = strchr(table, ' '), *sp2;

	if (!sp1)
		return -1;
	sp2 = strchr(sp1 + 1, ' ');
	snprintf(out, len, "%.*s %s%s", (int)(sp1 - table), table, remote, sp2 ? sp2 : "");
	return 0;
}

int cmd_resync(int argc, char **argv)
{
	char type[64], table[1024], params[1024], err[512], old[32];
	uint64_t bytes;
	unsigned int lbs;
	int full = 0, r;
	const struct opt_spec opts[] = { { "full", OPT_FLAG, &full }, { NULL } };
	struct agent_request drop = { .verb = AGENT_DROP };
	struct agent_reply rep;
	struct colo_device dev;
	struct node_state st;
	const char *name;

	r = open_device("resync", argc, argv, opts, &name, &dev);
	if (r)
		return r;
	r = require_primary(name, &dev, "") ?: require_state(name, &dev, COLO_ST_DEGRADED);
	if (r)
		return r;
	if (load_state(name, &st) || lock_pair(name))
		return EXIT_FAILED;
	/*
	 * A new link, whatever the old one looks like: after a timeout the
	 * kernel has shut the old socket down while nbd-client -L may still
	 * sit on the device. First the secondary drops its stale connections
	 * (one may still hold writes queued before the break); the agent
	 * refuses DROP when no connection from here is left, which means
	 * there is nothing to drop. Then a new /dev/nbdX, swapped in by a
	 * table reload, and the old one disconnected.
	 */
	snprintf(drop.name, sizeof(drop.name), "%s", st.export_name);
	if (agent_call(st.host, st.control_port, st.port, &drop, &rep, AGENT_TIMEOUT_MS, err,
		       sizeof(err))) {
		errorf("secondary: %s", err);
		return EXIT_PEER;
	}
	if (!rep.ok && !strstr(rep.error, "no NBD connection")) {
		errorf("secondary: %s", rep.error);
		return EXIT_FAILED;
	}
	snprintf(old, sizeof(old), "%s", st.nbd_dev);
	if (nbd_free_device(st.nbd_dev, err, sizeof(err))) {
		errorf("%s", err);
		return EXIT_FAILED;
	}
	if (nbd_client_connect(st.nbd_dev, &st, err, sizeof(err))) {
		errorf("secondary %s port %u: %s", st.host, st.port, err);
		return EXIT_PEER;
	}
	if (dm_table(name, type, sizeof(type), table, sizeof(table)) ||
	    table_with_remote(table, st.nbd_dev, params, sizeof(params)) ||
	    blockdev_info(st.disk, &bytes, &lbs, err, sizeof(err)) ||
	    dm_reload(name, bytes >> 9, COLO_PRIMARY_TARGET, params)) {
		errorf("%s: swapping in %s: %s", name, st.nbd_dev, dm_error());
		nbd_client_disconnect(st.nbd_dev);
		return EXIT_FAILED;
	}
	nbd_client_disconnect(old);
	if (state_save(name, &st)) {
		errorf("cannot save %s's state", name);
		return EXIT_FAILED;
	}
	printf("%s: reconnected to %s port %u on %s\n", name, st.host, st.port, st.nbd_dev);
	if (message(name, full ? COLO_MSG_RESYNC_FULL : COLO_MSG_RESYNC))
		return EXIT_FAILED;
	printf("%s: resync started%s; follow it with `dmcoloctl watch %s`\n", name,
	       full ? " (full)" : "", name);
	return EXIT_OK;
}

int cmd_failover(int argc, char **argv)
{
	struct colo_device dev;
	struct node_state st;
	int no_wait = 0, r, have_state;
	const struct opt_spec opts[] = { { "no-wait", OPT_FLAG, &no_wait }, { NULL } };
	const char *name;
	long long t0;

	r = open_device("failover", argc, argv, opts, &name, &dev);
	if (r)
		return r;
	if (dev.kind != COLO_KIND_SECONDARY) {
		errorf("%s is not a colo-secondary: failover runs on the secondary", name);
		return EXIT_USAGE;
	}
	have_state = state_load(name, &st) == 0;
	t0 = now_ms();
	if (message(name, COLO_MSG_FAILOVER))
		return EXIT_STATE;
	/* colo-ingress refuses I/O now; the export goes too, for good. */
	if (have_state) {
		st.fenced = 1;
		state_save(name, &st);
		nbd_server_stop(name);
	}
	printf("%s: failover: the primary is fenced, merging %" PRIu64 " buffered chunks\n",
	       name, dev.sec.buffered);
	if (no_wait)
		return EXIT_OK;
	r = follow_progress(name, 0);
	if (r)
		return r;
	if (colo_device_status(name, &dev, 0))
		return EXIT_FAILED;
	printf("%s: standalone after %lld ms (%" PRIu64 " chunks merged); the disk holds the "
	       "last checkpoint and the secondary's writes\n", name, now_ms() - t0,
	       dev.sec.merged);
	return EXIT_OK;
}

int cmd_checkpoint(int argc, char **argv)
{
	int local = 0, r, tries, stale = 0;
	const struct opt_spec opts[] = { { "local", OPT_FLAG, &local }, { NULL } };
	struct colo_device dev;
	struct agent_reply rep;
	struct agent_request req = { .verb = AGENT_CHECKPOINT };
	struct node_state st;
	const char *name;
	long long t0, t1, t2;
	char err[300];

	r = open_device("checkpoint", argc, argv, opts, &name, &dev);
	if (r)
		return r;
	if (local)
		return local_message("checkpoint", name, &dev, COLO_MSG_CHECKPOINT);
	r = require_primary(name, &dev, ": the two-node checkpoint runs there (--local for "
			    "this node's message only)") ?:
	    require_state(name, &dev, COLO_ST_REPLICATING);
	if (r)
		return r;
	if (load_state(name, &st) || lock_pair(name))
		return EXIT_FAILED;
	/* Another command may have moved the epoch while we waited. */
	if (load_state(name, &st))
		return EXIT_FAILED;
	if (!st.epoch_known) {
		errorf("%s: the pair was not started with dmcoloctl start", name);
		return EXIT_STATE;
	}
	/* 1. Every write of the closing epoch is on the secondary's disk. */
	t0 = now_ms();
	if (message(name, COLO_MSG_CHECKPOINT))
		return EXIT_FAILED;
	t1 = now_ms();
	/* 2. The secondary drops its buffer: epoch + 1, applied once. */
	req.epoch = st.epoch + 1;
	snprintf(req.name, sizeof(req.name), "%s", st.export_name);
	for (tries = 1;; tries++) {
		if (!agent_call(st.host, st.control_port, st.port, &req, &rep, AGENT_TIMEOUT_MS, err,
				sizeof(err))) {
			/*
			 * "already" is a retry's answer only when this run sent
			 * the request before. On the first try it means the
			 * saved epoch is stale (a run that lost every reply, a
			 * --local checkpoint there): the buffer was dropped
			 * before this barrier, so ask for one more checkpoint.
			 */
			if (rep.ok && !rep.applied && tries == 1 && !stale) {
				stale = 1;
				req.epoch = rep.epoch + 1;
				tries = 0;
				continue;
			}
			break;
		}
		if (tries == CHECKPOINT_TRIES) {
			errorf("secondary: %s (tried %d times; epoch %" PRIu64 " not confirmed)", err,
			       tries, req.epoch);
			return EXIT_PEER;
		}
		sleep_ms(500);
	}
	t2 = now_ms();
	if (!rep.ok) {
		errorf("secondary: %s", rep.error);
		return agent_state_error(&rep) ? EXIT_STATE : EXIT_FAILED;
	}
	st.epoch = rep.epoch;
	if (state_save(name, &st)) {
		errorf("cannot save %s's epoch", name);
		return EXIT_FAILED;
	}
	printf("%s: checkpoint epoch %" PRIu64 ": primary barrier %lld ms, secondary "
	       "checkpoint %lu ms, round trip %lld ms, total %lld ms%s\n", name, rep.epoch,
	       t1 - t0, rep.ms, t2 - t1, t2 - t0,
	       rep.applied ? "" : " (the secondary had it already: a retry)");
	if (tries > 1)
		printf("  (the secondary answered on try %d)\n", tries);
	return EXIT_OK;
}
