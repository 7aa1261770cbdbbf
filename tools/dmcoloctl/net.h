/* SPDX-License-Identifier: GPL-2.0-only */
/* TCP helpers: connect/listen with timeouts, and the kernel's TCP tables. */
#ifndef DMCOLOCTL_NET_H
#define DMCOLOCTL_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* A socket listening on host:port; -1 with errno on failure. */
int net_listen(const char *host, unsigned int port);
/*
 * Connected socket or -1; *err_text says why (e.g. "refused the connection").
 * With reserved, the socket is bound to a free source port below 1024 first
 * (only root can do that; the agent takes requests from such ports only),
 * and, when this host holds an established connection to host:same_as_port,
 * to that connection's local address: a host with several addresses must
 * call from the one the agent sees the NBD connection come from.
 */
int net_connect(const char *host, unsigned int port, int timeout_ms, int reserved,
		unsigned int same_as_port, const char **err_text);
/* The port of a peer address. */
unsigned int net_port(const struct sockaddr_storage *ss);
/* Write all of buf; read one '\n'-terminated line (without it) within timeout_ms. */
int net_write_all(int fd, const char *buf, size_t len);
int net_read_line(int fd, char *buf, size_t len, int timeout_ms);

/* Is there a TCP socket listening on local port (this network namespace)? */
int tcp_port_listening(unsigned int port);
/*
 * Is there a TCP connection from peer to local port, established (or
 * closed by the peer but not yet by us: its data may still be read)?
 */
int tcp_peer_connected(unsigned int local_port, const struct sockaddr_storage *peer);

/*
 * One line of /proc/net/tcp{,6}: parse local/remote addresses (normalised to
 * 16-byte IPv6, IPv4 as ::ffff:a.b.c.d), ports and state. Returns 0, or -1
 * for the header or a malformed line. Exposed for the unit tests.
 */
int tcp_table_line(const char *line, unsigned char local[16], unsigned int *local_port,
		   unsigned char remote[16], unsigned int *remote_port, unsigned int *state);

#endif
