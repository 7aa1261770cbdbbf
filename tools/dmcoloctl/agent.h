/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control channel between the nodes. `dmcoloctl secondary create`
 * starts `dmcoloctl agent NAME` on the secondary; the primary's commands
 * connect to it (TCP, the NBD port + 1 by default) for what must happen on
 * the secondary: its state, its start, its checkpoint.
 *
 * One request per connection, one line each way:
 *
 *   STATUS <name>                 OK <state> <epoch>
 *   START <name>                  OK <state> <epoch>
 *   CHECKPOINT <name> <epoch>     OK <state> <epoch> applied|already <ms>
 *   DROP <name>                   OK <state> <epoch>
 *   (any)                         ERR <one line>
 *
 * An ERR line that starts with "state: " means the secondary is not in a
 * state that allows the request (dmcoloctl exits 4 for it).
 *
 * CHECKPOINT E asks for the checkpoint that makes the secondary's epoch E:
 * applied when its epoch was E - 1, "already" when it is E (a retry whose
 * first reply was lost), an error otherwise. So a retried checkpoint is never
 * applied twice, and a skipped one is noticed.
 *
 * DROP kills the NBD server's connections (it keeps listening): before the
 * primary reconnects after a broken link, so that no stale connection can
 * still apply writes queued before the break over what the resync copies.
 *
 * The agent answers only callers from a source port below 1024 (root on
 * their host) that, except for DROP, hold an NBD connection to this export
 * from the same address. That is not cryptographic authentication: the
 * channel belongs on a dedicated replication network (dmcoloctl(8),
 * SECURITY). The agent also restarts the NBD server if it dies, until
 * failover.
 */
#ifndef DMCOLOCTL_AGENT_H
#define DMCOLOCTL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_STATE_ERROR "state: "

enum agent_verb { AGENT_STATUS, AGENT_START, AGENT_CHECKPOINT, AGENT_DROP };

struct agent_request {
	enum agent_verb verb;
	char name[128];
	uint64_t epoch;		/* CHECKPOINT only */
};

struct agent_reply {
	int ok;
	char state[16];
	uint64_t epoch;
	int applied;		/* CHECKPOINT: 1 applied, 0 already */
	unsigned long ms;	/* CHECKPOINT: time of the secondary's message */
	char error[256];
};

/* Parse/format one line (without '\n'); parsers return 0 or -1. */
int agent_parse_request(const char *line, struct agent_request *req);
int agent_format_request(const struct agent_request *req, char *buf, size_t len);
int agent_parse_reply(const char *line, struct agent_reply *rep);
int agent_format_reply(const struct agent_reply *rep, enum agent_verb verb, char *buf,
		       size_t len);

/* Run the agent of secondary NAME (does not return unless it fails). */
int agent_run(const char *name);

/*
 * Send req to the agent at host:port; fills rep. Returns 0 when a reply
 * came (rep->ok tells which), -1 when none did (err says why).
 */
int agent_call(const char *host, unsigned int port, unsigned int nbd_port,
	       const struct agent_request *req, struct agent_reply *rep, int timeout_ms, char *err,
	       size_t err_len);

#endif
