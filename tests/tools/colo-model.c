// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-model: a seeded, model-based random test of dm-colo on real devices.
 *
 * It keeps an exact in-memory model of what each device must hold and
 * drives the real devices (O_DIRECT, one operation at a time, except the
 * "pair" operation that races a primary and a secondary write to one chunk
 * on two threads) with random sequences of writes, reads, write-zeroes,
 * discards, flushes, checkpoints, stop/start, messages in wrong states and a
 * failover at a random point. Every read is compared with the model, the
 * colo-secondary status (state, buffered chunks) after every operation, and
 * at the end of a seed every byte of every device.
 *
 *   secondary mode: the program makes its own devices for each seed over
 *     DISK and BUFFER: colo-secondary "colo-model" over a random chunk size
 *     and length, a buffer slice (dm-linear) of random capacity (sometimes
 *     small enough to fill: buffer_full, broken), and colo-ingress
 *     "colo-model-in", through which it writes as the primary would.
 *   pair mode: an existing two-node bed (tests/lib/colo.sh pair_setup):
 *     writes go through colo-primary, which forwards them over NBD to the
 *     secondary's colo-ingress (write-zeroes and discards too: see
 *     op_primary_data for a discard's rule). The disk is known only after
 *     the primary's checkpoint (a barrier plus a flush); the secondary view
 *     is exact at all times: the checkpoint image plus the secondary's
 *     writes. --reset CMD rebuilds the bed after a failover.
 *
 * A mismatch prints the seed, the operation and the bytes, then replays the
 * seed on fresh devices with shorter prefixes (binary search) and prints
 * the shortest failing prefix found, with its operations. Exit status: 0
 * all seeds passed, 1 a mismatch, 2 usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libdevmapper.h>

#include "test-dm.h"
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512u
#define OPS_SHOWN 24		/* operations printed before a failure */

enum mode { MODE_SECONDARY, MODE_PAIR };
enum state { ST_IDLE, ST_RUNNING, ST_BROKEN, ST_MERGING, ST_STANDALONE };
static const char *const state_names[] = {
	"idle", "running", "broken", "merging", "standalone",
};

enum op_kind {
	OP_IN_WRITE, OP_IN_ZERO, OP_IN_DISCARD, OP_IN_READ, OP_IN_FLUSH,
	OP_SEC_WRITE, OP_SEC_ZERO, OP_SEC_DISCARD, OP_SEC_READ, OP_SEC_FLUSH,
	OP_PAIR, OP_CHECKPOINT, OP_STOP, OP_START, OP_FAILOVER, OP_BAD_MESSAGE,
	OP_PRI_WRITE, OP_PRI_ZERO, OP_PRI_READ, OP_PRI_FLUSH, OP_BARRIER,
	OP_PRI_DISCARD,
	OP_KINDS
};
static const char *const op_names[] = {
	"ingress-write", "ingress-zeroes", "ingress-discard", "ingress-read",
	"ingress-flush", "secondary-write", "secondary-zeroes",
	"secondary-discard", "secondary-read", "secondary-flush",
	"pair-race", "checkpoint", "stop", "start", "failover", "bad-message",
	"primary-write", "primary-zeroes", "primary-read", "primary-flush",
	"primary-barrier", "primary-discard",
};

struct options {
	enum mode mode;
	const char *disk, *buffer;		/* secondary mode: raw devices */
	const char *primary, *secondary;	/* pair mode: dm names */
	const char *local, *reset;
	uint64_t seed;
	unsigned int seeds, ops, first_result;
	bool no_failover;
};

/* One seed's run. */
struct run {
	const struct options *opt;
	uint64_t seed, rng;
	unsigned int limit;		/* stop after this many operations */
	unsigned int done;		/* operations completed */
	char log[OPS_SHOWN][160];	/* the last operations, a ring */

	/* geometry */
	unsigned int chunk;		/* bytes */
	uint64_t size;			/* bytes of the target */
	unsigned int nchunks, capacity;

	/* devices */
	char sec_name[64], in_name[64], buf_name[64], pri_name[64];
	int fd_sec, fd_in, fd_disk, fd_pri, fd_local;

	/* the model */
	enum state state;
	uint8_t *disk, *view, *local;
	/* pair mode, per sector: DISCARD_PENDING, a primary discard reached it
	 * since the last barrier, and the remote holds it either as before the
	 * discard (@alt) or zeros; DISCARD_DIVERGED, a barrier found what the
	 * remote holds (in @disk), which may differ from @local; 0, the remote
	 * holds @local from the next barrier on. A primary write ends both. */
	uint8_t *discarded, *alt;
	bool remote_discards;		/* the remote takes forwarded discards */
	uint8_t *buffered;		/* per chunk, this epoch */
	unsigned int nbuffered;
	bool pri_dead;			/* pair mode: after a failover */
	bool buffered_known;		/* pair mode: false until a barrier */
	bool saw_broken;		/* the buffer filled up in this seed */
	unsigned int to_merge;
	bool to_merge_known;

	uint8_t *io, *io2;		/* O_DIRECT buffers */
	bool failed;
	char why[512];
};

static bool verbose;
static unsigned long long stats[OP_KINDS];	/* operations done, by kind */
static unsigned int broken_seeds;		/* seeds that filled the buffer */
/* pair mode: sectors primary discards left pending at a barrier, by what
 * the secondary disk held then (a discard that changed nothing anywhere
 * tests little: these say whether the devices did discard) */
static unsigned long long remote_discard_zeroed, remote_discard_kept;

/* ---- random numbers: splitmix64, one stream per seed */

static uint64_t rnd(struct run *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int below(struct run *r, unsigned int n)
{
	return n ? rnd(r) % n : 0;
}

static void fill_random(struct run *r, uint8_t *p, size_t len)
{
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = rnd(r);
		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = rnd(r);
}

/* ---- failures */

static void fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static void note_op(struct run *r, const char *fmt, ...)
{
	va_list ap;
	char *line = r->log[r->done % OPS_SHOWN];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(r->log[0]), fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "seed %" PRIu64 " op %u: %s\n", r->seed, r->done + 1, line);
}

/* first differing byte of two ranges, or -1 */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/* ---- device-mapper */

/*
 * Pair mode: whether colo-primary forwards discards, that is whether its
 * remote device (the table's second device, MAJ:MIN) takes them.
 */
static bool remote_takes_discards(const char *primary)
{
	char table[512], remote[64], path[128];
	unsigned long long max = 0;
	FILE *f;

	if (!test_dm_params(DM_DEVICE_TABLE, primary, table, sizeof(table)) ||
	    sscanf(table, "%*s %63s", remote) != 1)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%s/queue/discard_max_bytes", remote);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%llu", &max) != 1)
		max = 0;
	fclose(f);
	return max > 0;
}

/* An O_DIRECT descriptor for a dm device by name (the /dev/dm-N node that
 * devtmpfs made: no udev in the test VM). */
static int dm_open(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info = { 0 };
	char path[64];

	if (!dmt)
		return -1;
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, &info) || !info.exists) {
		dm_task_destroy(dmt);
		return -1;
	}
	dm_task_destroy(dmt);
	snprintf(path, sizeof(path), "/dev/dm-%u", info.minor);
	return open(path, O_RDWR | O_DIRECT);
}

static bool devt_of(const char *path, char *out, size_t len)
{
	struct stat st;

	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return false;
	snprintf(out, len, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return true;
}

/* ---- secondary status */

struct sec_status {
	enum state state;
	unsigned long epoch, buffered, capacity, merged, to_merge;
	char error[32];
};

static bool sec_status(struct run *r, struct sec_status *st)
{
	char line[256], word[32];
	unsigned int i;

	if (!test_dm_params(DM_DEVICE_STATUS, r->sec_name, line, sizeof(line)))
		return false;
	if (sscanf(line, "%31s %lu %lu/%lu %lu/%lu %*u %*u %31s", word, &st->epoch,
		   &st->buffered, &st->capacity, &st->merged, &st->to_merge,
		   st->error) != 7)
		return false;
	for (i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (!strcmp(word, state_names[i])) {
			st->state = i;
			return true;
		}
	return false;
}

/* ---- I/O: all whole sectors, O_DIRECT, through aligned buffers */

static int dev_write(int fd, const uint8_t *p, uint64_t off, size_t len)
{
	ssize_t n = pwrite(fd, p, len, off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int dev_read(int fd, uint8_t *p, uint64_t off, size_t len)
{
	ssize_t n = pread(fd, p, len, off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int dev_range_ioctl(int fd, unsigned long req, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };

	return ioctl(fd, req, range) ? -errno : 0;
}

/*
 * A write of fresh random data (left in r->io for the model), a
 * write-zeroes or a discard of [off, off + len) on fd.
 */
static int data_op(struct run *r, int fd, bool write, bool zero, uint64_t off, uint64_t len)
{
	if (write) {
		fill_random(r, r->io, len);
		return dev_write(fd, r->io, off, len);
	}
	return dev_range_ioctl(fd, zero ? BLKZEROOUT : BLKDISCARD, off, len);
}

static int dev_flush(int fd)
{
	return fsync(fd) ? -errno : 0;
}

/* Compare device bytes with the model; name the first difference. */
static bool check_bytes(struct run *r, const char *what, const uint8_t *got,
			const uint8_t *want, uint64_t off, size_t len)
{
	long d = first_diff(got, want, len);

	if (d < 0)
		return true;
	fail(r, "%s: byte %" PRIu64 " (chunk %" PRIu64 ", sector %" PRIu64
	     ") is 0x%02x, the model says 0x%02x", what, off + d,
	     (off + d) / r->chunk, (off + d) / SECTOR, got[d], want[d]);
	return false;
}

/* Read a whole device region in 1 MiB pieces and compare. */
static bool check_device(struct run *r, const char *what, int fd,
			 const uint8_t *model, uint64_t size)
{
	uint64_t off;
	size_t len;
	int ret;

	for (off = 0; off < size; off += len) {
		len = size - off < (1u << 20) ? size - off : (1u << 20);
		ret = dev_read(fd, r->io, off, len);
		if (ret) {
			fail(r, "%s: read at %" PRIu64 ": %s", what, off, strerror(-ret));
			return false;
		}
		if (!check_bytes(r, what, r->io, model + off, off, len))
			return false;
	}
	return true;
}

/* ---- the model's rules (see Documentation/.../dm-colo.rst) */

static unsigned int first_chunk(struct run *r, uint64_t off)
{
	return off / r->chunk;
}

static unsigned int last_chunk(struct run *r, uint64_t off, uint64_t len)
{
	return (off + len - 1) / r->chunk;
}

/*
 * A primary write (ingress) while running or broken: each chunk, in address
 * order, passes when it is buffered, else takes a slot (its original is
 * saved) while there is one; the first one that cannot breaks the
 * replication, and from then on only buffered chunks pass. Returns whether
 * every chunk passed; @pass[i] says which did.
 */
static bool model_ingress_chunks(struct run *r, uint64_t off, uint64_t len, bool *pass)
{
	unsigned int c, i = 0;
	bool all = true;

	for (c = first_chunk(r, off); c <= last_chunk(r, off, len); c++, i++) {
		pass[i] = true;
		if (r->state == ST_IDLE || r->buffered[c])
			continue;
		if (r->state == ST_BROKEN || r->nbuffered >= r->capacity) {
			r->state = ST_BROKEN;
			r->saw_broken = true;
			pass[i] = false;
			all = false;
			continue;
		}
		r->buffered[c] = 1;
		r->nbuffered++;
	}
	return all;
}

/* A secondary write while running or broken: a chunk that is not buffered
 * takes a slot (filled from the disk) or fails alone; no state change. */
static bool model_secondary_chunks(struct run *r, uint64_t off, uint64_t len, bool *pass)
{
	unsigned int c, i = 0;
	bool all = true;

	for (c = first_chunk(r, off); c <= last_chunk(r, off, len); c++, i++) {
		pass[i] = true;
		if (r->state != ST_RUNNING && r->state != ST_BROKEN)
			continue;
		if (r->buffered[c])
			continue;
		if (r->nbuffered >= r->capacity) {
			pass[i] = false;
			all = false;
			continue;
		}
		r->buffered[c] = 1;
		r->nbuffered++;
	}
	return all;
}

/* Apply @data (or zeros) to @model for the chunks that passed. */
static void model_apply(struct run *r, uint8_t *model, uint64_t off, uint64_t len,
			const uint8_t *data, const bool *pass)
{
	unsigned int c, i = 0;
	uint64_t s, e;

	for (c = first_chunk(r, off); c <= last_chunk(r, off, len); c++, i++) {
		if (pass && !pass[i])
			continue;
		s = (uint64_t)c * r->chunk;
		e = s + r->chunk;
		if (s < off)
			s = off;
		if (e > off + len)
			e = off + len;
		if (data)
			memcpy(model + s, data + (s - off), e - s);
		else
			memset(model + s, 0, e - s);
	}
}

/*
 * After a discard the device may return the old bytes or zeros for each
 * sector (brd on 6.1 cannot discard; on 6.12 only whole pages). Read the
 * range back, accept either per sector, and adopt what is there.
 */
static bool adopt_discarded(struct run *r, const char *what, int fd,
			    uint8_t *model, uint64_t off, uint64_t len,
			    uint8_t *also)
{
	static const uint8_t zeros[SECTOR];
	uint64_t s;
	int ret;

	ret = dev_read(fd, r->io2, off, len);
	if (ret) {
		fail(r, "%s: read back at %" PRIu64 ": %s", what, off, strerror(-ret));
		return false;
	}
	for (s = 0; s < len; s += SECTOR) {
		if (!memcmp(r->io2 + s, model + off + s, SECTOR))
			continue;
		if (memcmp(r->io2 + s, zeros, SECTOR)) {
			fail(r, "%s: discarded sector %" PRIu64
			     " holds neither its old bytes nor zeros", what, (off + s) / SECTOR);
			return false;
		}
		memset(model + off + s, 0, SECTOR);
		if (also)
			memset(also + off + s, 0, SECTOR);
	}
	return true;
}

/* ---- operations */

/* A random extent: sizes from one sector to three chunks, often inside a
 * chunk, sometimes whole aligned chunks. */
static void pick_extent(struct run *r, uint64_t *off, uint64_t *len)
{
	uint64_t sectors = r->size / SECTOR, cs = r->chunk / SECTOR, s, n;
	unsigned int k = below(r, 10);

	if (k < 4) {			/* inside one chunk */
		s = below(r, r->nchunks) * cs;
		n = 1 + below(r, cs);
		s += below(r, cs - n + 1);
	} else if (k < 6) {		/* whole chunks */
		n = cs * (1 + below(r, 2));
		s = below(r, r->nchunks) * cs;
	} else {			/* anywhere, up to three chunks */
		n = 1 + below(r, 3 * cs);
		s = below(r, sectors);
	}
	if (s >= sectors)
		s = sectors - 1;
	if (s + n > sectors)
		n = sectors - s;
	*off = s * SECTOR;
	*len = n * SECTOR;
}

static const char *errname(int ret)
{
	return ret ? strerror(-ret) : "ok";
}

/* expect: the device's answer matches the model's */
static void expect(struct run *r, const char *op, int ret, bool ok)
{
	if (ok && ret)
		fail(r, "%s failed (%s); the model expects success", op, errname(ret));
	else if (!ok && !ret)
		fail(r, "%s succeeded; the model expects an error", op);
}

static bool secondary_active(struct run *r)
{
	return r->state == ST_RUNNING || r->state == ST_BROKEN;
}

static void op_ingress_data(struct run *r, enum op_kind kind)
{
	uint64_t off, len;
	bool pass[8], ok;
	int ret;

	pick_extent(r, &off, &len);
	note_op(r, "%s %" PRIu64 "+%" PRIu64 " (%s)", op_names[kind], off, len,
		state_names[r->state]);
	if (r->state >= ST_MERGING) {	/* fenced: refused */
		ret = data_op(r, r->fd_in, kind == OP_IN_WRITE, kind == OP_IN_ZERO, off, len);
		if (kind != OP_IN_WRITE && ret == -EOPNOTSUPP)
			return;
		expect(r, op_names[kind], ret, false);
		return;
	}
	ret = data_op(r, r->fd_in, kind == OP_IN_WRITE, kind == OP_IN_ZERO, off, len);
	/* The disk cannot discard: refused before the target sees it. */
	if (kind == OP_IN_DISCARD && ret == -EOPNOTSUPP)
		return;
	ok = model_ingress_chunks(r, off, len, pass);
	expect(r, op_names[kind], ret, ok);
	if (kind == OP_IN_DISCARD) {
		/* Which sectors changed is the disk's business: adopt them. */
		adopt_discarded(r, "disk after ingress discard", r->fd_disk, r->disk,
				off, len, r->state == ST_IDLE ? r->view : NULL);
		return;
	}
	model_apply(r, r->disk, off, len, kind == OP_IN_WRITE ? r->io : NULL, pass);
	if (r->state == ST_IDLE)	/* no buffer: the view is the disk */
		model_apply(r, r->view, off, len, kind == OP_IN_WRITE ? r->io : NULL, pass);
}

static void op_secondary_data(struct run *r, enum op_kind kind)
{
	uint64_t off, len;
	bool pass[8], ok = true;
	int ret;

	pick_extent(r, &off, &len);
	note_op(r, "%s %" PRIu64 "+%" PRIu64 " (%s)", op_names[kind], off, len,
		state_names[r->state]);
	ret = data_op(r, r->fd_sec, kind == OP_SEC_WRITE, kind == OP_SEC_ZERO, off, len);
	if (kind == OP_SEC_DISCARD) {
		/* idle: refused; running, broken, merging: a no-op (the disk must
		 * not see it); standalone: the disk's discard. */
		if (r->state == ST_IDLE) {
			expect(r, "secondary discard", ret, false);
		} else if (ret && ret != -EOPNOTSUPP) {
			fail(r, "secondary discard failed: %s", errname(ret));
		} else if (!ret && r->state >= ST_MERGING) {
			/* merging may have become standalone meanwhile */
			adopt_discarded(r, "view after secondary discard", r->fd_sec,
					r->view, off, len, NULL);
		} else if (!ret) {
			ret = dev_read(r->fd_sec, r->io2, off, len);
			if (ret)
				fail(r, "secondary read after discard: %s", errname(ret));
			else
				check_bytes(r, "secondary view after a discard (must be a no-op)",
					    r->io2, r->view + off, off, len);
		}
		return;
	}
	if (r->state == ST_IDLE) {
		expect(r, op_names[kind], ret, false);
		return;
	}
	if (secondary_active(r))
		ok = model_secondary_chunks(r, off, len, pass);
	expect(r, op_names[kind], ret, ok);
	model_apply(r, r->view, off, len, kind == OP_SEC_WRITE ? r->io : NULL,
		    secondary_active(r) ? pass : NULL);
}

static void op_read(struct run *r, enum op_kind kind)
{
	bool ingress = kind == OP_IN_READ, primary = kind == OP_PRI_READ;
	int fd = ingress ? r->fd_in : primary ? r->fd_pri : r->fd_sec;
	const uint8_t *model = ingress ? r->disk : primary ? r->local : r->view;
	uint64_t off, len;
	int ret;

	pick_extent(r, &off, &len);
	note_op(r, "%s %" PRIu64 "+%" PRIu64 " (%s)", op_names[kind], off, len,
		state_names[r->state]);
	ret = dev_read(fd, r->io, off, len);
	if (ingress && r->state >= ST_MERGING) {
		expect(r, "ingress read after failover", ret, false);
		return;
	}
	if (ret) {
		fail(r, "%s: %s", op_names[kind], errname(ret));
		return;
	}
	check_bytes(r, op_names[kind], r->io, model + off, off, len);
}

static void op_flush(struct run *r, enum op_kind kind)
{
	int fd = kind == OP_IN_FLUSH ? r->fd_in : kind == OP_PRI_FLUSH ? r->fd_pri : r->fd_sec;
	int ret;

	note_op(r, "%s (%s)", op_names[kind], state_names[r->state]);
	ret = dev_flush(fd);
	/*
	 * A fenced ingress fails a flush, but the block layer completes an
	 * empty flush itself when no device below has a write cache (brd).
	 */
	if (kind == OP_IN_FLUSH && r->state >= ST_MERGING)
		return;
	expect(r, op_names[kind], ret, true);
}

/* The race: a primary write and a secondary write to the same chunk at
 * once. The outcome does not depend on their order: the disk gets the
 * primary's bytes, the view the secondary's. */
struct racer {
	int fd, ret;
	const uint8_t *p;
	uint64_t off, len;
	pthread_barrier_t *go;
};

static void *race_write(void *arg)
{
	struct racer *w = arg;

	pthread_barrier_wait(w->go);
	w->ret = dev_write(w->fd, w->p, w->off, w->len);
	return NULL;
}

static void op_pair_race(struct run *r)
{
	uint64_t cs = r->chunk / SECTOR, c = below(r, r->nchunks);
	uint64_t base = c * r->chunk, limit = r->size - base;
	struct racer in = { .fd = r->fd_in }, sec = { .fd = r->fd_sec };
	pthread_barrier_t go;
	pthread_t t;
	bool pass[8];

	in.off = base + below(r, cs) * SECTOR;
	sec.off = base + below(r, cs) * SECTOR;
	if (in.off >= base + limit)
		in.off = base;
	if (sec.off >= base + limit)
		sec.off = base;
	in.len = (1 + below(r, cs)) * SECTOR;
	sec.len = (1 + below(r, cs)) * SECTOR;
	if (in.off + in.len > base + (limit < r->chunk ? limit : r->chunk))
		in.len = base + (limit < r->chunk ? limit : r->chunk) - in.off;
	if (sec.off + sec.len > base + (limit < r->chunk ? limit : r->chunk))
		sec.len = base + (limit < r->chunk ? limit : r->chunk) - sec.off;
	note_op(r, "pair-race chunk %" PRIu64 ": ingress %" PRIu64 "+%" PRIu64
		", secondary %" PRIu64 "+%" PRIu64, c, in.off, in.len, sec.off, sec.len);
	fill_random(r, r->io, in.len);
	fill_random(r, r->io2, sec.len);
	in.p = r->io;
	sec.p = r->io2;
	pthread_barrier_init(&go, NULL, 2);
	in.go = sec.go = &go;
	if (pthread_create(&t, NULL, race_write, &in)) {
		fail(r, "pthread_create failed");
		return;
	}
	race_write(&sec);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&go);
	/* Only chosen when a slot is free or the chunk is buffered. */
	model_ingress_chunks(r, in.off, in.len, pass);
	model_apply(r, r->disk, in.off, in.len, r->io, NULL);
	model_secondary_chunks(r, sec.off, sec.len, pass);
	model_apply(r, r->view, sec.off, sec.len, r->io2, NULL);
	expect(r, "pair-race ingress write", in.ret, true);
	expect(r, "pair-race secondary write", sec.ret, true);
}

/* After the epoch ends the secondary sees the disk; the buffer is empty. */
static void model_new_epoch(struct run *r)
{
	memcpy(r->view, r->disk, r->size);
	memset(r->buffered, 0, r->nchunks);
	r->nbuffered = 0;
}

static void op_message(struct run *r, enum op_kind kind)
{
	static const char *const bad[] = {
		"checkpoint now", "failover 1", "CHECKPOINT extra", "merge",
		"start start", "", "stop 0",
	};
	const char *msg;
	bool ok = false, ret;

	switch (kind) {
	case OP_CHECKPOINT:
		msg = "checkpoint";
		ok = r->state == ST_RUNNING;
		break;
	case OP_STOP:
		msg = "stop";
		ok = r->state == ST_RUNNING;
		break;
	case OP_START:
		msg = "start";
		ok = r->state == ST_IDLE;
		break;
	case OP_FAILOVER:
		msg = "failover";
		ok = secondary_active(r);
		break;
	default:
		msg = bad[below(r, sizeof(bad) / sizeof(bad[0]))];
		break;
	}
	note_op(r, "message '%s' (%s)", msg, state_names[r->state]);
	ret = *msg ? test_dm_message(r->sec_name, msg) : false;
	if (ret != ok) {
		fail(r, "message '%s' in state %s %s", msg, state_names[r->state],
		     ret ? "was accepted" : "was refused");
		return;
	}
	if (!ok)
		return;
	switch (kind) {
	case OP_CHECKPOINT:
		model_new_epoch(r);
		break;
	case OP_STOP:
		model_new_epoch(r);
		r->state = ST_IDLE;
		break;
	case OP_START:
		r->state = ST_RUNNING;
		memset(r->buffered, 0, r->nchunks);
		r->nbuffered = 0;
		break;
	case OP_FAILOVER:
		r->to_merge = r->nbuffered;
		r->to_merge_known = r->buffered_known;
		r->state = ST_MERGING;
		r->pri_dead = true;
		break;
	default:
		break;
	}
}

/* ---- pair mode: the primary side */

/*
 * A discard through colo-primary goes to the local disk and, when the
 * remote takes discards, is forwarded as a discard (dm-colo.rst,
 * colo-primary Design): what a discarded range reads afterwards is up to
 * each device, so the two disks may differ there. The model's rule, per
 * 512-byte sector of the range: the local disk holds its old bytes or
 * zeros (read back and adopted at once, as adopt_discarded does for the
 * ingress), and so does the secondary disk, independently of the local
 * one; the secondary's is checked and adopted at the next barrier
 * (primary_barrier), when the forwarded discard is known to have reached
 * it. The chunks it touches are saved in the secondary's buffer like a
 * write's, and the secondary view does not change. A remote that takes no
 * discards (the test bed's export: tests/lib/nbd.sh) sees nothing: the
 * secondary disk keeps exactly its old bytes, and no chunk is saved. A
 * later primary write to a sector ends its pending state.
 */
enum { DISCARD_PENDING = 1, DISCARD_DIVERGED = 2 };

static void clear_discarded(struct run *r, uint64_t off, uint64_t len)
{
	memset(r->discarded + off / SECTOR, 0, len / SECTOR);
}

static void op_primary_data(struct run *r, enum op_kind kind)
{
	uint64_t off, len, s;
	int ret;

	pick_extent(r, &off, &len);
	note_op(r, "%s %" PRIu64 "+%" PRIu64, op_names[kind], off, len);
	ret = data_op(r, r->fd_pri, kind == OP_PRI_WRITE, kind == OP_PRI_ZERO, off, len);
	/* The local disk cannot discard: refused before the target. */
	if (kind == OP_PRI_DISCARD && ret == -EOPNOTSUPP)
		return;
	expect(r, op_names[kind], ret, true);
	if (kind == OP_PRI_DISCARD) {
		for (s = off / SECTOR; s < (off + len) / SECTOR; s++) {
			if (r->discarded[s] == DISCARD_PENDING)
				continue;	/* still old-or-zeros: keep the old */
			/* what the remote holds once earlier forwards landed */
			memcpy(r->alt + s * SECTOR, (r->discarded[s] == DISCARD_DIVERGED ?
						     r->disk : r->local) + s * SECTOR, SECTOR);
			r->discarded[s] = DISCARD_PENDING;
		}
		adopt_discarded(r, "primary disk after a primary discard", r->fd_local,
				r->local, off, len, NULL);
	} else {
		model_apply(r, r->local, off, len, kind == OP_PRI_WRITE ? r->io : NULL, NULL);
		clear_discarded(r, off, len);
	}
	/* It reaches the secondary's disk before the next barrier: the chunks
	 * it touches are saved in the buffer (never full in pair mode). */
	if (kind != OP_PRI_DISCARD || r->remote_discards)
		model_ingress_chunks(r, off, len, (bool[8]){ 0 });
	r->buffered_known = false;
}

/*
 * After a barrier: the secondary disk holds the local disk's bytes, except
 * in sectors a discard left pending, which hold their old bytes or zeros
 * (read them, check, adopt: from now on they may differ from the local
 * disk's), and in sectors an earlier barrier adopted so, which keep what
 * they held.
 */
static bool adopt_remote_discards(struct run *r)
{
	static const uint8_t zeros[SECTOR];
	uint64_t s, n = r->size / SECTOR;
	bool pending = false;
	const uint8_t *got;
	int ret;

	for (s = 0; s < n; s++) {
		if (!r->discarded[s])
			memcpy(r->disk + s * SECTOR, r->local + s * SECTOR, SECTOR);
		pending |= r->discarded[s] == DISCARD_PENDING;
	}
	if (!pending)
		return true;
	ret = dev_read(r->fd_disk, r->io2, 0, r->size);
	if (ret) {
		fail(r, "secondary disk: read after a barrier: %s", strerror(-ret));
		return false;
	}
	for (s = 0; s < n; s++) {
		if (r->discarded[s] != DISCARD_PENDING)
			continue;
		got = r->io2 + s * SECTOR;
		if (memcmp(got, r->alt + s * SECTOR, SECTOR) &&
		    (!r->remote_discards || memcmp(got, zeros, SECTOR))) {
			fail(r, "secondary disk: sector %" PRIu64 " after a primary discard holds "
			     "%s", s, r->remote_discards ? "neither its old bytes nor zeros" :
			     "other than its old bytes (the remote takes no discards)");
			return false;
		}
		memcpy(r->disk + s * SECTOR, got, SECTOR);
		r->discarded[s] = DISCARD_DIVERGED;
		if (memcmp(got, r->alt + s * SECTOR, SECTOR))
			remote_discard_zeroed++;
		else
			remote_discard_kept++;
	}
	return true;
}

/* The primary's checkpoint: afterwards the disk holds every write. */
static bool primary_barrier(struct run *r)
{
	if (!test_dm_message(r->pri_name, "checkpoint")) {
		char st[256] = "?";

		test_dm_params(DM_DEVICE_STATUS, r->pri_name, st, sizeof(st));
		fail(r, "primary checkpoint refused (status %s)", st);
		return false;
	}
	r->buffered_known = true;
	return adopt_remote_discards(r);
}

static void op_barrier(struct run *r)
{
	note_op(r, "primary-barrier");
	if (primary_barrier(r))
		check_device(r, "secondary disk after a primary barrier", r->fd_disk,
			     r->disk, r->size);
}

static void op_two_node_checkpoint(struct run *r)
{
	note_op(r, "two-node checkpoint");
	if (!primary_barrier(r))
		return;
	if (!test_dm_message(r->sec_name, "checkpoint")) {
		fail(r, "secondary checkpoint refused");
		return;
	}
	model_new_epoch(r);
	check_device(r, "secondary view after a checkpoint", r->fd_sec, r->view, r->size);
}

/* ---- status against the model */

static void check_status(struct run *r)
{
	struct sec_status st;

	if (r->failed)
		return;
	if (!sec_status(r, &st)) {
		fail(r, "cannot read the status of %s", r->sec_name);
		return;
	}
	if (r->state == ST_MERGING) {
		if (st.state != ST_MERGING && st.state != ST_STANDALONE)
			fail(r, "status says %s, the model merging", state_names[st.state]);
		else if (r->to_merge_known && st.to_merge != r->to_merge)
			fail(r, "failover: %lu chunks to merge, the model has %u buffered",
			     st.to_merge, r->to_merge);
		else if (st.state == ST_STANDALONE)
			r->state = ST_STANDALONE;
		return;
	}
	if (st.state != r->state) {
		fail(r, "status says %s (error %s), the model %s", state_names[st.state],
		     st.error, state_names[r->state]);
		return;
	}
	if (r->state != ST_STANDALONE && r->buffered_known && st.buffered != r->nbuffered)
		fail(r, "status says %lu chunks buffered, the model %u", st.buffered,
		     r->nbuffered);
}

static void wait_standalone(struct run *r)
{
	struct sec_status st;
	int i;

	for (i = 0; i < 3000 && r->state == ST_MERGING && !r->failed; i++) {
		check_status(r);
		if (r->state == ST_MERGING)
			usleep(10000);
	}
	if (r->state == ST_MERGING && !r->failed) {
		sec_status(r, &st);
		fail(r, "the merge did not finish in 30 s (%lu/%lu merged, error %s)",
		     st.merged, st.to_merge, st.error);
	}
}

/* ---- one seed */

static enum op_kind pick_op(struct run *r)
{
	/* weights per kind; the mode and the state decide which apply */
	static const unsigned char w_sec[OP_KINDS] = {
		[OP_IN_WRITE] = 22, [OP_IN_ZERO] = 3, [OP_IN_DISCARD] = 2,
		[OP_IN_READ] = 5, [OP_IN_FLUSH] = 2, [OP_SEC_WRITE] = 20,
		[OP_SEC_ZERO] = 3, [OP_SEC_DISCARD] = 2, [OP_SEC_READ] = 15,
		[OP_SEC_FLUSH] = 2, [OP_PAIR] = 5, [OP_CHECKPOINT] = 5,
		[OP_STOP] = 1, [OP_START] = 1, [OP_BAD_MESSAGE] = 1,
	};
	static const unsigned char w_pair[OP_KINDS] = {
		[OP_PRI_WRITE] = 30, [OP_PRI_ZERO] = 3, [OP_PRI_READ] = 8,
		[OP_PRI_FLUSH] = 2, [OP_BARRIER] = 3, [OP_PRI_DISCARD] = 3, [OP_SEC_WRITE] = 20,
		[OP_SEC_ZERO] = 3, [OP_SEC_DISCARD] = 2, [OP_SEC_READ] = 15,
		[OP_SEC_FLUSH] = 2, [OP_CHECKPOINT] = 5,
	};
	const unsigned char *w = r->opt->mode == MODE_PAIR ? w_pair : w_sec;
	unsigned int total = 0, k, x;
	bool allowed[OP_KINDS];

	for (k = 0; k < OP_KINDS; k++) {
		allowed[k] = w[k] > 0;
		if (r->opt->mode == MODE_PAIR && r->pri_dead &&
		    (k >= OP_PRI_WRITE || k == OP_CHECKPOINT))
			allowed[k] = false;
		/* the race needs a certain outcome: a free slot, running */
		if (k == OP_PAIR && (r->state != ST_RUNNING ||
				     r->nbuffered + 1 >= r->capacity))
			allowed[k] = false;
		if (allowed[k])
			total += w[k];
	}
	/* idle does not last: start again soon; broken waits for a failover */
	if (r->state == ST_IDLE && below(r, 3) == 0)
		return OP_START;
	if (r->state == ST_BROKEN && !r->opt->no_failover && below(r, 8) == 0)
		return OP_FAILOVER;
	x = below(r, total);
	for (k = 0; k < OP_KINDS; k++) {
		if (!allowed[k])
			continue;
		if (x < w[k])
			return k;
		x -= w[k];
	}
	return OP_SEC_READ;
}

static void do_op(struct run *r, enum op_kind kind)
{
	switch (kind) {
	case OP_IN_WRITE:
	case OP_IN_ZERO:
	case OP_IN_DISCARD:
		op_ingress_data(r, kind);
		break;
	case OP_SEC_WRITE:
	case OP_SEC_ZERO:
	case OP_SEC_DISCARD:
		op_secondary_data(r, kind);
		break;
	case OP_IN_READ:
	case OP_SEC_READ:
	case OP_PRI_READ:
		op_read(r, kind);
		break;
	case OP_IN_FLUSH:
	case OP_SEC_FLUSH:
	case OP_PRI_FLUSH:
		op_flush(r, kind);
		break;
	case OP_PAIR:
		op_pair_race(r);
		break;
	case OP_CHECKPOINT:
		if (r->opt->mode == MODE_PAIR)
			op_two_node_checkpoint(r);
		else
			op_message(r, kind);
		break;
	case OP_STOP:
	case OP_START:
	case OP_FAILOVER:
	case OP_BAD_MESSAGE:
		op_message(r, kind);
		break;
	case OP_PRI_WRITE:
	case OP_PRI_ZERO:
	case OP_PRI_DISCARD:
		op_primary_data(r, kind);
		break;
	case OP_BARRIER:
		op_barrier(r);
		break;
	default:
		break;
	}
}

static void close_fds(struct run *r)
{
	int *fds[] = { &r->fd_sec, &r->fd_in, &r->fd_disk, &r->fd_pri, &r->fd_local };
	unsigned int i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static void teardown_secondary_mode(struct run *r)
{
	close_fds(r);
	if (test_dm_exists(r->in_name))
		test_dm_simple(DM_DEVICE_REMOVE, r->in_name);
	if (test_dm_exists(r->sec_name))
		test_dm_simple(DM_DEVICE_REMOVE, r->sec_name);
	if (test_dm_exists(r->buf_name))
		test_dm_simple(DM_DEVICE_REMOVE, r->buf_name);
}

/* Zeroed and aligned for O_DIRECT: the models are written out whole. */
static uint8_t *alloc_aligned(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len ? len : 1))
		return NULL;
	memset(p, 0, len);
	return p;
}

static bool alloc_model(struct run *r)
{
	r->disk = alloc_aligned(r->size);
	r->view = alloc_aligned(r->size);
	r->local = alloc_aligned(r->size);
	r->buffered = calloc(1, r->nchunks);
	r->alt = alloc_aligned(r->size);
	r->discarded = calloc(1, r->size / SECTOR);
	return r->disk && r->view && r->local && r->buffered && r->alt && r->discarded;
}

/* Secondary mode: fresh devices with seeded geometry and contents. */
static bool setup_secondary_mode(struct run *r)
{
	static const unsigned int chunks_kib[] = { 4, 8, 16, 32, 64 };
	char disk_devt[32], buf_devt[32], params[160];
	uint64_t disk_bytes, buf_bytes;
	int fd;

	snprintf(r->sec_name, sizeof(r->sec_name), "colo-model");
	snprintf(r->in_name, sizeof(r->in_name), "colo-model-in");
	snprintf(r->buf_name, sizeof(r->buf_name), "colo-model-buf");
	teardown_secondary_mode(r);

	fd = open(r->opt->disk, O_RDWR | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &disk_bytes)) {
		fprintf(stderr, "colo-model: %s: %s\n", r->opt->disk, strerror(errno));
		return false;
	}
	r->fd_disk = fd;
	fd = open(r->opt->buffer, O_RDONLY);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &buf_bytes)) {
		fprintf(stderr, "colo-model: %s: %s\n", r->opt->buffer, strerror(errno));
		return false;
	}
	close(fd);

	r->chunk = chunks_kib[below(r, 5)] * 1024;
	r->nchunks = 16 + below(r, 49);
	r->size = (uint64_t)r->nchunks * r->chunk;
	if (below(r, 4) == 0)		/* a partial last chunk */
		r->size -= (1 + below(r, r->chunk / SECTOR - 1)) * SECTOR;
	if (r->size > disk_bytes || (uint64_t)r->nchunks * r->chunk > buf_bytes) {
		fprintf(stderr, "colo-model: %s or %s too small for %" PRIu64 " bytes\n",
			r->opt->disk, r->opt->buffer, r->size);
		return false;
	}
	/* Mostly room for every chunk; a third of the seeds can fill up. */
	r->capacity = below(r, 3) ? r->nchunks : 2 + below(r, r->nchunks / 2);
	if (!alloc_model(r))
		return false;
	fill_random(r, r->disk, r->size);
	memcpy(r->view, r->disk, r->size);
	if (dev_write(r->fd_disk, r->disk, 0, r->size)) {
		fprintf(stderr, "colo-model: writing the initial image: %s\n", strerror(errno));
		return false;
	}

	if (!devt_of(r->opt->disk, disk_devt, sizeof(disk_devt)) ||
	    !devt_of(r->opt->buffer, buf_devt, sizeof(buf_devt)))
		return false;
	snprintf(params, sizeof(params), "%s 0", buf_devt);
	if (!test_dm_load(DM_DEVICE_CREATE, r->buf_name, (uint64_t)r->capacity * r->chunk / SECTOR,
			  "linear", params, buf_devt, sizeof(buf_devt)))
		goto dm_failed;
	snprintf(params, sizeof(params), "%s %s %u", disk_devt, buf_devt, r->chunk / SECTOR);
	if (!test_dm_load(DM_DEVICE_CREATE, r->sec_name, r->size / SECTOR, "colo-secondary",
			  params, NULL, 0) ||
	    !test_dm_load(DM_DEVICE_CREATE, r->in_name, r->size / SECTOR, "colo-ingress",
			  disk_devt, NULL, 0))
		goto dm_failed;
	r->fd_sec = dm_open(r->sec_name);
	r->fd_in = dm_open(r->in_name);
	if (r->fd_sec < 0 || r->fd_in < 0) {
		fprintf(stderr, "colo-model: cannot open the devices: %s\n", strerror(errno));
		return false;
	}
	r->state = ST_IDLE;
	if (below(r, 8)) {	/* mostly start at once; else begin idle */
		if (!test_dm_message(r->sec_name, "start"))
			goto dm_failed;
		r->state = ST_RUNNING;
	}
	return true;
dm_failed:
	fprintf(stderr, "colo-model: device-mapper setup failed (chunk %u, size %" PRIu64
		", capacity %u): see the kernel log\n", r->chunk, r->size, r->capacity);
	return false;
}

static int run_shell(const char *cmd)
{
	int rc = system(cmd);

	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Pair mode: the bed must be replicating and started; a seeded image is
 * written through the primary and made the checkpoint. */
static bool setup_pair_mode(struct run *r)
{
	char st[256], word[32];
	struct sec_status ss;
	uint64_t bytes;

	snprintf(r->pri_name, sizeof(r->pri_name), "%s", r->opt->primary);
	snprintf(r->sec_name, sizeof(r->sec_name), "%s", r->opt->secondary);
	close_fds(r);
	if (!test_dm_params(DM_DEVICE_STATUS, r->pri_name, st, sizeof(st)) ||
	    sscanf(st, "%31s", word) != 1 || strcmp(word, "replicating") ||
	    !sec_status(r, &ss) || ss.state != ST_RUNNING) {
		if (!r->opt->reset) {
			fprintf(stderr, "colo-model: the pair is not replicating and running, "
				"and there is no --reset\n");
			return false;
		}
		if (run_shell(r->opt->reset)) {
			fprintf(stderr, "colo-model: --reset '%s' failed\n", r->opt->reset);
			return false;
		}
	}
	r->fd_pri = dm_open(r->pri_name);
	r->fd_sec = dm_open(r->sec_name);
	r->fd_local = open(r->opt->local, O_RDONLY | O_DIRECT);
	r->fd_disk = open(r->opt->disk, O_RDONLY | O_DIRECT);
	if (r->fd_pri < 0 || r->fd_sec < 0 || r->fd_local < 0 || r->fd_disk < 0 ||
	    ioctl(r->fd_pri, BLKGETSIZE64, &bytes)) {
		fprintf(stderr, "colo-model: cannot open the pair's devices: %s\n",
			strerror(errno));
		return false;
	}
	r->chunk = 64 * 1024;	/* pair_secondary's */
	r->remote_discards = remote_takes_discards(r->pri_name);
	if (!sec_status(r, &ss))
		return false;
	r->size = bytes;
	r->nchunks = (bytes + r->chunk - 1) / r->chunk;
	r->capacity = ss.capacity;
	if (r->capacity < r->nchunks) {
		fprintf(stderr, "colo-model: pair mode needs a buffer for every chunk\n");
		return false;
	}
	if (!alloc_model(r))
		return false;
	fill_random(r, r->local, r->size);
	if (dev_write(r->fd_pri, r->local, 0, r->size)) {
		fprintf(stderr, "colo-model: writing the initial image: %s\n", strerror(errno));
		return false;
	}
	r->state = ST_RUNNING;
	note_op(r, "initial image and two-node checkpoint");
	op_two_node_checkpoint(r);
	if (!r->failed)
		check_device(r, "secondary disk at the start", r->fd_disk, r->disk, r->size);
	return !r->failed;
}

static void free_run(struct run *r)
{
	close_fds(r);
	free(r->disk);
	free(r->view);
	free(r->local);
	free(r->buffered);
	free(r->alt);
	free(r->discarded);
	r->disk = r->view = r->local = r->buffered = r->alt = r->discarded = NULL;
}

/* The end of a seed: every byte of every device. */
static void final_checks(struct run *r)
{
	note_op(r, "final checks (%s)", state_names[r->state]);
	if (r->state == ST_MERGING)
		wait_standalone(r);
	if (r->failed)
		return;
	check_device(r, "secondary view (final)", r->fd_sec, r->view, r->size);
	if (r->failed)
		return;
	if (r->state == ST_STANDALONE) {
		check_device(r, "disk after the merge (final)", r->fd_disk, r->view, r->size);
		return;
	}
	if (r->opt->mode == MODE_PAIR) {
		check_device(r, "primary disk (final)", r->fd_local, r->local, r->size);
		if (!r->failed)
			op_two_node_checkpoint(r);
		if (!r->failed)
			check_device(r, "secondary disk (final)", r->fd_disk, r->disk, r->size);
		return;
	}
	check_device(r, "disk (final)", r->fd_disk, r->disk, r->size);
	if (!r->failed)
		check_device(r, "ingress (final)", r->fd_in, r->disk, r->size);
	if (!r->failed && r->state == ST_RUNNING) {
		if (!test_dm_message(r->sec_name, "checkpoint"))
			fail(r, "final checkpoint refused");
		else
			check_device(r, "view after the final checkpoint", r->fd_sec, r->disk,
				     r->size);
	}
}

/*
 * Run one seed for at most @limit operations. Returns 1 on a mismatch
 * (r->why, r->done), 0 when it passed, -1 when the setup failed.
 */
static int run_seed(const struct options *opt, uint64_t seed, unsigned int limit,
		    struct run *r)
{
	unsigned int failover_at;
	enum op_kind k;
	bool ok;

	memset(r, 0, sizeof(*r));
	r->opt = opt;
	r->seed = seed;
	r->rng = seed * 0x2545f4914f6cdd1dULL + 1;
	r->limit = limit;
	r->fd_sec = r->fd_in = r->fd_disk = r->fd_pri = r->fd_local = -1;
	r->buffered_known = true;
	if (posix_memalign((void **)&r->io, 4096, 4 << 20) ||
	    posix_memalign((void **)&r->io2, 4096, 4 << 20))
		return -1;
	ok = opt->mode == MODE_PAIR ? setup_pair_mode(r) : setup_secondary_mode(r);
	if (!ok) {
		if (opt->mode == MODE_SECONDARY)
			teardown_secondary_mode(r);
		free_run(r);
		free(r->io);
		free(r->io2);
		return r->failed ? 1 : -1;
	}
	/* a failover at a random point in most seeds */
	failover_at = opt->no_failover || below(r, 10) < 3 ? ~0u : below(r, opt->ops);
	for (r->done = 0; r->done < limit; r->done++) {
		if (r->done == failover_at && secondary_active(r))
			k = OP_FAILOVER;
		else
			k = pick_op(r);
		do_op(r, k);
		check_status(r);
		if (r->failed)
			break;	/* r->done is the failing operation's index */
		stats[k]++;
	}
	if (!r->failed)
		final_checks(r);
	if (r->saw_broken && limit == opt->ops)
		broken_seeds++;
	if (opt->mode == MODE_SECONDARY)
		teardown_secondary_mode(r);
	free_run(r);
	free(r->io);
	free(r->io2);
	return r->failed ? 1 : 0;
}

static void print_ops(const struct run *r)
{
	unsigned int n = r->done + 1, i;

	for (i = n > OPS_SHOWN ? n - OPS_SHOWN : 0; i < n; i++)
		printf("#   op %u: %s\n", i + 1, r->log[i % OPS_SHOWN]);
}

/* Find the shortest prefix of @seed that still fails (binary search over
 * fresh runs: a mismatch found by a prefix is a mismatch all the same). */
static void shrink(const struct options *opt, uint64_t seed, unsigned int failed_at)
{
	unsigned int lo = 1, hi = failed_at, mid;
	struct run r;

	if (opt->mode == MODE_PAIR && !opt->reset) {
		printf("# (no --reset: not looking for a shorter prefix)\n");
		return;
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (run_seed(opt, seed, mid, &r) == 1)
			hi = r.done < mid ? r.done + 1 : mid;
		else
			lo = mid + 1;
		if (opt->mode == MODE_PAIR && run_shell(opt->reset))
			break;
	}
	if (run_seed(opt, seed, hi, &r) == 1) {
		printf("# shortest failing prefix: seed %" PRIu64 ", %u operations: %s\n",
		       seed, hi, r.why);
		print_ops(&r);
		if (opt->mode == MODE_PAIR)
			printf("# replay: colo-model pair --primary %s --secondary %s --local %s "
			       "--disk %s --reset '%s' --seed %" PRIu64 " --seeds 1 --ops %u\n",
			       opt->primary, opt->secondary, opt->local, opt->disk, opt->reset,
			       seed, hi);
		else
			printf("# replay: colo-model secondary --disk %s --buffer %s --seed %"
			       PRIu64 " --seeds 1 --ops %u\n", opt->disk, opt->buffer, seed, hi);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: colo-model secondary --disk DEV --buffer DEV [options]\n"
		"       colo-model pair --primary NAME --secondary NAME --local DEV --disk DEV\n"
		"                       [--reset CMD] [options]\n"
		"options: --seed N (first seed, default 1)  --seeds N (default 1)\n"
		"         --ops N (per seed, default 200)  --no-failover  --verbose\n"
		"         --first-result N (number the KTAP results from N)\n"
		"Prints one KTAP result per seed and '# figure:' lines; exit 1 on a mismatch.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "primary", required_argument, NULL, 'p' },
		{ "secondary", required_argument, NULL, 's' },
		{ "local", required_argument, NULL, 'l' },
		{ "reset", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "seeds", required_argument, NULL, 'n' },
		{ "ops", required_argument, NULL, 'o' },
		{ "no-failover", no_argument, NULL, 'F' },
		{ "first-result", required_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct options opt = { .seed = 1, .seeds = 1, .ops = 200, .first_result = 1 };
	unsigned long long total_ops = 0;
	unsigned int i, mismatches = 0, setup_errors = 0;
	struct timespec t0, t1;
	struct run r;
	int c, rc;

	if (argc < 2 || (strcmp(argv[1], "secondary") && strcmp(argv[1], "pair"))) {
		usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	opt.mode = strcmp(argv[1], "pair") ? MODE_SECONDARY : MODE_PAIR;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': opt.disk = optarg; break;
		case 'b': opt.buffer = optarg; break;
		case 'p': opt.primary = optarg; break;
		case 's': opt.secondary = optarg; break;
		case 'l': opt.local = optarg; break;
		case 'r': opt.reset = optarg; break;
		case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
		case 'n': opt.seeds = strtoul(optarg, NULL, 0); break;
		case 'o': opt.ops = strtoul(optarg, NULL, 0); break;
		case 'F': opt.no_failover = true; break;
		case 'N': opt.first_result = strtoul(optarg, NULL, 0); break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !opt.ops || !opt.seeds ||
	    (opt.mode == MODE_SECONDARY && (!opt.disk || !opt.buffer)) ||
	    (opt.mode == MODE_PAIR && (!opt.primary || !opt.secondary || !opt.local ||
				       !opt.disk))) {
		usage(stderr);
		return 2;
	}
	test_dm_quiet();
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < opt.seeds; i++) {
		uint64_t seed = opt.seed + i;

		rc = run_seed(&opt, seed, opt.ops, &r);
		if (rc < 0) {
			printf("not ok %u seed %" PRIu64 " # setup failed\n", opt.first_result + i, seed);
			setup_errors++;
			continue;
		}
		total_ops += r.done;
		if (rc == 0) {
			printf("ok %u seed %" PRIu64 " (%u ops, chunk %u KiB, %u chunks, "
			       "buffer %u)\n", opt.first_result + i, seed, r.done, r.chunk / 1024, r.nchunks,
			       r.capacity);
			continue;
		}
		mismatches++;
		printf("not ok %u seed %" PRIu64 " # op %u: %s\n", opt.first_result + i, seed, r.done + 1,
		       r.why);
		print_ops(&r);
		shrink(&opt, seed, r.done + 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# figure: model_%s_seeds=%u\n", argv[1], opt.seeds);
	printf("# figure: model_%s_ops=%llu\n", argv[1], total_ops);
	printf("# figure: model_%s_mismatches=%u\n", argv[1], mismatches);
	printf("# figure: model_%s_failovers=%llu\n", argv[1], stats[OP_FAILOVER]);
	printf("# figure: model_%s_buffer_full_seeds=%u\n", argv[1], broken_seeds);
	if (opt.mode == MODE_PAIR) {
		printf("# figure: model_pair_discard_sectors_zeroed=%llu\n", remote_discard_zeroed);
		printf("# figure: model_pair_discard_sectors_kept=%llu\n", remote_discard_kept);
	}
	printf("# operations by kind:");
	for (i = 0; i < OP_KINDS; i++)
		if (stats[i])
			printf(" %s %llu", op_names[i], stats[i]);
	printf("\n");
	printf("# figure: model_%s_seconds=%.1f\n", argv[1],
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return mismatches || setup_errors ? 1 : 0;
}
