/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The libdevmapper calls dmcoloctl makes. Each returns 0 or -1; on -1,
 * dm_error() tells why in a few words (the errno of the ioctl, or what
 * libdevmapper said), so the caller can print one line naming the device.
 */
#ifndef DMCOLOCTL_DM_H
#define DMCOLOCTL_DM_H

#include <stdint.h>

void dm_quiet(void);
const char *dm_error(void);

int dm_exists(const char *name);
/* Create NAME with one target covering sectors 0..len-1. */
int dm_create(const char *name, uint64_t len, const char *type, const char *params);
/* Load a new table into NAME, suspend, resume (the new table takes over). */
int dm_reload(const char *name, uint64_t len, const char *type, const char *params);
int dm_remove(const char *name);
int dm_message(const char *name, const char *msg);
/*
 * The first target's type and status (INFO) or table line of NAME, copied
 * into type/params. Returns -1 also when NAME has no target.
 */
int dm_status(const char *name, char *type, size_t type_len, char *params, size_t params_len);
int dm_table(const char *name, char *type, size_t type_len, char *params, size_t params_len);
/* How many openers NAME has (a VM, a mounted file system); -1 on error. */
int dm_open_count(const char *name);
/* The event counter of NAME. */
int dm_event_nr(const char *name, uint32_t *event_nr);

/* Call fn for every dm device; stops and returns fn's value when non-zero. */
int dm_for_each(int (*fn)(const char *name, void *arg), void *arg);

/* Version of a loaded target; -1 when it is not loaded, -2 on error. */
int dm_target_version(const char *target, uint32_t version[3]);

#endif
