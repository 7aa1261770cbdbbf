// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of what dmcoloctl reads from others: the targets' status lines
 * (colo-abi.c), the agent's request and reply lines (agent-proto.c) and
 * /proc/net/tcp lines (net.c). Prints KTAP.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "colo-abi.h"
#include "net.h"

static unsigned int n, failed;

static void check(int ok, const char *what, const char *input)
{
	n++;
	failed += !ok;
	printf("%sok %u %s \"%s\"\n", ok ? "" : "not ", n, what, input);
}

static void secondary_cases(void)
{
	struct colo_secondary_status s;
	const char *good = "running 7 12/4096 0/0 33 5 -";
	const char *grown = "merging 9 3/4096 1/3 40 6 copy_failed 17 extra";
	const char *const bad[] = {
		"", "running", "running 7 12/4096 0/0 33 5", "running 7 12 4096 0/0 33 5 -",
		"running 7x 12/4096 0/0 33 5 -", "Running 7 12/4096 0/0 33 5 -",
		"running 7 12/4096 0/0 33 5 -x!",
		/* sscanf took these: a sign, a number past 2^64 */
		"running +7 12/4096 0/0 33 5 -", "running 7 12/-4096 0/0 33 5 -",
		"running 18446744073709551616 12/4096 0/0 33 5 -",
	};
	unsigned int i;

	check(!colo_parse_secondary(good, &s) && !strcmp(s.state, "running") && s.epoch == 7 &&
	      s.buffered == 12 && s.capacity == 4096 && s.merged == 0 && s.copies == 33 &&
	      s.secondary_writes == 5 && !strcmp(s.error, "-"), "secondary status", good);
	check(!colo_parse_secondary(grown, &s) && !strcmp(s.state, "merging") && s.merged == 1 &&
	      s.to_merge == 3 && !strcmp(s.error, "copy_failed"),
	      "secondary status with appended fields", grown);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(colo_parse_secondary(bad[i], &s) == -1, "secondary status refused", bad[i]);
}

static void primary_cases(void)
{
	struct colo_primary_status p;
	const char *good = "replicating async 2048/2048 2048 100 3 12288 16777216 0 -";
	const char *const bad[] = {
		"replicating async 2048/2048 2048 100 3 12288 16777216 0",
		"replicating async 2048 2048 2048 100 3 12288 16777216 0 -",
		"replicating async 2048/2048 2048 100 3 12288 16777216 zero -",
	};
	unsigned int i;

	check(!colo_parse_primary(good, &p) && !strcmp(p.state, "replicating") &&
	      !strcmp(p.mode, "async") && p.in_sync == 2048 && p.regions == 2048 &&
	      p.copied == 2048 && p.forwarded == 100 && p.forwarding == 3 &&
	      p.bytes_in_flight == 12288 && p.peak_bytes == 16777216 && p.remote_errors == 0,
	      "primary status", good);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(colo_parse_primary(bad[i], &p) == -1, "primary status refused", bad[i]);
}

static void ingress_cases(void)
{
	struct colo_ingress_status g;

	check(!colo_parse_ingress("fenced 10 2", &g) && !strcmp(g.state, "fenced") &&
	      g.writes == 10 && g.refused == 2, "ingress status", "fenced 10 2");
	check(colo_parse_ingress("fenced 10", &g) == -1, "ingress status refused", "fenced 10");
	check(colo_kind_of("colo-primary") == COLO_KIND_PRIMARY &&
	      colo_kind_of("linear") == COLO_KIND_NONE, "target kinds", "colo-primary/linear");
}

static void agent_cases(void)
{
	struct agent_request req;
	struct agent_reply rep;
	char line[256];
	const char *const bad_req[] = {
		"", "STATUS", "STATUS vm0 3", "CHECKPOINT vm0", "CHECKPOINT vm0 -1",
		"CHECKPOINT vm0 0", "CHECKPOINT vm0 2 x", "checkpoint vm0 2", "STOP vm0",
		"STATUS a/b",
	};
	unsigned int i;

	check(!agent_parse_request("CHECKPOINT vm0 42", &req) && req.verb == AGENT_CHECKPOINT &&
	      !strcmp(req.name, "vm0") && req.epoch == 42, "request", "CHECKPOINT vm0 42");
	check(!agent_parse_request("STATUS vm0", &req) && req.verb == AGENT_STATUS,
	      "request", "STATUS vm0");
	check(!agent_parse_request("DROP vm0", &req) && req.verb == AGENT_DROP,
	      "request", "DROP vm0");
	/* A name that also occurs in the verb. */
	check(!agent_parse_request("CHECKPOINT E 5", &req) && !strcmp(req.name, "E") &&
	      req.epoch == 5, "request", "CHECKPOINT E 5");
	check(!agent_parse_request("CHECKPOINT POINT 3", &req) && !strcmp(req.name, "POINT") &&
	      req.epoch == 3, "request", "CHECKPOINT POINT 3");
	for (i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++)
		check(agent_parse_request(bad_req[i], &req) == -1, "request refused", bad_req[i]);

	req.verb = AGENT_CHECKPOINT;
	req.epoch = 9;
	strcpy(req.name, "s1");
	check(!agent_format_request(&req, line, sizeof(line)) && !strcmp(line, "CHECKPOINT s1 9"),
	      "request formatted", line);

	memset(&rep, 0, sizeof(rep));
	rep.ok = 1;
	strcpy(rep.state, "running");
	rep.epoch = 9;
	rep.applied = 1;
	rep.ms = 3;
	check(!agent_format_reply(&rep, AGENT_CHECKPOINT, line, sizeof(line)) &&
	      !strcmp(line, "OK running 9 applied 3"), "reply formatted", line);
	check(!agent_parse_reply("OK running 9 already 0", &rep) && rep.ok && !rep.applied &&
	      rep.epoch == 9, "reply", "OK running 9 already 0");
	check(!agent_parse_reply("OK idle 0", &rep) && rep.ok && !strcmp(rep.state, "idle"),
	      "reply", "OK idle 0");
	check(!agent_parse_reply("ERR epoch mismatch", &rep) && !rep.ok &&
	      !strcmp(rep.error, "epoch mismatch"), "reply", "ERR epoch mismatch");
	check(agent_parse_reply("OK running 9 maybe 3", &rep) == -1, "reply refused",
	      "OK running 9 maybe 3");
	check(agent_parse_reply("HELLO", &rep) == -1, "reply refused", "HELLO");
}

static void tcp_cases(void)
{
	unsigned char l[16], r[16];
	unsigned int lp, rp, st;
	/* 127.0.0.1:10809 <- 127.0.0.1:40000, established (x86: words little-endian) */
	const char *v4 = "   1: 0100007F:2A39 0100007F:9C40 01 00000000:00000000 00:00000000 "
			 "00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
	/* [fe80::2]:10809, listening */
	const char *v6 = "   0: 000080FE000000000000000002000000:2A39 "
			 "00000000000000000000000000000000:0000 0A 00000000:00000000 "
			 "00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0";
	static const unsigned char v4l[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
					       127, 0, 0, 1 };
	static const unsigned char v6l[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					       0, 0, 0, 2 };

	check(!tcp_table_line(v4, l, &lp, r, &rp, &st) && lp == 10809 && rp == 40000 &&
	      st == 1 && !memcmp(l, v4l, 16) && !memcmp(r, v4l, 16), "tcp line", "IPv4");
	check(!tcp_table_line(v6, l, &lp, r, &rp, &st) && lp == 10809 && st == 0x0A &&
	      !memcmp(l, v6l, 16), "tcp line", "IPv6");
	check(tcp_table_line("  sl  local_address rem_address   st", l, &lp, r, &rp, &st) == -1,
	      "tcp header refused", "sl local_address");
}

int main(void)
{
	printf("TAP version 13\n");
	secondary_cases();
	primary_cases();
	ingress_cases();
	agent_cases();
	tcp_cases();
	printf("1..%u\n", n);
	return failed ? 1 : 0;
}
