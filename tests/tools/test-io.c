// SPDX-License-Identifier: GPL-2.0-only
/* What the test programs share: see test-io.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-io.h"

uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void *aligned(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len)) {
		fprintf(stderr, "%s: posix_memalign %zu: out of memory\n",
			program_invocation_short_name, len);
		exit(1);
	}
	return p;
}

int open_direct(const char *path, int flags)
{
	int fd = open(path, flags | O_DIRECT);

	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", program_invocation_short_name, path,
			strerror(errno));
		exit(1);
	}
	return fd;
}

int pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = EIO;	/* the device or file ended */
			return -1;
		}
		done += n;
	}
	return 0;
}

int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = ENOSPC;
			return -1;
		}
		done += n;
	}
	return 0;
}

int load_file(const char *path, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY), r;

	if (fd < 0)
		return -1;
	r = pread_full(fd, buf, len, 0);
	close(fd);
	return r;
}

int save_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), r;

	if (fd < 0)
		return -1;
	r = pwrite_full(fd, buf, len, 0);
	if (close(fd))
		r = -1;
	return r;
}

int compare_device(const char *path, const unsigned char *want, size_t len, const char *what)
{
	unsigned char *buf = aligned(len);
	int fd = open_direct(path, O_RDONLY);
	size_t off;

	if (pread_full(fd, buf, len, 0)) {
		fprintf(stderr, "%s: read %s: %s\n", program_invocation_short_name, path,
			strerror(errno));
		close(fd);
		free(buf);
		return 1;
	}
	close(fd);
	for (off = 0; off < len; off++)
		if (buf[off] != want[off]) {
			fprintf(stderr, "%s: %s (%s) differs from the model at byte %zu\n",
				program_invocation_short_name, what, path, off);
			free(buf);
			return 1;
		}
	free(buf);
	return 0;
}
