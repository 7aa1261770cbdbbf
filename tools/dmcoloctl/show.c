// SPDX-License-Identifier: GPL-2.0-only
/* dmcoloctl status and watch. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dm.h"
#include "dmcoloctl.h"
#include "nbd.h"
#include "options.h"
#include "units.h"

static unsigned int percent(uint64_t part, uint64_t whole)
{
	return whole ? (unsigned int)(part * 100 / whole) : 100;
}

/* JSON members: the first of an object without a comma, the others with. */
static void json_string(const char *key, const char *value, int first)
{
	const char *p;

	printf("%s\"%s\": \"", first ? "" : ", ", key);
	for (p = value; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void json_u64(const char *key, uint64_t value)
{
	printf(", \"%s\": %" PRIu64, key, value);
}

static void json_bool(const char *key, int value)
{
	printf(", \"%s\": %s", key, value ? "true" : "false");
}

/* A parsed status, member by member, as its field table lists it. */
static void json_fields(const struct colo_field *f, const void *st)
{
	const char *base = st;

	for (; f->name; f++) {
		switch (f->kind) {
		case COLO_F_WORD:
			json_string(f->name, base + f->offset, 0);
			break;
		case COLO_F_PAIR:
			json_u64(f->name, *(const uint64_t *)(base + f->offset));
			json_u64(f->name2, *(const uint64_t *)(base + f->offset2));
			break;
		case COLO_F_U64:
			json_u64(f->name, *(const uint64_t *)(base + f->offset));
			break;
		}
	}
}

struct show_ctx {
	int json;
	int count;
	const char *only;
	int failed;
};

static void show_tool_state(const char *name, int json)
{
	struct node_state st;
	char pidfile[PATH_MAX];

	if (state_load(name, &st))
		return;
	if (st.role == ROLE_PRIMARY) {
		if (json) {
			json_string("nbd_device", st.nbd_dev, 0);
			json_bool("nbd_connected", nbd_client_connected(st.nbd_dev));
			json_string("secondary", st.host, 0);
			json_u64("port", st.port);
			json_u64("connections", st.nbd_connections);
			json_bool("tls", st.tls_cert[0]);
			if (st.epoch_known)
				json_u64("epoch", st.epoch);
			return;
		}
		printf("  link        %s -> %s port %u, export '%s'%s, %u socket%s, %s\n",
		       st.nbd_dev, st.host, st.port, st.export_name,
		       st.tls_cert[0] ? ", TLS" : "", st.nbd_connections,
		       st.nbd_connections > 1 ? "s" : "",
		       nbd_client_connected(st.nbd_dev) ? "connected" : "DISCONNECTED");
		if (st.epoch_known)
			printf("  epoch       %" PRIu64 " (last two-node checkpoint)\n", st.epoch);
		return;
	}
	state_path(name, "agent.pid", pidfile);
	if (json) {
		json_bool("nbd_server", nbd_server_pid(name));
		json_bool("agent", pidfile_alive(pidfile, "dmcoloctl"));
		json_bool("fenced", st.fenced);
		return;
	}
	printf("  export      %s port %u%s: nbd-server %s, agent %s\n", st.host, st.port,
	       st.tls_cert[0] ? " (TLS)" : "",
	       st.fenced ? "stopped (failed over)" : nbd_server_pid(name) ? "running" : "DOWN",
	       pidfile_alive(pidfile, "dmcoloctl") ? "running" : "down");
}

/* One device's object in `status --json` (after its name). */
static void json_device(const char *name, const struct colo_device *d)
{
	switch (d->kind) {
	case COLO_KIND_SECONDARY:
		json_string("target", COLO_SECONDARY_TARGET, 0);
		json_fields(colo_secondary_fields, &d->sec);
		break;
	case COLO_KIND_INGRESS:
		json_string("target", COLO_INGRESS_TARGET, 0);
		json_fields(colo_ingress_fields, &d->ing);
		return;
	case COLO_KIND_PRIMARY:
		json_string("target", COLO_PRIMARY_TARGET, 0);
		json_fields(colo_primary_fields, &d->pri);
		break;
	case COLO_KIND_NONE:
		return;
	}
	/* dmcoloctl's own state beside the kernel's: primary and secondary */
	show_tool_state(name, 1);
}

static int show_one(const char *name, void *arg)
{
	struct show_ctx *ctx = arg;
	struct colo_device d;
	char a[32], b[32];

	if (ctx->only && strcmp(ctx->only, name))
		return 0;
	if (colo_device_status(name, &d, !ctx->only)) {
		if (ctx->only)
			ctx->failed = 1;
		return 0;
	}
	if (ctx->json) {
		printf("%s{", ctx->count++ ? ",\n  " : "\n  ");
		json_string("name", name, 1);
		json_device(name, &d);
		printf("}");
		return 0;
	}
	ctx->count++;
	switch (d.kind) {
	case COLO_KIND_SECONDARY:
		printf("%s: colo-secondary, %s, epoch %" PRIu64 "\n", name, d.sec.state,
		       d.sec.epoch);
		printf("  buffer      %" PRIu64 "/%" PRIu64 " chunks (%u%%)\n", d.sec.buffered,
		       d.sec.capacity, percent(d.sec.buffered, d.sec.capacity));
		if (d.sec.to_merge)
			printf("  merge       %" PRIu64 "/%" PRIu64 " chunks (%u%%)\n", d.sec.merged,
			       d.sec.to_merge, percent(d.sec.merged, d.sec.to_merge));
		printf("  writes      %" PRIu64 " primary chunks saved, %" PRIu64
		       " secondary writes buffered\n", d.sec.copies, d.sec.secondary_writes);
		show_tool_state(name, 0);
		printf("  error       %s\n", d.sec.error);
		break;
	case COLO_KIND_INGRESS:
		printf("%s: colo-ingress, %s, %" PRIu64 " primary writes, %" PRIu64 " refused\n",
		       name, d.ing.state, d.ing.writes, d.ing.refused);
		break;
	case COLO_KIND_PRIMARY:
		format_bytes(d.pri.bytes_in_flight, a, sizeof(a));
		format_bytes(d.pri.peak_bytes, b, sizeof(b));
		printf("%s: colo-primary, %s (%s)\n", name, d.pri.state, d.pri.mode);
		printf("  sync        %" PRIu64 "/%" PRIu64 " regions in sync (%u%%), %" PRIu64
		       " copied\n", d.pri.in_sync, d.pri.regions,
		       percent(d.pri.in_sync, d.pri.regions), d.pri.copied);
		printf("  forwarded   %" PRIu64 " writes; in flight %" PRIu64 " (%s), peak %s\n",
		       d.pri.forwarded, d.pri.forwarding, a, b);
		show_tool_state(name, 0);
		printf("  error       %s, %" PRIu64 " remote errors\n", d.pri.error,
		       d.pri.remote_errors);
		break;
	case COLO_KIND_NONE:
		break;
	}
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct show_ctx ctx = { 0 };
	const struct opt_spec opts[] = { { "json", OPT_FLAG, &ctx.json }, { NULL } };
	int r = parse_options("status", argc, argv, opts, &ctx.only, 0, 1);

	if (r)
		return r;
	if (ctx.only && !dm_exists(ctx.only)) {
		errorf("%s: no such device", ctx.only);
		return EXIT_FAILED;
	}
	if (ctx.json)
		printf("[");
	if (dm_for_each(show_one, &ctx) < 0) {
		errorf("cannot list device-mapper devices: %s", dm_error());
		return EXIT_FAILED;
	}
	if (ctx.json)
		printf("%s]\n", ctx.count ? "\n" : "");
	else if (!ctx.count && !ctx.failed)
		printf("no dm-colo devices\n");
	return ctx.failed ? EXIT_FAILED : EXIT_OK;
}

/* One progress line; on a terminal it redraws itself. */
static void progress(const char *name, const char *what, uint64_t done, uint64_t total,
		     long long elapsed_ms, int tty)
{
	char bar[41];
	unsigned int p = percent(done, total), fill = p * 40 / 100, i;

	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	printf("%s%s: %s [%s] %3u%% %" PRIu64 "/%" PRIu64 " %lld.%llds%s", tty ? "\r" : "", name,
	       what, bar, p, done, total, elapsed_ms / 1000, elapsed_ms % 1000 / 100,
	       tty ? "" : "\n");
	fflush(stdout);
}

int follow_progress(const char *name, int quiet)
{
	long long t0 = now_ms(), last = -1000000;
	int tty = isatty(1), r = EXIT_OK;
	struct colo_device d;

	for (;;) {
		long long t = now_ms();
		int report = tty || t - last >= 2000;

		if (colo_device_status(name, &d, 0))
			return EXIT_FAILED;
		if (d.kind == COLO_KIND_PRIMARY) {
			if (!strcmp(d.pri.state, COLO_ST_SYNCING)) {
				if (report && !quiet) {
					progress(name, "sync", d.pri.in_sync, d.pri.regions, t - t0, tty);
					last = t;
				}
			} else {
				if (!quiet)
					progress(name, "sync", d.pri.in_sync, d.pri.regions, t - t0, tty);
				if (strcmp(d.pri.state, COLO_ST_REPLICATING)) {
					errorf("%s is %s (%s), not replicating", name, d.pri.state,
					       d.pri.error);
					r = EXIT_STATE;
				}
				break;
			}
		} else if (d.kind == COLO_KIND_SECONDARY) {
			if (!strcmp(d.sec.state, COLO_ST_MERGING) && strcmp(d.sec.error, COLO_ERR_MERGE_FAILED)) {
				if (report && !quiet) {
					progress(name, "merge", d.sec.merged, d.sec.to_merge, t - t0, tty);
					last = t;
				}
			} else {
				if (!quiet && d.sec.to_merge)
					progress(name, "merge", d.sec.merged, d.sec.to_merge, t - t0, tty);
				if (!strcmp(d.sec.state, COLO_ST_MERGING)) {
					errorf("%s: the merge failed (%s): retry with dmcoloctl failover %s",
					       name, d.sec.error, name);
					r = EXIT_FAILED;
				} else if (strcmp(d.sec.state, COLO_ST_STANDALONE) && !quiet) {
					printf("%s is %s: nothing to follow\n", name, d.sec.state);
				}
				break;
			}
		} else {
			errorf("%s: nothing to follow on a colo-ingress", name);
			return EXIT_USAGE;
		}
		sleep_ms(200);
	}
	if (tty && !quiet)
		printf("\n");
	return r;
}

int cmd_watch(int argc, char **argv)
{
	struct colo_device d;
	const char *name;
	int r = parse_options("watch", argc, argv, NULL, &name, 1, 1);

	if (r)
		return r;
	if (colo_device_status(name, &d, 0))
		return EXIT_FAILED;
	if (d.kind == COLO_KIND_PRIMARY && strcmp(d.pri.state, COLO_ST_SYNCING) &&
	    strcmp(d.pri.state, COLO_ST_REPLICATING)) {
		printf("%s is %s: nothing to follow\n", name, d.pri.state);
		return EXIT_OK;
	}
	return follow_progress(name, 0);
}
