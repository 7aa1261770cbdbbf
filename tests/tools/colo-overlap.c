// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-overlap: many concurrent O_DIRECT writes of random content to
 * overlapping ranges of one small area of a block device, then an exact
 * check of what the area holds.
 *
 * Threads write at 512-byte aligned offsets inside the area, sizes from
 * --min to --max (log-uniform magnitude, then uniform: many small writes,
 * some large ones), so writes of different threads overlap all the time
 * and their order is decided by the device. Every 512-byte sector of every
 * write is a pure function of (run id, thread, sequence number, sector
 * offset): a header naming them, then pseudo-random bytes.
 *
 * At the end the area is read back with O_DIRECT and every sector must be
 * exactly one of:
 *   - the area's content before the run, when no write covered it;
 *   - the sector of the LAST write of some thread that covered it (a
 *     thread's writes are sequential, so its earlier ones cannot be the
 *     final content). Which thread wins is up to the device.
 * A torn, misplaced, stale or foreign sector fails the run. The final image
 * depends on the order the device chose, so to compare two replicas run it
 * on one and compare the devices byte for byte afterwards.
 *
 * --max-latency-ms N: a write that takes longer than N ms fails the run
 * (the slowest is printed either way).
 * SIGUSR1 ends the writes early (each thread finishes the write it is in),
 * then the check runs as usual: for a load that must outlast an event of
 * unknown length.
 *
 * Exit: 0 all exact, 1 an I/O error or a wrong sector, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "test-io.h"

#define SECTOR 512
#define MAGIC 0x636f6c6f2d6f766cULL	/* "colo-ovl" */

struct sector_head {
	uint64_t magic;
	uint64_t run;
	uint64_t offset;	/* absolute byte offset on the device */
	uint32_t thread;
	uint32_t seq;		/* 1-based write number within the thread */
};

static const char *dev_path;
static uint64_t area_off, area_len = 1 << 20, min_size = SECTOR, max_size = 128 << 10;
static unsigned int nthreads = 8, seconds, max_latency_ms;
static unsigned long nwrites = 2000, seed = 1;
static uint64_t run_id;
static struct timespec t_start;
static volatile sig_atomic_t stop_writes;

/* last[t * nsect + s]: sequence number of thread t's last write covering
 * sector s of the area, 0 when it never wrote there. Each thread owns its
 * row, so no locking.
 */
static uint32_t *last;
static size_t nsect;

struct thread_result {
	unsigned long writes, slow_writes;
	uint64_t bytes;
	double max_latency;	/* seconds */
	int failed;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x ? x : 1;
}

/* The 512 bytes thread t's write seq puts at device byte offset off. */
static void fill_sector(unsigned char *p, uint32_t t, uint32_t seq, uint64_t off)
{
	struct sector_head h = {
		.magic = MAGIC, .run = run_id, .offset = off, .thread = t, .seq = seq,
	};
	uint64_t s = mix(run_id ^ mix(off) ^ (((uint64_t)t << 32) | seq));
	size_t k;

	memcpy(p, &h, sizeof(h));
	for (k = sizeof(h); k < SECTOR; k += 8)
		*(uint64_t *)(p + k) = next_rand(&s);
}

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t_start.tv_sec) + (now.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* A size in [min_size, max_size], a multiple of SECTOR. */
static uint64_t pick_size(uint64_t *s)
{
	unsigned int lo = 0, hi = 0, k;
	uint64_t size;

	while ((uint64_t)SECTOR << lo < min_size)
		lo++;
	while ((uint64_t)SECTOR << (hi + 1) <= max_size)
		hi++;
	if (hi < lo)
		hi = lo;
	k = lo + next_rand(s) % (hi - lo + 1);
	size = ((uint64_t)SECTOR << k) + (next_rand(s) % ((uint64_t)1 << k)) * SECTOR;
	if (size > max_size)
		size = max_size;
	if (size < min_size)
		size = min_size;
	return size;
}

struct thread_arg {
	uint32_t t;
	struct thread_result res;
};

/* Thread t: nwrites writes (or until --seconds), its row of last[] updated
 * after each one completed.
 */
static void *write_loop(void *p)
{
	struct thread_arg *a = p;
	uint64_t s = mix(seed * 1000003 + a->t + 1), size, off, k;
	unsigned char *buf = aligned(max_size);
	uint32_t *row = last + (size_t)a->t * nsect;
	int fd = open(dev_path, O_WRONLY | O_DIRECT);
	unsigned long i;
	double t0, lat;
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "colo-overlap: thread %u: open %s: %s\n", a->t, dev_path,
			strerror(errno));
		a->res.failed = 1;
		return NULL;
	}
	for (i = 1; i <= nwrites; i++) {
		if (stop_writes || (seconds && elapsed() >= seconds))
			break;
		size = pick_size(&s);
		off = (next_rand(&s) % ((area_len - size) / SECTOR + 1)) * SECTOR;
		for (k = 0; k < size; k += SECTOR)
			fill_sector(buf + k, a->t, i, area_off + off + k);
		t0 = elapsed();
		n = pwrite(fd, buf, size, area_off + off);
		lat = elapsed() - t0;
		if (lat > a->res.max_latency)
			a->res.max_latency = lat;
		if (max_latency_ms && lat * 1000 > max_latency_ms && !a->res.slow_writes++)
			fprintf(stderr, "colo-overlap: thread %u: write %" PRIu64 "+%" PRIu64
				" took %.0f ms (limit %u)\n", a->t, area_off + off, size, lat * 1000,
				max_latency_ms);
		if (n != (ssize_t)size) {
			fprintf(stderr, "colo-overlap: thread %u: write %" PRIu64 "+%" PRIu64 ": %s\n",
				a->t, area_off + off, size, n < 0 ? strerror(errno) : "short write");
			a->res.failed = 1;
			break;
		}
		for (k = 0; k < size / SECTOR; k++)
			row[off / SECTOR + k] = i;
		a->res.writes++;
		a->res.bytes += size;
	}
	close(fd);
	free(buf);
	return NULL;
}

static int read_area(unsigned char *buf)
{
	int fd = open(dev_path, O_RDONLY | O_DIRECT);
	ssize_t n;

	if (fd < 0) {
		fprintf(stderr, "colo-overlap: open %s: %s\n", dev_path, strerror(errno));
		return -1;
	}
	n = pread(fd, buf, area_len, area_off);
	close(fd);
	if (n != (ssize_t)area_len) {
		fprintf(stderr, "colo-overlap: read %s: %s\n", dev_path,
			n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

/* Sector s of the final image: see the header comment. */
static int check_sector(const unsigned char *got, const unsigned char *initial, size_t s)
{
	unsigned char want[SECTOR];
	struct sector_head h;
	uint64_t off = area_off + s * SECTOR;
	unsigned int t;
	int written = 0;

	for (t = 0; t < nthreads; t++)
		written |= last[(size_t)t * nsect + s] != 0;
	if (!written) {
		if (!memcmp(got, initial, SECTOR))
			return 0;
		fprintf(stderr, "colo-overlap: sector at %" PRIu64 " was never written but changed\n",
			off);
		return 1;
	}
	memcpy(&h, got, sizeof(h));
	if (h.magic != MAGIC || h.run != run_id || h.offset != off || h.thread >= nthreads) {
		fprintf(stderr, "colo-overlap: sector at %" PRIu64 " holds no write of this run "
			"for this offset (magic %s, offset %" PRIu64 ")\n", off,
			h.magic == MAGIC && h.run == run_id ? "ok" : "bad", h.offset);
		return 1;
	}
	if (h.seq != last[(size_t)h.thread * nsect + s]) {
		fprintf(stderr, "colo-overlap: sector at %" PRIu64 " holds write %u of thread %u, "
			"whose last write there was %u\n", off, h.seq, h.thread,
			last[(size_t)h.thread * nsect + s]);
		return 1;
	}
	fill_sector(want, h.thread, h.seq, off);
	if (memcmp(got, want, SECTOR)) {
		fprintf(stderr, "colo-overlap: sector at %" PRIu64 " (thread %u write %u) is torn\n",
			off, h.thread, h.seq);
		return 1;
	}
	return 0;
}

static void on_usr1(int sig)
{
	(void)sig;
	stop_writes = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: colo-overlap --dev DEV [--offset BYTES] [--area BYTES] [--threads N]\n"
		"                    [--writes N] [--min BYTES] [--max BYTES] [--seconds S]\n"
		"                    [--seed N] [--max-latency-ms N]\n"
		"  defaults: area 1 MiB at 0, 8 threads, 2000 writes each, sizes 512 B..128 KiB;\n"
		"  --seconds S stops each thread after S seconds (or its writes, whichever first);\n"
		"  SIGUSR1 stops them at once; the check follows in every case\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	struct thread_arg *args;
	pthread_t *tids;
	unsigned char *initial, *final;
	unsigned long total = 0, slow = 0;
	uint64_t bytes = 0;
	double max_lat = 0;
	size_t s, bad = 0;
	unsigned int t;
	int i, failed = 0;

	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--dev"))
			dev_path = v;
		else if (!strcmp(a, "--offset"))
			area_off = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--area"))
			area_len = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--threads"))
			nthreads = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--writes"))
			nwrites = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--min"))
			min_size = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--max"))
			max_size = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			seconds = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			seed = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--max-latency-ms"))
			max_latency_ms = strtoul(v, NULL, 0);
		else
			usage();
	}
	if (!dev_path || !nthreads || nthreads > 256 || !area_len || area_off % SECTOR ||
	    area_len % SECTOR || !min_size || min_size % SECTOR || max_size % SECTOR ||
	    min_size > max_size || max_size > area_len)
		usage();

	if (getrandom(&run_id, sizeof(run_id), 0) != sizeof(run_id))
		run_id = mix((uint64_t)time(NULL) ^ (uint64_t)getpid() << 32);
	nsect = area_len / SECTOR;
	last = calloc((size_t)nthreads * nsect, sizeof(*last));
	args = calloc(nthreads, sizeof(*args));
	tids = calloc(nthreads, sizeof(*tids));
	initial = aligned(area_len);
	final = aligned(area_len);
	if (!last || !args || !tids) {
		perror("colo-overlap: calloc");
		return 1;
	}
	if (read_area(initial))
		return 1;

	clock_gettime(CLOCK_MONOTONIC, &t_start);
	for (t = 0; t < nthreads; t++) {
		args[t].t = t;
		if (pthread_create(&tids[t], NULL, write_loop, &args[t])) {
			fprintf(stderr, "colo-overlap: pthread_create failed\n");
			return 1;
		}
	}
	for (t = 0; t < nthreads; t++) {
		pthread_join(tids[t], NULL);
		failed |= args[t].res.failed;
		total += args[t].res.writes;
		bytes += args[t].res.bytes;
		slow += args[t].res.slow_writes;
		if (args[t].res.max_latency > max_lat)
			max_lat = args[t].res.max_latency;
	}
	printf("colo-overlap: %u threads, %lu writes, %" PRIu64 " bytes in %.1f s, slowest write %.0f ms\n",
	       nthreads, total, bytes, elapsed(), max_lat * 1000);
	if (slow) {
		fprintf(stderr, "colo-overlap: %lu writes took more than %u ms\n", slow, max_latency_ms);
		failed = 1;
	}

	if (read_area(final))
		return 1;
	for (s = 0; s < nsect; s++)
		if (check_sector(final + s * SECTOR, initial + s * SECTOR, s) && ++bad >= 10) {
			fprintf(stderr, "colo-overlap: (stopping after 10 wrong sectors)\n");
			break;
		}
	if (bad)
		failed = 1;
	free(initial);
	free(final);
	free(last);
	free(args);
	free(tids);
	return failed;
}
