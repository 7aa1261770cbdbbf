// SPDX-License-Identifier: GPL-2.0-only
/* The secondary's agent and its client (see agent.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "agent.h"
#include "colo-abi.h"
#include "dm.h"
#include "nbd.h"
#include "net.h"
#include "state.h"

static volatile sig_atomic_t agent_stop;

static void on_term(int sig)
{
	(void)sig;
	agent_stop = 1;
}

static void agent_log(const char *fmt, ...)
{
	char stamp[32];
	time_t t = time(NULL);
	va_list ap;

	strftime(stamp, sizeof(stamp), "%F %T", localtime(&t));
	fprintf(stderr, "%s ", stamp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static int secondary_status(const char *name, struct colo_secondary_status *st, char *err,
			    size_t err_len)
{
	char type[32], params[512];

	if (dm_status(name, type, sizeof(type), params, sizeof(params))) {
		snprintf(err, err_len, "%s: %s", name, dm_error());
		return -1;
	}
	if (colo_kind_of(type) != COLO_KIND_SECONDARY || colo_parse_secondary(params, st)) {
		snprintf(err, err_len, "%s: not a colo-secondary (%s)", name, type);
		return -1;
	}
	return 0;
}

static void handle(const char *name, const struct agent_request *req, struct agent_reply *rep)
{
	struct colo_secondary_status st;
	long long t0;

	memset(rep, 0, sizeof(*rep));
	if (strcmp(req->name, name)) {
		snprintf(rep->error, sizeof(rep->error), "this agent serves '%s', not '%s'",
			 name, req->name);
		return;
	}
	if (secondary_status(name, &st, rep->error, sizeof(rep->error)))
		return;
	switch (req->verb) {
	case AGENT_STATUS:
		break;
	case AGENT_DROP:
		if (nbd_server_drop_connections(name)) {
			snprintf(rep->error, sizeof(rep->error),
				 "NBD connections of %s survive SIGKILL (stuck in I/O?)", name);
			return;
		}
		agent_log("dropped the NBD connections of %s", name);
		break;
	case AGENT_START:
		if (!strcmp(st.state, COLO_ST_RUNNING))
			break;
		if (strcmp(st.state, COLO_ST_IDLE)) {
			snprintf(rep->error, sizeof(rep->error),
				 AGENT_STATE_ERROR "secondary %s is %s, not idle: cannot start", name,
				 st.state);
			return;
		}
		if (dm_message(name, COLO_MSG_START)) {
			snprintf(rep->error, sizeof(rep->error), "secondary %s: start: %s", name,
				 dm_error());
			return;
		}
		agent_log("started %s at epoch %" PRIu64, name, st.epoch);
		if (secondary_status(name, &st, rep->error, sizeof(rep->error)))
			return;
		break;
	case AGENT_CHECKPOINT:
		if (st.epoch == req->epoch) {
			agent_log("checkpoint %" PRIu64 " of %s: already applied (a retry)",
			     req->epoch, name);
			rep->ok = 1;
			snprintf(rep->state, sizeof(rep->state), "%s", st.state);
			rep->epoch = st.epoch;
			return;
		}
		if (st.epoch + 1 != req->epoch) {
			snprintf(rep->error, sizeof(rep->error),
				 AGENT_STATE_ERROR "epoch mismatch: secondary %s is at epoch %" PRIu64
				 ", the checkpoint asks for %" PRIu64, name, st.epoch, req->epoch);
			return;
		}
		if (strcmp(st.state, COLO_ST_RUNNING)) {
			snprintf(rep->error, sizeof(rep->error),
				 AGENT_STATE_ERROR "secondary %s is %s, not running%s", name, st.state,
				 !strcmp(st.state, COLO_ST_BROKEN) ? " (buffer broken: fail over)" : "");
			return;
		}
		t0 = now_ms();
		if (dm_message(name, COLO_MSG_CHECKPOINT)) {
			snprintf(rep->error, sizeof(rep->error), "secondary %s: checkpoint: %s",
				 name, dm_error());
			return;
		}
		rep->ms = now_ms() - t0;
		rep->applied = 1;
		if (secondary_status(name, &st, rep->error, sizeof(rep->error)))
			return;
		break;
	}
	rep->ok = 1;
	snprintf(rep->state, sizeof(rep->state), "%s", st.state);
	rep->epoch = st.epoch;
}

/*
 * Serve one connection: one request line, one reply line. Callers must come
 * from a source port below 1024 (root on their host), and for everything
 * but DROP hold an NBD connection to this export from the same address.
 */
static void serve(int fd, const char *name, const struct node_state *ns,
		  const struct sockaddr_storage *peer)
{
	struct agent_request req = { 0 };
	struct agent_reply rep = { 0 };
	char line[512];

	if (net_port(peer) >= 1024) {
		snprintf(rep.error, sizeof(rep.error),
			 "refused: requests come from a source port below 1024 (root)");
		agent_log("refused a request from unprivileged port %u", net_port(peer));
	} else if (net_read_line(fd, line, sizeof(line), 2000)) {
		return;
	} else if (agent_parse_request(line, &req)) {
		snprintf(rep.error, sizeof(rep.error), "malformed request");
	} else if (req.verb != AGENT_DROP && !tcp_peer_connected(ns->port, peer)) {
		char addr[INET6_ADDRSTRLEN] = "?";

		if (peer->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, addr,
				  sizeof(addr));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr,
				  sizeof(addr));
		snprintf(rep.error, sizeof(rep.error),
			 "refused: the caller (%s) holds no NBD connection to export %s", addr, name);
		agent_log("%s", rep.error);
	} else {
		handle(name, &req, &rep);
		if (!rep.ok)
			agent_log("%s", rep.error);
	}
	if (agent_format_reply(&rep, rep.ok ? req.verb : AGENT_STATUS, line, sizeof(line)) == 0) {
		strcat(line, "\n");
		net_write_all(fd, line, strlen(line));
	}
}

/* Restart the NBD server if it died, unless this node failed over. */
static void supervise(const char *name)
{
	struct node_state ns;
	char err[256];

	if (state_load(name, &ns) || ns.fenced || nbd_server_pid(name))
		return;
	agent_log("nbd-server of %s is gone: restarting it", name);
	if (nbd_server_start(name, &ns, err, sizeof(err)))
		agent_log("restarting nbd-server failed: %s", err);
}

int agent_run(const char *name)
{
	struct sigaction sa = { .sa_handler = on_term };
	struct sockaddr_storage peer;
	struct node_state ns;
	char pidfile[PATH_MAX];
	struct pollfd p;
	socklen_t len;
	FILE *f;
	int lfd, fd;

	if (state_load(name, &ns) || ns.role != ROLE_SECONDARY) {
		fprintf(stderr, "dmcoloctl agent: %s is not a secondary made by dmcoloctl\n", name);
		return -1;
	}
	lfd = net_listen(ns.host, ns.control_port);
	if (lfd < 0) {
		fprintf(stderr, "dmcoloctl agent: cannot listen on %s port %u: %s\n", ns.host,
			ns.control_port, strerror(errno));
		return -1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	state_path(name, "agent.pid", pidfile);
	f = fopen(pidfile, "w");
	if (f) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	agent_log("agent of %s listening on %s port %u", name, ns.host, ns.control_port);
	p.fd = lfd;
	p.events = POLLIN;
	while (!agent_stop) {
		if (poll(&p, 1, 1000) == 1) {
			len = sizeof(peer);
			fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
			if (fd >= 0) {
				serve(fd, name, &ns, &peer);
				close(fd);
			}
		}
		supervise(name);
	}
	agent_log("agent of %s stopping", name);
	close(lfd);
	unlink(pidfile);
	return 0;
}

int agent_call(const char *host, unsigned int port, unsigned int nbd_port,
	       const struct agent_request *req, struct agent_reply *rep, int timeout_ms, char *err,
	       size_t err_len)
{
	char line[512];
	const char *why;
	int fd;

	fd = net_connect(host, port, 5000, 1, nbd_port, &why);
	if (fd < 0) {
		snprintf(err, err_len, "the agent at %s port %u %s", host, port, why);
		return -1;
	}
	if (agent_format_request(req, line, sizeof(line) - 1)) {
		close(fd);
		snprintf(err, err_len, "request too long");
		return -1;
	}
	strcat(line, "\n");
	if (net_write_all(fd, line, strlen(line)) ||
	    net_read_line(fd, line, sizeof(line), timeout_ms)) {
		close(fd);
		snprintf(err, err_len, "the agent at %s port %u did not reply", host, port);
		return -1;
	}
	close(fd);
	if (agent_parse_reply(line, rep)) {
		snprintf(err, err_len, "the agent sent a malformed reply");
		return -1;
	}
	return 0;
}
