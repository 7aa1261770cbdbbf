/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * NBD on both nodes, with Debian's nbd-server and nbd-client: the secondary
 * exports NAME-ingress, the primary attaches it as /dev/nbdX. The export
 * always has flush and FUA on (colo-primary's checkpoint is a flush), and the
 * client always has a timeout: without one a dead link hangs the primary's
 * writes for ever.
 */
#ifndef DMCOLOCTL_NBD_H
#define DMCOLOCTL_NBD_H

#include "state.h"

/* Write NAME's nbd-server configuration and start the server; 0 or -1. */
int nbd_server_start(const char *name, const struct node_state *st, char *err, size_t err_len);
/* The server's pid, or 0 when it is not running. */
int nbd_server_pid(const char *name);
/*
 * Kill the server's connections (it keeps listening) and wait until they
 * are gone; -1 when one survives 5 s.
 */
int nbd_server_drop_connections(const char *name);
/* Stop the server and its connections. */
void nbd_server_stop(const char *name);

/* The first /dev/nbdX with no connection, into dev (32 bytes); 0 or -1. */
int nbd_free_device(char *dev, char *err, size_t err_len);
/* Attach dev to the secondary's export (st: host, port, export, TLS). */
int nbd_client_connect(const char *dev, const struct node_state *st, char *err, size_t err_len);
/* Is dev connected (its kernel side has a live connection)? */
int nbd_client_connected(const char *dev);
int nbd_client_disconnect(const char *dev);

/* Run argv, its stderr into a file; exit status, or -1. Last stderr line in err. */
int run_program(char *const argv[], char *err, size_t err_len);

#endif
