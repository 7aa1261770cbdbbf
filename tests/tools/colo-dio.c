// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-dio: O_DIRECT writes and reads of a block device at exact offsets
 * and lengths, for the VM tests' helpers (tests/lib/blk.sh).
 *
 *   colo-dio write DEV OFFSET FILE [--fua] [--fsync] [--max-io BYTES]
 *   colo-dio read  DEV OFFSET BYTES [--max-io BYTES]     (to stdout)
 *   colo-dio cmp   DEV OFFSET FILE [--max-io BYTES]
 *
 * DEV is always opened with O_DIRECT and never created (no O_CREAT): a
 * missing /dev/mapper node is an error, not a new regular file. OFFSET and
 * the length (FILE's size, BYTES) must be multiples of 512; each request
 * is one pwrite/pread of up to --max-io bytes (default 1 MiB, a multiple
 * of 512) from a 4096-aligned buffer, so a 512-byte FILE is one 512-byte
 * write at OFFSET: no page cache, no read-modify-write of a page, no
 * writeback. GNU dd, by contrast, clears O_DIRECT for a last block shorter
 * than bs.
 *
 * --fua writes with pwritev2(RWF_DSYNC): the block layer sends each
 * request as a REQ_FUA write (or a write and a flush on a device without
 * FUA). --fsync calls fsync() on DEV after the last write (a flush).
 * A short write or read is continued where it stopped (and said on
 * stderr); no progress at all is an error.
 *
 * cmp reads DEV and compares it with FILE, printing the first difference.
 *
 * Exit: 0 done (cmp: equal), 1 an I/O error (cmp: a difference), 2 bad
 * usage (unaligned offset or length, bad option, DEV or FILE not opened).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR 512
#define ALIGN 4096

static const char *prog = "colo-dio";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s write DEV OFFSET FILE [--fua] [--fsync] [--max-io BYTES]\n"
		"       %s read DEV OFFSET BYTES [--max-io BYTES]\n"
		"       %s cmp DEV OFFSET FILE [--max-io BYTES]\n"
		"OFFSET, the length and BYTES are multiples of %d\n",
		prog, prog, prog, SECTOR);
	exit(2);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

/*
 * stream_full: all COUNT bytes of BUF written to FD, or read from FD into
 * BUF (a regular file or a pipe; its end is an error).
 */
static int stream_full(int fd, char *buf, size_t count, const char *name, int write_it)
{
	size_t done = 0;

	while (done < count) {
		ssize_t n = write_it ? write(fd, buf + done, count - done) :
				       read(fd, buf + done, count - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: %s %s: %s\n", prog, write_it ? "write" : "read", name,
				strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "%s: %s: shorter than its size\n", prog, name);
			return -1;
		}
		done += n;
	}
	return 0;
}

static int read_full(int fd, char *buf, size_t count, const char *name)
{
	return stream_full(fd, buf, count, name, 0);
}

static int write_full(int fd, const char *buf, size_t count, const char *name)
{
	return stream_full(fd, (char *)buf, count, name, 1);
}

/*
 * dev_io: one request of LEN bytes at OFF, as one pwrite/pread (pwritev2
 * with RWF_DSYNC for FUA); a short transfer is continued from where it
 * stopped, which must be sector-aligned for O_DIRECT.
 */
static int dev_io(int fd, const char *dev, int write, int fua, char *buf,
		  size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (write && fua) {
			struct iovec iov = { buf + done, len - done };

			n = pwritev2(fd, &iov, 1, off + done, RWF_DSYNC);
		} else if (write) {
			n = pwrite(fd, buf + done, len - done, off + done);
		} else {
			n = pread(fd, buf + done, len - done, off + done);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: %s %s: %zu bytes at %" PRIu64 ": %s\n",
				prog, write ? "write" : "read", dev, len - done,
				off + done, strerror(errno));
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "%s: %s %s: no progress at %" PRIu64
				" (end of device?)\n", prog, write ? "write" : "read",
				dev, off + done);
			return -1;
		}
		if ((size_t)n < len - done)
			fprintf(stderr, "%s: %s %s: short, %zd of %zu bytes at %"
				PRIu64 ", continuing\n", prog,
				write ? "write" : "read", dev, n, len - done,
				off + done);
		done += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t off, len, max_io = 1 << 20, pos;
	const char *cmd, *dev, *file = NULL;
	int fua = 0, do_fsync = 0, fd, ffd = -1, rc = 0, i, flags;
	char *buf, *fbuf = NULL;
	struct stat st;

	if (argc < 5)
		usage();
	cmd = argv[1];
	dev = argv[2];
	if (strcmp(cmd, "write") && strcmp(cmd, "read") && strcmp(cmd, "cmp"))
		usage();
	if (parse_u64(argv[3], &off)) {
		fprintf(stderr, "%s: bad offset '%s'\n", prog, argv[3]);
		return 2;
	}
	for (i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--fua") && !strcmp(cmd, "write")) {
			fua = 1;
		} else if (!strcmp(argv[i], "--fsync") && !strcmp(cmd, "write")) {
			do_fsync = 1;
		} else if (!strcmp(argv[i], "--max-io") && i + 1 < argc) {
			if (parse_u64(argv[++i], &max_io) || !max_io ||
			    max_io % SECTOR || max_io > (1ULL << 30)) {
				fprintf(stderr, "%s: --max-io: a multiple of %d up to 1 GiB\n",
					prog, SECTOR);
				return 2;
			}
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[i]);
			usage();
		}
	}

	if (!strcmp(cmd, "read")) {
		if (parse_u64(argv[4], &len)) {
			fprintf(stderr, "%s: bad length '%s'\n", prog, argv[4]);
			return 2;
		}
	} else {
		file = argv[4];
		ffd = open(file, O_RDONLY);
		if (ffd < 0 || fstat(ffd, &st)) {
			fprintf(stderr, "%s: %s: %s\n", prog, file, strerror(errno));
			return 2;
		}
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "%s: %s: not a regular file\n", prog, file);
			return 2;
		}
		len = st.st_size;
	}
	if (off % SECTOR || len % SECTOR) {
		fprintf(stderr, "%s: offset %" PRIu64 " and length %" PRIu64
			" must be multiples of %d (O_DIRECT)\n", prog, off, len, SECTOR);
		return 2;
	}

	flags = (strcmp(cmd, "write") ? O_RDONLY : O_WRONLY) | O_DIRECT;
	fd = open(dev, flags);	/* never O_CREAT */
	if (fd < 0) {
		fprintf(stderr, "%s: open %s with O_DIRECT: %s\n", prog, dev,
			strerror(errno));
		return 2;
	}
	if (max_io > len && len)
		max_io = len;
	errno = posix_memalign((void **)&buf, ALIGN, max_io);
	if (errno) {
		fprintf(stderr, "%s: %" PRIu64 " bytes: %s\n", prog, max_io, strerror(errno));
		return 1;
	}
	if (!strcmp(cmd, "cmp") && !(fbuf = malloc(max_io))) {
		fprintf(stderr, "%s: %" PRIu64 " bytes: %s\n", prog, max_io, strerror(errno));
		return 1;
	}

	for (pos = 0; pos < len && !rc; pos += max_io) {
		size_t n = len - pos < max_io ? len - pos : max_io;

		if (!strcmp(cmd, "write")) {
			if (read_full(ffd, buf, n, file) ||
			    dev_io(fd, dev, 1, fua, buf, n, off + pos))
				rc = 1;
		} else if (!strcmp(cmd, "read")) {
			if (dev_io(fd, dev, 0, 0, buf, n, off + pos) ||
			    write_full(STDOUT_FILENO, buf, n, "stdout"))
				rc = 1;
		} else {
			size_t j;

			if (read_full(ffd, fbuf, n, file) ||
			    dev_io(fd, dev, 0, 0, buf, n, off + pos)) {
				rc = 1;
				break;
			}
			if (!memcmp(buf, fbuf, n))
				continue;
			for (j = 0; buf[j] == fbuf[j]; j++)
				;
			fprintf(stderr, "%s: %s at %" PRIu64 " differs from %s at %"
				PRIu64 " (sector %" PRIu64 " of the device: 0x%02x, file 0x%02x)\n",
				prog, dev, off + pos + j, file, pos + j,
				(off + pos + j) / SECTOR, (unsigned char)buf[j],
				(unsigned char)fbuf[j]);
			rc = 1;
		}
	}
	if (!rc && do_fsync && fsync(fd)) {
		fprintf(stderr, "%s: fsync %s: %s\n", prog, dev, strerror(errno));
		rc = 1;
	}
	if (close(fd) && !rc) {
		fprintf(stderr, "%s: close %s: %s\n", prog, dev, strerror(errno));
		rc = 1;
	}
	free(buf);
	free(fbuf);
	return rc;
}
