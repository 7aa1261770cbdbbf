/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What dmcoloctl remembers about a device it created, between commands:
 * one directory per device under the run directory (/run/dmcolo, or
 * $DMCOLO_RUNDIR), holding "state" (key=value lines, below), the NBD
 * server's configuration and pid file, and the agent's pid file and log.
 * The kernel's own state (dmsetup status) is never copied here.
 */
#ifndef DMCOLOCTL_STATE_H
#define DMCOLOCTL_STATE_H

#include <limits.h>
#include <stdint.h>

enum node_role { ROLE_NONE, ROLE_PRIMARY, ROLE_SECONDARY };

struct node_state {
	enum node_role role;
	char disk[PATH_MAX];
	/* secondary */
	char buffer[PATH_MAX];
	uint64_t chunk_bytes;
	int fenced;			/* failover done: keep the NBD server down */
	/* both: the secondary's NBD and control endpoints */
	char host[256];
	unsigned int port, control_port;
	/* primary */
	char export_name[128];		/* the secondary's NAME */
	char nbd_dev[32];
	unsigned int nbd_timeout;
	unsigned int nbd_connections;	/* nbd-client -C (1: one socket) */
	uint64_t epoch;			/* secondary epoch after the last checkpoint */
	int epoch_known;
	/* TLS files ("" when TLS is off) */
	char tls_cert[PATH_MAX], tls_key[PATH_MAX], tls_ca[PATH_MAX];
	char tls_hostname[256];		/* primary: name the server cert must carry */
};

const char *run_dir(void);
/* path of FILE in NAME's directory, into buf (PATH_MAX). */
void state_path(const char *name, const char *file, char *buf);
int state_mkdir(const char *name);
int state_exists(const char *name);
int state_load(const char *name, struct node_state *st);
int state_save(const char *name, const struct node_state *st);
/* Remove NAME's directory and what dmcoloctl put in it. */
void state_remove(const char *name);

/*
 * A pid file's pid when that process is alive and its name (comm) is comm,
 * else 0: a dead server's pid may have been reused by anything.
 */
int pidfile_alive(const char *path, const char *comm);

/* Serialise dmcoloctl commands on NAME: a lock fd, or -1. */
int state_lock(const char *name);

#endif
