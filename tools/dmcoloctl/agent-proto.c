// SPDX-License-Identifier: GPL-2.0-only
/* The control channel's line format (see agent.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

static const char *const verbs[] = {
	[AGENT_STATUS] = "STATUS",
	[AGENT_START] = "START",
	[AGENT_CHECKPOINT] = "CHECKPOINT",
	[AGENT_DROP] = "DROP",
};

static int valid_name(const char *s)
{
	return *s && strlen(s) < 128 && !strpbrk(s, " \t\r\n/");
}

int agent_parse_request(const char *line, struct agent_request *req)
{
	char verb[16], name[128], extra[2];
	unsigned int i;
	int n, after_name = -1;

	memset(req, 0, sizeof(*req));
	n = sscanf(line, "%15s %127s%n %" SCNu64 " %1s", verb, name, &after_name, &req->epoch,
		   extra);
	if (n < 2 || !valid_name(name))
		return -1;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(verb, verbs[i]))
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return -1;
	req->verb = i;
	if ((req->verb == AGENT_CHECKPOINT) != (n == 3))
		return -1;
	/* An epoch must be a plain number: no sign, nothing after it. */
	if (n == 3) {
		const char *p = line + after_name;

		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9' || req->epoch == 0)
			return -1;
	}
	snprintf(req->name, sizeof(req->name), "%s", name);
	return 0;
}

int agent_format_request(const struct agent_request *req, char *buf, size_t len)
{
	int n;

	if (req->verb == AGENT_CHECKPOINT)
		n = snprintf(buf, len, "%s %s %" PRIu64, verbs[req->verb], req->name, req->epoch);
	else
		n = snprintf(buf, len, "%s %s", verbs[req->verb], req->name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int agent_parse_reply(const char *line, struct agent_reply *rep)
{
	char how[16];
	int n;

	memset(rep, 0, sizeof(*rep));
	if (!strncmp(line, "ERR ", 4)) {
		snprintf(rep->error, sizeof(rep->error), "%s", line + 4);
		return 0;
	}
	n = sscanf(line, "OK %15s %" SCNu64 " %15s %lu", rep->state, &rep->epoch, how, &rep->ms);
	if (n == 2) {
		rep->ok = 1;
		return 0;
	}
	if (n == 4 && (!strcmp(how, "applied") || !strcmp(how, "already"))) {
		rep->ok = 1;
		rep->applied = !strcmp(how, "applied");
		return 0;
	}
	return -1;
}

int agent_format_reply(const struct agent_reply *rep, enum agent_verb verb, char *buf,
		       size_t len)
{
	int n;

	if (!rep->ok)
		n = snprintf(buf, len, "ERR %s", rep->error);
	else if (verb == AGENT_CHECKPOINT)
		n = snprintf(buf, len, "OK %s %" PRIu64 " %s %lu", rep->state, rep->epoch,
			     rep->applied ? "applied" : "already", rep->ms);
	else
		n = snprintf(buf, len, "OK %s %" PRIu64, rep->state, rep->epoch);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
