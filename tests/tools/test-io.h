/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the test programs share: a seeded generator, aligned buffers,
 * O_DIRECT opens, whole reads and writes, the model files and the exact
 * compare of a device with its model. Errors name the program
 * (program_invocation_short_name); the allocating and opening helpers exit
 * with status 1, the others return -1 (or 1 for a difference).
 */
#ifndef TEST_IO_H
#define TEST_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* xorshift64: *s must not be 0. */
uint64_t next_rand(uint64_t *s);

/* len bytes aligned to 4 KiB (any logical block size): exits on failure. */
void *aligned(size_t len);

/* open(path, flags | O_DIRECT): exits on failure. */
int open_direct(const char *path, int flags);

/* pread/pwrite all of len at off (EINTR and short transfers retried). */
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);

/* A model file: exactly len bytes read, or written (created, truncated). */
int load_file(const char *path, void *buf, size_t len);
int save_file(const char *path, const void *buf, size_t len);

/*
 * The first len bytes of the device at path, read with O_DIRECT, are want:
 * 0, or 1 with the first differing byte printed (what names the device).
 */
int compare_device(const char *path, const unsigned char *want, size_t len, const char *what);

#endif
