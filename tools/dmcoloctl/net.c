// SPDX-License-Identifier: GPL-2.0-only
/* TCP helpers (see net.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "net.h"

#define TCP_ESTABLISHED_STATE 0x01
#define TCP_CLOSE_WAIT_STATE 0x08
#define TCP_LISTEN_STATE 0x0A

static struct addrinfo *resolve(const char *host, unsigned int port, int passive)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	char service[8];

	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res))
		return NULL;
	return res;
}

int net_listen(const char *host, unsigned int port)
{
	struct addrinfo *res = resolve(host, port, 1), *ai;
	int fd = -1, one = 1;

	if (!res) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 8))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

unsigned int net_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void normalise(const struct sockaddr_storage *ss, unsigned char out[16]);
static int tcp_scan(unsigned int port, unsigned int want_state, const unsigned char *peer,
		    unsigned char *local_out);

/*
 * Bind fd to a free port in [600, 1023], from the local address of an
 * established connection to dst's address and same_as_port if there is
 * one; 0 or -1.
 */
static int bind_reserved(int fd, const struct sockaddr *dst, unsigned int same_as_port)
{
	unsigned char remote[16], local[16];
	struct sockaddr_storage ss, d;
	int family = dst->sa_family, have_local = 0;
	unsigned int p;

	memset(&d, 0, sizeof(d));
	memcpy(&d, dst, family == AF_INET ? sizeof(struct sockaddr_in) :
	       sizeof(struct sockaddr_in6));
	normalise(&d, remote);
	if (same_as_port)
		have_local = tcp_scan(same_as_port, 0x01, remote, local);
	for (p = 1023; p >= 600; p--) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = family;
		if (family == AF_INET) {
			((struct sockaddr_in *)&ss)->sin_port = htons(p);
			if (have_local)
				memcpy(&((struct sockaddr_in *)&ss)->sin_addr, local + 12, 4);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			in6->sin6_port = htons(p);
			if (have_local) {
				memcpy(&in6->sin6_addr, local, 16);
				in6->sin6_scope_id = ((const struct sockaddr_in6 *)dst)->sin6_scope_id;
			}
		}
		if (!bind(fd, (struct sockaddr *)&ss, family == AF_INET ?
			  sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}

int net_connect(const char *host, unsigned int port, int timeout_ms, int reserved,
		unsigned int same_as_port, const char **err_text)
{
	struct addrinfo *res = resolve(host, port, 0), *ai;
	int fd = -1, err = 0;
	socklen_t len = sizeof(err);
	struct pollfd p;

	*err_text = "cannot resolve the address";
	if (!res)
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (reserved && bind_reserved(fd, ai->ai_addr, same_as_port)) {
			err = errno == EACCES ? EACCES : EADDRINUSE;
		} else if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			err = errno;
		} else {
			p.fd = fd;
			p.events = POLLOUT;
			if (poll(&p, 1, timeout_ms) == 1) {
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			} else {
				err = ETIMEDOUT;
			}
		}
		if (!err) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		*err_text = err == ECONNREFUSED ? "refused the connection" :
			    err == EACCES ? "cannot be called without root (a source port below 1024)" :
			    err == ETIMEDOUT ? "did not answer (timeout)" :
			    err == ENETUNREACH || err == EHOSTUNREACH ? "is unreachable" :
			    strerror(err);
	return fd;
}

int net_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

int net_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	size_t used = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	while (used + 1 < len) {
		long long left = end - now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		n = recv(fd, buf + used, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf[used] == '\n') {
			buf[used] = '\0';
			return 0;
		}
		used++;
	}
	return -1;
}

/* Hex words of /proc/net/tcp{,6}: each 32-bit word in host byte order. */
static int parse_addr(const char *hex, size_t n, unsigned char out[16])
{
	unsigned char raw[16];
	unsigned int i, words = n / 8;
	uint32_t w;
	char word[9];

	if (n != 8 && n != 32)
		return -1;
	for (i = 0; i < words; i++) {
		memcpy(word, hex + 8 * i, 8);
		word[8] = '\0';
		if (sscanf(word, "%8x", &w) != 1)
			return -1;
		memcpy(raw + 4 * i, &w, 4);
	}
	if (words == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, raw, 4);
	} else {
		memcpy(out, raw, 16);
	}
	return 0;
}

static int parse_endpoint_hex(const char *s, unsigned char addr[16], unsigned int *port)
{
	const char *colon = strchr(s, ':');

	if (!colon || parse_addr(s, colon - s, addr))
		return -1;
	return sscanf(colon + 1, "%4x", port) == 1 ? 0 : -1;
}

int tcp_table_line(const char *line, unsigned char local[16], unsigned int *local_port,
		   unsigned char remote[16], unsigned int *remote_port, unsigned int *state)
{
	char l[64], r[64];
	unsigned int slot;

	if (sscanf(line, " %u: %63s %63s %x", &slot, l, r, state) != 4)
		return -1;
	if (parse_endpoint_hex(l, local, local_port) || parse_endpoint_hex(r, remote, remote_port))
		return -1;
	return 0;
}

static void normalise(const struct sockaddr_storage *ss, unsigned char out[16])
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in->sin_addr, 4);
	} else {
		memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
}

/*
 * Scan both tables for a socket of state on local port (and from peer). With
 * local_out, look for connections *to* port at peer instead, and copy the
 * first one's local address.
 */
static int tcp_scan(unsigned int port, unsigned int want_state, const unsigned char *peer,
		    unsigned char *local_out)
{
	static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned char local[16], remote[16];
	unsigned int lport, rport, state, i;
	char line[512];
	FILE *f;
	int found = 0;

	for (i = 0; i < 2 && !found; i++) {
		f = fopen(tables[i], "r");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			if (tcp_table_line(line, local, &lport, remote, &rport, &state))
				continue;
			if (local_out) {
				found = rport == port && state == want_state && !memcmp(remote, peer, 16);
				if (found)
					memcpy(local_out, local, 16);
				continue;
			}
			found = lport == port && (state == want_state ||
				(want_state == TCP_ESTABLISHED_STATE && state == TCP_CLOSE_WAIT_STATE)) &&
				(!peer || !memcmp(remote, peer, 16));
		}
		fclose(f);
	}
	return found;
}

int tcp_port_listening(unsigned int port)
{
	return tcp_scan(port, TCP_LISTEN_STATE, NULL, NULL);
}

int tcp_peer_connected(unsigned int local_port, const struct sockaddr_storage *peer)
{
	unsigned char addr[16];

	normalise(peer, addr);
	return tcp_scan(local_port, TCP_ESTABLISHED_STATE, addr, NULL);
}
