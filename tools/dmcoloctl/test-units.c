// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of parse_size() and parse_endpoint(); prints KTAP. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "units.h"

static const struct {
	const char *text;
	int ret;
	uint64_t bytes;
} cases[] = {
	{ "0", 0, 0 },
	{ "4096", 0, 4096 },
	{ "8s", 0, 4096 },
	{ "64k", 0, 65536 },
	{ "64K", 0, 65536 },
	{ "1M", 0, 1048576 },
	{ "2g", 0, 2147483648ULL },
	{ "1T", 0, 1099511627776ULL },
	{ "16777215T", 0, 16777215ULL << 40 },
	{ "16777216T", -1, 0 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551616", -1, 0 },
	{ "", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ " 1", -1, 0 },
	{ "1 ", -1, 0 },
	{ "k", -1, 0 },
	{ "1KB", -1, 0 },
	{ "1x", -1, 0 },
	{ "0x10", -1, 0 },
};

static const struct {
	const char *text;
	unsigned int default_port;
	int ret;
	const char *host;
	unsigned int port;
} endpoints[] = {
	{ "10.0.0.2:10809", 0, 0, "10.0.0.2", 10809 },
	{ "10.0.0.2", 10809, 0, "10.0.0.2", 10809 },
	{ "10.0.0.2", 0, -1, "", 0 },
	{ "node-b.example:7000", 0, 0, "node-b.example", 7000 },
	{ "[fe80::2%veth0]:10809", 0, 0, "fe80::2%veth0", 10809 },
	{ "[fe80::2%veth0]", 10809, 0, "fe80::2%veth0", 10809 },
	{ "fe80::2%veth0", 10809, 0, "fe80::2%veth0", 10809 },
	{ "fe80::2%veth0", 0, -1, "", 0 },
	{ "[::1]:0", 0, -1, "", 0 },
	{ "[::1]:65536", 0, -1, "", 0 },
	{ "[::1]:65535", 0, 0, "::1", 65535 },
	{ "[::1]x", 10809, -1, "", 0 },
	{ "[::1", 10809, -1, "", 0 },
	{ "host:", 0, -1, "", 0 },
	{ ":10809", 0, -1, "", 0 },
	{ "host:12ab", 0, -1, "", 0 },
	{ "host:-1", 0, -1, "", 0 },
	{ "a b:1", 0, -1, "", 0 },
	{ "", 10809, -1, "", 0 },
};

int main(void)
{
	unsigned int i, n = sizeof(cases) / sizeof(cases[0]), failed = 0;
	unsigned int ne = sizeof(endpoints) / sizeof(endpoints[0]);

	printf("TAP version 13\n1..%u\n", n + ne);
	for (i = 0; i < n; i++) {
		uint64_t bytes = 0;
		int ret = parse_size(cases[i].text, &bytes);
		int ok = ret == cases[i].ret && (ret || bytes == cases[i].bytes);

		failed += !ok;
		printf("%sok %u parse_size(\"%s\")\n", ok ? "" : "not ", i + 1, cases[i].text);
		if (!ok)
			printf("# got %d/%" PRIu64 ", want %d/%" PRIu64 "\n", ret, bytes,
			       cases[i].ret, cases[i].bytes);
	}
	for (i = 0; i < ne; i++) {
		char host[64] = "";
		unsigned int port = 0;
		int ret = parse_endpoint(endpoints[i].text, endpoints[i].default_port, host,
					 sizeof(host), &port);
		int ok = ret == endpoints[i].ret &&
			 (ret || (!strcmp(host, endpoints[i].host) && port == endpoints[i].port));

		failed += !ok;
		printf("%sok %u parse_endpoint(\"%s\", %u)\n", ok ? "" : "not ", n + i + 1,
		       endpoints[i].text, endpoints[i].default_port);
		if (!ok)
			printf("# got %d '%s' %u\n", ret, host, port);
	}
	return failed ? 1 : 0;
}
