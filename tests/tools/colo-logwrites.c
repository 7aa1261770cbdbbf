// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-logwrites: read a dm-log-writes log (drivers/md/dm-log-writes.c),
 * for the crash-consistency tests. dm-log-writes records a write only once
 * a flush (or its own FUA) made it stable, so the log up to an entry is a
 * state the disk can be found in after a power cut at that point.
 *
 *   colo-logwrites dump LOGDEV
 *       one line per entry: index, flags (FLUSH FUA DISCARD MARK), first
 *       sector, sectors, and a mark's name
 *   colo-logwrites replay LOGDEV DEV --mark NAME | --entry N
 *       apply the entries up to and including the mark NAME (its first
 *       occurrence) or entry N to DEV; a discard is replayed as zeroes
 *       (BLKZEROOUT: the disks the tests log under read discarded blocks
 *       as zeroes, lbprz)
 *   colo-logwrites count LOGDEV FLAGS [--from-mark A] [--to-mark B]
 *       how many entries in (A, B] carry every flag in FLAGS (e.g. FUA,
 *       FLUSH, FUA+DISCARD); without marks, the whole log
 *
 * The log is read with O_DIRECT: dm-log-writes writes it behind the page
 * cache of the log device, so a buffered read could see an old super block.
 * dm-log-writes writes its entries from a thread of its own and the super
 * block (the entry count) after each FUA write and mark: a mark is in the
 * log once dump shows it.
 *
 * Exit status: 0 done, 1 I/O error or a malformed log, 2 usage, 3 the
 * mark or entry is not in the log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "test-io.h"

#define LOG_FLUSH_FLAG		(1 << 0)
#define LOG_FUA_FLAG		(1 << 1)
#define LOG_DISCARD_FLAG	(1 << 2)
#define LOG_MARK_FLAG		(1 << 3)
#define LOG_METADATA_FLAG	(1 << 4)
#define WRITE_LOG_VERSION	1ULL
#define WRITE_LOG_MAGIC		0x6a736677736872ULL

/* On disk, little-endian (x86: host order). */
struct log_write_super {
	uint64_t magic;
	uint64_t version;
	uint64_t nr_entries;
	uint32_t sectorsize;
} __attribute__((packed));

struct log_write_entry {
	uint64_t sector;
	uint64_t nr_sectors;
	uint64_t flags;
	uint64_t data_len;
} __attribute__((packed));

struct log {
	int fd;
	uint64_t nr_entries;
	uint32_t sectorsize;
	uint64_t pos;		/* byte offset of the next entry */
	uint64_t index;		/* its index */
	unsigned char *sector;
};

struct entry {
	struct log_write_entry e;
	char mark[256];
	uint64_t data_pos;	/* byte offset of the data in the log */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: colo-logwrites dump LOGDEV\n"
		"       colo-logwrites replay LOGDEV DEV --mark NAME | --entry N\n"
		"       colo-logwrites count LOGDEV FLAGS [--from-mark A] [--to-mark B]\n");
	exit(2);
}

static void log_open(struct log *log, const char *path)
{
	struct log_write_super super;
	unsigned char *first;

	if (posix_memalign((void **)&first, 4096, 4096)) {
		perror("colo-logwrites: posix_memalign");
		exit(1);
	}
	log->fd = open(path, O_RDONLY | O_DIRECT);
	if (log->fd < 0) {
		fprintf(stderr, "colo-logwrites: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	/* 4 KiB: a whole logical block whatever the log device's (512..4096). */
	if (pread_full(log->fd, first, 4096, 0)) {
		fprintf(stderr, "colo-logwrites: %s: cannot read the super block\n", path);
		exit(1);
	}
	memcpy(&super, first, sizeof(super));
	free(first);
	if (super.magic != WRITE_LOG_MAGIC || super.version != WRITE_LOG_VERSION ||
	    super.sectorsize < 512 || super.sectorsize > 4096 ||
	    (super.sectorsize & (super.sectorsize - 1))) {
		fprintf(stderr, "colo-logwrites: %s: not a dm-log-writes log (magic %#" PRIx64
			", version %" PRIu64 ", sector size %u)\n", path, super.magic,
			super.version, super.sectorsize);
		exit(1);
	}
	log->nr_entries = super.nr_entries;
	log->sectorsize = super.sectorsize;
	log->pos = super.sectorsize;
	log->index = 0;
	if (posix_memalign((void **)&log->sector, 4096, super.sectorsize)) {
		perror("colo-logwrites: posix_memalign");
		exit(1);
	}
}

/* The next entry, or 0 at the end of the log. */
static int log_next(struct log *log, struct entry *out)
{
	uint64_t len;

	if (log->index >= log->nr_entries)
		return 0;
	if (pread_full(log->fd, log->sector, log->sectorsize, log->pos)) {
		fprintf(stderr, "colo-logwrites: entry %" PRIu64 ": read failed at byte %" PRIu64 "\n",
			log->index, log->pos);
		exit(1);
	}
	memcpy(&out->e, log->sector, sizeof(out->e));
	out->mark[0] = 0;
	if (out->e.flags & LOG_MARK_FLAG) {
		len = out->e.data_len;
		if (len > log->sectorsize - sizeof(out->e) || len >= sizeof(out->mark)) {
			fprintf(stderr, "colo-logwrites: entry %" PRIu64 ": mark of %" PRIu64 " bytes\n",
				log->index, len);
			exit(1);
		}
		memcpy(out->mark, log->sector + sizeof(out->e), len);
		out->mark[len] = 0;
	} else if (out->e.data_len) {
		/* Inline data (DAX, metadata) is never logged on our devices. */
		fprintf(stderr, "colo-logwrites: entry %" PRIu64 ": inline data not supported\n",
			log->index);
		exit(1);
	}
	out->data_pos = log->pos + log->sectorsize;
	log->pos = out->data_pos;
	if (!(out->e.flags & LOG_DISCARD_FLAG))
		log->pos += out->e.nr_sectors * log->sectorsize;
	log->index++;
	return 1;
}

static void flag_names(uint64_t flags, char *buf, size_t len)
{
	static const char * const names[] = { "FLUSH", "FUA", "DISCARD", "MARK", "METADATA" };
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & (1ULL << i))
			n += snprintf(buf + n, len - n, "%s%s", n ? "+" : "", names[i]);
	if (!n)
		snprintf(buf, len, "WRITE");
}

static uint64_t parse_flags(const char *s)
{
	static const char * const names[] = { "FLUSH", "FUA", "DISCARD", "MARK", "METADATA" };
	char *copy = strdup(s), *tok, *save = NULL;
	uint64_t flags = 0;
	size_t i;

	for (tok = strtok_r(copy, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			fprintf(stderr, "colo-logwrites: unknown flag '%s'\n", tok);
			exit(2);
		}
		flags |= 1ULL << i;
	}
	free(copy);
	return flags;
}

static int cmd_dump(const char *logdev)
{
	struct log log;
	struct entry en;
	char flags[64];

	log_open(&log, logdev);
	while (log_next(&log, &en)) {
		flag_names(en.e.flags, flags, sizeof(flags));
		printf("%" PRIu64 " %s %" PRIu64 " %" PRIu64 "%s%s\n", log.index - 1, flags,
		       en.e.sector, en.e.nr_sectors, en.mark[0] ? " " : "", en.mark);
	}
	return 0;
}

static int apply(struct log *log, struct entry *en, int dev)
{
	uint64_t off = en->e.sector * log->sectorsize, len = en->e.nr_sectors * log->sectorsize;
	uint64_t range[2] = { off, len };
	static char *buf;
	const uint64_t bufsize = 1 << 20;
	uint64_t done, n;

	if (!len)
		return 0;
	if (en->e.flags & LOG_DISCARD_FLAG) {
		if (ioctl(dev, BLKZEROOUT, range)) {
			fprintf(stderr, "colo-logwrites: BLKZEROOUT %" PRIu64 "+%" PRIu64 ": %s\n",
				off, len, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!buf && posix_memalign((void **)&buf, 4096, bufsize)) {
		perror("colo-logwrites: posix_memalign");
		return -1;
	}
	for (done = 0; done < len; done += n) {
		n = len - done < bufsize ? len - done : bufsize;
		if (pread_full(log->fd, buf, n, en->data_pos + done) ||
		    pwrite_full(dev, buf, n, off + done)) {
			fprintf(stderr, "colo-logwrites: copying entry %" PRIu64 ": %s\n",
				log->index - 1, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int cmd_replay(const char *logdev, const char *devpath, const char *mark,
		      long long last)
{
	struct log log;
	struct entry en;
	int dev, found = 0;

	log_open(&log, logdev);
	dev = open(devpath, O_WRONLY);
	if (dev < 0) {
		fprintf(stderr, "colo-logwrites: %s: %s\n", devpath, strerror(errno));
		return 1;
	}
	while (log_next(&log, &en)) {
		if (apply(&log, &en, dev))
			return 1;
		if ((mark && en.mark[0] && !strcmp(en.mark, mark)) ||
		    (!mark && (long long)(log.index - 1) == last)) {
			found = 1;
			break;
		}
	}
	if (fsync(dev)) {
		fprintf(stderr, "colo-logwrites: fsync %s: %s\n", devpath, strerror(errno));
		return 1;
	}
	close(dev);
	if (!found) {
		if (mark)
			fprintf(stderr, "colo-logwrites: no mark '%s' in the log\n", mark);
		else
			fprintf(stderr, "colo-logwrites: no entry %lld in the log\n", last);
		return 3;
	}
	return 0;
}

static int cmd_count(const char *logdev, uint64_t want, const char *from, const char *to)
{
	struct log log;
	struct entry en;
	int counting = !from, seen_to = 0;
	uint64_t n = 0;

	log_open(&log, logdev);
	while (log_next(&log, &en)) {
		if (en.mark[0] && from && !counting && !strcmp(en.mark, from)) {
			counting = 1;
			continue;
		}
		if (en.mark[0] && to && counting && !strcmp(en.mark, to)) {
			seen_to = 1;
			break;
		}
		if (counting && (en.e.flags & want) == want)
			n++;
	}
	if (!counting || (to && !seen_to)) {
		fprintf(stderr, "colo-logwrites: mark '%s' not in the log\n", !counting ? from : to);
		return 3;
	}
	printf("%" PRIu64 "\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *mark = NULL;
	long long entry = -1;
	int i;

	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "dump") && argc == 3)
		return cmd_dump(argv[2]);
	if (!strcmp(argv[1], "replay") && argc == 6) {
		if (!strcmp(argv[4], "--mark")) {
			mark = argv[5];
		} else if (!strcmp(argv[4], "--entry")) {
			char *end;

			entry = strtoll(argv[5], &end, 10);
			if (*end || entry < 0)
				usage();
		} else {
			usage();
		}
		return cmd_replay(argv[2], argv[3], mark, entry);
	}
	if (!strcmp(argv[1], "count") && argc >= 4) {
		for (i = 4; i < argc; i += 2) {
			if (i + 1 >= argc)
				usage();
			if (!strcmp(argv[i], "--from-mark"))
				from = argv[i + 1];
			else if (!strcmp(argv[i], "--to-mark"))
				to = argv[i + 1];
			else
				usage();
		}
		return cmd_count(argv[2], parse_flags(argv[3]), from, to);
	}
	usage();
	return 2;
}
