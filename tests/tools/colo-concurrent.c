// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-concurrent: the concurrent model. Writer processes on the primary's
 * device and on the secondary view at once, on disjoint 512-byte sectors
 * that share every 4 KiB block and so every chunk (copy-on-write and
 * read-modify-write of one chunk race), while reader processes check every
 * acknowledged write on both devices.
 *
 * Sector s belongs to writer (s % (2 * W)): 0..W-1 write through
 * --primary (colo-ingress, or colo-primary in the pair), W..2W-1 through
 * --secondary (colo-secondary's view). A written sector holds its number,
 * a sequence number and bytes derived from both, so a reader knows which
 * write it sees. Shared memory holds, per sector, the last sequence number
 * issued and the last acknowledged (pwrite returned). A reader records the
 * acknowledged numbers of a range, reads it with O_DIRECT, then records the
 * issued ones, and for each sector requires, exactly:
 *   - on the device its writer writes through: the content of write q with
 *     acked-before <= q <= issued-after (q = 0: the initial bytes), or,
 *     while a write of it was in flight, 8-byte words of those versions
 *     (a read that overlaps a write may see part of it);
 *   - on the other device: the initial bytes (a primary write is never
 *     visible in the secondary view within an epoch; a secondary write
 *     never reaches the disk or the primary).
 *
 * At the end it writes the models and compares the devices with them:
 *   --out-primary: initial image + the primary writes (the primary's
 *                  device, the secondary disk, and the view after a
 *                  checkpoint)
 *   --out-secondary: initial image + the secondary writes (the view, and
 *                  the disk after a failover)
 *
 * Exit: 0 all exact, 1 a mismatch or I/O error, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-io.h"

#define SECTOR 512
#define MAX_READ (64 << 10)

static const char *primary_path, *secondary_path, *initial_path, *until_path;
static const char *out_primary_path, *out_secondary_path;
static size_t region;
static unsigned int writers = 4, readers = 1;
static unsigned long ops = 2000, seed = 1;

static unsigned char *initial;
static uint32_t *issued, *acked;	/* per sector, shared */
static volatile uint32_t *writers_left;	/* readers stop when it is 0 */

/* The content of write q (> 0) of sector s. */
static void fill_sector(unsigned char *buf, uint64_t s, uint32_t q)
{
	uint64_t r = (s * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)q << 32) ^ seed ^ 0x5bd1e995;
	size_t k;

	((uint64_t *)buf)[0] = s;
	((uint64_t *)buf)[1] = q;
	for (k = 16; k < SECTOR; k += 8) {
		if (!r)
			r = 1;
		*(uint64_t *)(buf + k) = next_rand(&r);
	}
}

static int owner(uint64_t s)
{
	return s % (2 * writers);
}

static int is_primary_writer(int w)
{
	return w < (int)writers;
}

static int more(unsigned long done)
{
	return done < ops || (until_path && access(until_path, F_OK));
}

static int writer(int w)
{
	const char *path = is_primary_writer(w) ? primary_path : secondary_path;
	uint64_t nsec = region / SECTOR, owned = nsec / (2 * writers), s, rs;
	unsigned char *buf = aligned(SECTOR);
	int fd = open_direct(path, O_WRONLY);
	unsigned long i;
	uint32_t q;

	rs = seed * 1000003 + w + 1;
	for (i = 0; more(i); i++) {
		s = (next_rand(&rs) % owned) * 2 * writers + w;
		q = __atomic_load_n(&issued[s], __ATOMIC_SEQ_CST) + 1;
		fill_sector(buf, s, q);
		__atomic_store_n(&issued[s], q, __ATOMIC_SEQ_CST);
		if (pwrite(fd, buf, SECTOR, s * SECTOR) != SECTOR) {
			fprintf(stderr, "writer %d (%s): write sector %" PRIu64 ": %s\n", w, path, s,
				strerror(errno));
			return 1;
		}
		__atomic_store_n(&acked[s], q, __ATOMIC_SEQ_CST);
	}
	close(fd);
	return 0;
}

/* The bytes of version q of sector s: write q, or the initial bytes (0). */
static const unsigned char *version(uint64_t s, uint32_t q, unsigned char *buf)
{
	if (!q)
		return initial + s * SECTOR;
	fill_sector(buf, s, q);
	return buf;
}

/*
 * Sector s as read through the primary (on_primary) or the view, while the
 * writes lo..hi of it were acknowledged (lo) or issued (hi): exactly one of
 * those versions; or, where a write was in flight (lo < hi), each 8-byte
 * word one of theirs (a read that overlaps a write may see part of it: no
 * device makes the two atomic, brd's memcpy does not).
 */
static int check_sector(const unsigned char *got, uint64_t s, int on_primary, uint32_t lo,
			uint32_t hi, const char *who)
{
	static unsigned char want[SECTOR];
	int visible = is_primary_writer(owner(s)) == on_primary;
	const uint64_t *w = (const uint64_t *)got, *v;
	uint32_t q;
	size_t k;

	if (!visible) {
		if (!memcmp(got, initial + s * SECTOR, SECTOR))
			return 0;
		fprintf(stderr, "%s: sector %" PRIu64 " (writer %d): a write of the other node is visible\n",
			who, s, owner(s));
		return 1;
	}
	for (q = lo; q <= hi; q++)
		if (!memcmp(got, version(s, q, want), SECTOR))
			return 0;
	if (lo == hi) {
		fprintf(stderr, "%s: sector %" PRIu64 " (writer %d): holds sector %" PRIu64
			" write %" PRIu64 ", want %s %u, nothing in flight\n", who, s, owner(s),
			w[0], w[1], lo ? "write" : "the initial bytes of", lo);
		return 1;
	}
	for (k = 0; k < SECTOR / 8; k++) {
		for (q = lo; q <= hi; q++) {
			v = (const uint64_t *)version(s, q, want);
			if (w[k] == v[k])
				break;
		}
		if (q > hi) {
			fprintf(stderr, "%s: sector %" PRIu64 " (writer %d): byte %zu is in none of writes %u..%u\n",
				who, s, owner(s), k * 8, lo, hi);
			return 1;
		}
	}
	return 0;
}

static int reader(int r, int on_primary)
{
	const char *path = on_primary ? primary_path : secondary_path;
	uint64_t nsec = region / SECTOR, rs = seed * 7919 + r * 2 + on_primary + 100, first, n, k;
	unsigned char *buf = aligned(MAX_READ);
	uint32_t *lo = malloc(MAX_READ / SECTOR * sizeof(*lo));
	int fd = open_direct(path, O_RDONLY);
	char who[64];
	unsigned long reads = 0;

	snprintf(who, sizeof(who), "reader %d (%s)", r, path);
	while (*writers_left || !reads) {
		n = 1 + next_rand(&rs) % (MAX_READ / SECTOR);
		first = next_rand(&rs) % (nsec - n + 1);
		for (k = 0; k < n; k++)
			lo[k] = __atomic_load_n(&acked[first + k], __ATOMIC_SEQ_CST);
		if (pread(fd, buf, n * SECTOR, first * SECTOR) != (ssize_t)(n * SECTOR)) {
			fprintf(stderr, "%s: read %" PRIu64 "+%" PRIu64 ": %s\n", who, first, n,
				strerror(errno));
			return 1;
		}
		for (k = 0; k < n; k++)
			if (check_sector(buf + k * SECTOR, first + k, on_primary, lo[k],
					 __atomic_load_n(&issued[first + k], __ATOMIC_SEQ_CST), who))
				return 1;
		reads++;
	}
	close(fd);
	return 0;
}

/* The final model of what the primary (or secondary) writers made. */
static unsigned char *model(int primary)
{
	unsigned char *m = malloc(region);
	uint64_t s, nsec = region / SECTOR;

	if (!m) {
		perror("malloc");
		exit(1);
	}
	memcpy(m, initial, region);
	for (s = 0; s < nsec; s++)
		if (is_primary_writer(owner(s)) == primary && acked[s])
			fill_sector(m + s * SECTOR, s, acked[s]);
	return m;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: colo-concurrent --primary DEV --secondary DEV --initial FILE --size BYTES\n"
		"                       --out-primary FILE --out-secondary FILE\n"
		"                       [--writers N] [--readers N] [--ops N] [--seed N] [--until FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned char *m_primary, *m_secondary;
	int i, status, failed = 0;
	unsigned int w, r;
	pid_t pid;
	void *shared;
	size_t nsec;

	static const struct option opts[] = {
		{ "primary", required_argument, NULL, 'p' },
		{ "secondary", required_argument, NULL, 's' },
		{ "initial", required_argument, NULL, 'i' },
		{ "size", required_argument, NULL, 'z' },
		{ "out-primary", required_argument, NULL, 'P' },
		{ "out-secondary", required_argument, NULL, 'S' },
		{ "writers", required_argument, NULL, 'w' },
		{ "readers", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'o' },
		{ "seed", required_argument, NULL, 'e' },
		{ "until", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 }
	};
	const char **paths[128] = {
		['p'] = &primary_path, ['s'] = &secondary_path, ['i'] = &initial_path,
		['P'] = &out_primary_path, ['S'] = &out_secondary_path, ['u'] = &until_path,
	};

	while ((i = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (i > 0 && i < 128 && paths[i])
			*paths[i] = optarg;
		else if (i == 'z')
			region = strtoull(optarg, NULL, 0);
		else if (i == 'w')
			writers = strtoul(optarg, NULL, 0);
		else if (i == 'r')
			readers = strtoul(optarg, NULL, 0);
		else if (i == 'o')
			ops = strtoul(optarg, NULL, 0);
		else if (i == 'e')
			seed = strtoul(optarg, NULL, 0);
		else
			usage();
	}
	if (optind != argc || !primary_path || !secondary_path || !initial_path || !out_primary_path ||
	    !out_secondary_path || !writers || writers > 64 || !region ||
	    region % (SECTOR * 2 * writers) || region < MAX_READ)
		usage();

	nsec = region / SECTOR;
	initial = malloc(region);
	shared = mmap(NULL, 2 * nsec * sizeof(uint32_t) + 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!initial || shared == MAP_FAILED || load_file(initial_path, initial, region)) {
		fprintf(stderr, "colo-concurrent: cannot load %s\n", initial_path);
		return 1;
	}
	writers_left = shared;
	issued = (uint32_t *)((char *)shared + 4096);
	acked = issued + nsec;
	*writers_left = 2 * writers;

	for (w = 0; w < 2 * writers + 2 * readers; w++) {
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (!pid) {
			if (w < 2 * writers) {
				int rc = writer(w);

				__atomic_sub_fetch(writers_left, 1, __ATOMIC_SEQ_CST);
				_exit(rc);
			}
			r = w - 2 * writers;
			_exit(reader(r / 2, r % 2));
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;

	m_primary = model(1);
	m_secondary = model(0);
	if (save_file(out_primary_path, m_primary, region) ||
	    save_file(out_secondary_path, m_secondary, region)) {
		fprintf(stderr, "colo-concurrent: cannot write the models\n");
		return 1;
	}
	failed |= compare_device(primary_path, m_primary, region, "primary");
	failed |= compare_device(secondary_path, m_secondary, region, "secondary view");
	return failed;
}
