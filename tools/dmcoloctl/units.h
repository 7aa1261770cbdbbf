/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMCOLOCTL_UNITS_H
#define DMCOLOCTL_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse a size: a decimal number with an optional binary suffix
 * k/K (KiB), m/M, g/G, t/T, or "s" for 512-byte sectors; no suffix means
 * bytes. Returns 0 and sets *bytes, or -1 for anything else (empty,
 * negative, trailing junk, overflow).
 */
int parse_size(const char *text, uint64_t *bytes);

/* A TCP port, 1..65535, in decimal. 0 and sets *port, or -1. */
int parse_port(const char *text, unsigned int *port);

/* A count or a number of seconds: decimal digits only. 0 and sets *count, or -1. */
int parse_count(const char *text, unsigned int *count);

/*
 * Parse an endpoint: "HOST:PORT", "[IPV6]:PORT" or, when default_port is
 * non-zero, also "HOST" and "[IPV6]". HOST is a name or an address; an IPv6
 * address with a port must be in brackets and may carry a zone
 * ("[fe80::2%eth0]:10809"). A bare IPv6 address without brackets is taken
 * whole as HOST with default_port. Returns 0 and fills host (NUL-terminated,
 * without brackets) and *port (1..65535), or -1.
 */
int parse_endpoint(const char *text, unsigned int default_port, char *host, size_t host_len,
		   unsigned int *port);

/* Format n bytes as "12.5 MiB" style text into buf. */
void format_bytes(uint64_t n, char *buf, size_t len);

#endif
