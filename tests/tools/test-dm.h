/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the test and bench programs that drive device-mapper directly share:
 * one libdevmapper call each, by device name, single-target tables only.
 * Each returns false when the device is missing or the ioctl failed;
 * libdevmapper's own messages are silenced by test_dm_quiet().
 */
#ifndef TEST_DM_H
#define TEST_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No libdevmapper messages: the programs refuse on purpose, and say why. */
void test_dm_quiet(void);

/* A task that takes a name only: DM_DEVICE_SUSPEND, RESUME, REMOVE... */
bool test_dm_simple(int type, const char *name);

bool test_dm_exists(const char *name);

/*
 * DM_DEVICE_CREATE (create, load, resume) or DM_DEVICE_RELOAD with one
 * target; for a create, devt (if not NULL) gets "major:minor".
 */
bool test_dm_load(int type, const char *name, uint64_t len, const char *target,
		  const char *params, char *devt, size_t devt_len);

/* A message to sector 0. */
bool test_dm_message(const char *name, const char *text);

/*
 * The first target of a table (DM_DEVICE_TABLE) or its status
 * (DM_DEVICE_STATUS): its length, and its type and parameters malloc'ed
 * (either pointer may be NULL when not wanted).
 */
bool test_dm_target(int type, const char *name, uint64_t *len, char **target, char **params);

/* The same parameters into out (truncated to out_len). */
bool test_dm_params(int type, const char *name, char *out, size_t out_len);

#endif
