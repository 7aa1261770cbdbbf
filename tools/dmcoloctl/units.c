// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

/* The shift of a size suffix: none (bytes), s (sectors), k, m, g or t. */
static int suffix_shift(char suffix)
{
	static const char binary[] = "kmgt";
	const char *at;

	if (!suffix)
		return 0;
	if (suffix == 's')
		return 9;
	at = strchr(binary, tolower((unsigned char)suffix));
	return at ? 10 * (int)(at - binary + 1) : -1;
}

int parse_size(const char *text, uint64_t *bytes)
{
	unsigned long long value;
	char *end;
	int shift;

	if (!text || !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return -1;
	shift = suffix_shift(*end);
	if (shift < 0 || (*end && end[1]))
		return -1;
	if (shift && value > (UINT64_MAX >> shift))
		return -1;
	*bytes = (uint64_t)value << shift;
	return 0;
}

int parse_count(const char *text, unsigned int *count)
{
	unsigned long value;
	char *end;

	if (!text || !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || value > UINT_MAX)
		return -1;
	*count = value;
	return 0;
}

int parse_port(const char *text, unsigned int *port)
{
	unsigned long value;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || value < 1 || value > 65535)
		return -1;
	*port = value;
	return 0;
}

static int copy_host(const char *start, size_t n, char *host, size_t host_len)
{
	size_t i;

	if (n == 0 || n >= host_len)
		return -1;
	for (i = 0; i < n; i++)
		if (isspace((unsigned char)start[i]) || start[i] == '[' || start[i] == ']' ||
		    start[i] == '/')
			return -1;
	memcpy(host, start, n);
	host[n] = '\0';
	return 0;
}

int parse_endpoint(const char *text, unsigned int default_port, char *host, size_t host_len,
		   unsigned int *port)
{
	const char *colon, *close;

	if (!text || !*text)
		return -1;
	if (text[0] == '[') {
		close = strchr(text, ']');
		if (!close || !strchr(text, ':') || strchr(close + 1, ']'))
			return -1;
		if (copy_host(text + 1, close - text - 1, host, host_len))
			return -1;
		if (!close[1]) {
			if (!default_port)
				return -1;
			*port = default_port;
			return 0;
		}
		return close[1] == ':' ? parse_port(close + 2, port) : -1;
	}
	colon = strchr(text, ':');
	if (colon && strchr(colon + 1, ':')) {
		/* An IPv6 address without brackets: no port in it. */
		if (!default_port)
			return -1;
		*port = default_port;
		return copy_host(text, strlen(text), host, host_len);
	}
	if (!colon) {
		if (!default_port)
			return -1;
		*port = default_port;
		return copy_host(text, strlen(text), host, host_len);
	}
	if (copy_host(text, colon - text, host, host_len))
		return -1;
	return parse_port(colon + 1, port);
}

void format_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const suffix[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned int i = 0;
	double v = n;

	while (v >= 1024 && i < sizeof(suffix) / sizeof(suffix[0]) - 1) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, suffix[i]);
}
