// SPDX-License-Identifier: GPL-2.0-only
/* libdevmapper wrappers (see dm.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libdevmapper.h>

#include "dm.h"

static char last_error[256];

/*
 * libdevmapper prints its own errors; dmcoloctl prints one line per failure
 * instead, so keep libdevmapper's last error message for dm_error().
 */
static void dm_log(int level, const char *file, int line, int dm_errno_or_class,
		   const char *f, ...)
{
	va_list ap;

	(void)file;
	(void)line;
	(void)dm_errno_or_class;
	if (level > 3)	/* _LOG_ERR */
		return;
	va_start(ap, f);
	vsnprintf(last_error, sizeof(last_error), f, ap);
	va_end(ap);
}

void dm_quiet(void)
{
	dm_log_with_errno_init(dm_log);
}

const char *dm_error(void)
{
	return last_error[0] ? last_error : "device-mapper error";
}

static void set_error_errno(struct dm_task *dmt)
{
	int err = dm_task_get_errno(dmt);

	if (err)
		snprintf(last_error, sizeof(last_error), "%s", strerror(err));
}

static struct dm_task *task(int type, const char *name)
{
	struct dm_task *dmt;

	last_error[0] = '\0';
	dmt = dm_task_create(type);
	if (!dmt) {
		/* libdevmapper said why (no driver, no control node), or it is memory. */
		if (!last_error[0])
			snprintf(last_error, sizeof(last_error), "out of memory");
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/* A query task run: NULL (error recorded) when it could not be. */
static struct dm_task *query(int type, const char *name)
{
	struct dm_task *dmt = task(type, name);

	if (dmt && !dm_task_run(dmt)) {
		set_error_errno(dmt);
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/* The device's info; false when it does not exist or cannot be asked. */
static bool info_of(const char *name, struct dm_info *info)
{
	struct dm_task *dmt = query(DM_DEVICE_INFO, name);
	bool ok;

	if (!dmt)
		return false;
	ok = dm_task_get_info(dmt, info) && info->exists;
	dm_task_destroy(dmt);
	return ok;
}

/* Run dmt, waiting for udev (or making the node) when it changes a device. */
static int run(struct dm_task *dmt, int udev)
{
	uint32_t cookie = 0;
	int ok;

	if (udev && !dm_task_set_cookie(dmt, &cookie, 0)) {
		dm_task_destroy(dmt);
		return -1;
	}
	ok = dm_task_run(dmt);
	if (!ok)
		set_error_errno(dmt);
	if (udev)
		dm_udev_wait(cookie);
	dm_task_destroy(dmt);
	return ok ? 0 : -1;
}

int dm_exists(const char *name)
{
	struct dm_info info;

	return info_of(name, &info);
}

/* A create or reload task with one target covering sectors 0..len-1. */
static struct dm_task *table_task(int type, const char *name, uint64_t len, const char *ttype,
				  const char *params)
{
	struct dm_task *dmt = task(type, name);

	if (dmt && !dm_task_add_target(dmt, 0, len, ttype, params)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

int dm_create(const char *name, uint64_t len, const char *type, const char *params)
{
	struct dm_task *dmt = table_task(DM_DEVICE_CREATE, name, len, type, params);

	return dmt ? run(dmt, 1) : -1;
}

static int suspend_resume(const char *name, int type)
{
	struct dm_task *dmt = task(type, name);

	if (!dmt)
		return -1;
	return run(dmt, type == DM_DEVICE_RESUME);
}

int dm_reload(const char *name, uint64_t len, const char *type, const char *params)
{
	struct dm_task *dmt = table_task(DM_DEVICE_RELOAD, name, len, type, params);

	if (!dmt || run(dmt, 0))
		return -1;
	if (suspend_resume(name, DM_DEVICE_SUSPEND)) {
		/* Drop the inactive table so the device is as it was. */
		dmt = task(DM_DEVICE_CLEAR, name);
		if (dmt) {
			char keep[sizeof(last_error)];

			memcpy(keep, last_error, sizeof(keep));
			run(dmt, 0);
			memcpy(last_error, keep, sizeof(keep));
		}
		return -1;
	}
	return suspend_resume(name, DM_DEVICE_RESUME);
}

int dm_remove(const char *name)
{
	struct dm_task *dmt = task(DM_DEVICE_REMOVE, name);

	if (!dmt)
		return -1;
	/* A reader (udev's blkid, a watcher) may hold the device a moment. */
	dm_task_retry_remove(dmt);
	return run(dmt, 1);
}

int dm_message(const char *name, const char *msg)
{
	struct dm_task *dmt = task(DM_DEVICE_TARGET_MSG, name);

	if (!dmt)
		return -1;
	if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg)) {
		dm_task_destroy(dmt);
		return -1;
	}
	return run(dmt, 0);
}

static int first_target(int type, const char *name, char *ttype, size_t type_len,
			char *params, size_t params_len)
{
	struct dm_task *dmt = query(type, name);
	uint64_t start, length;
	char *t = NULL, *p = NULL;
	int r = -1;

	if (!dmt)
		return -1;
	dm_get_next_target(dmt, NULL, &start, &length, &t, &p);
	if (t) {
		snprintf(ttype, type_len, "%s", t);
		snprintf(params, params_len, "%s", p ? p : "");
		r = 0;
	} else {
		snprintf(last_error, sizeof(last_error), "no table loaded");
	}
	dm_task_destroy(dmt);
	return r;
}

int dm_status(const char *name, char *type, size_t type_len, char *params, size_t params_len)
{
	return first_target(DM_DEVICE_STATUS, name, type, type_len, params, params_len);
}

int dm_table(const char *name, char *type, size_t type_len, char *params, size_t params_len)
{
	return first_target(DM_DEVICE_TABLE, name, type, type_len, params, params_len);
}

int dm_open_count(const char *name)
{
	struct dm_info info;

	return info_of(name, &info) ? info.open_count : -1;
}

int dm_event_nr(const char *name, uint32_t *event_nr)
{
	struct dm_info info;

	if (!info_of(name, &info))
		return -1;
	*event_nr = info.event_nr;
	return 0;
}

int dm_for_each(int (*fn)(const char *name, void *arg), void *arg)
{
	struct dm_task *dmt = query(DM_DEVICE_LIST, NULL);
	struct dm_names *names;
	unsigned int next = 0;
	int r = 0;

	if (!dmt)
		return -1;
	names = dm_task_get_names(dmt);
	if (!names) {
		dm_task_destroy(dmt);
		return -1;
	}
	if (names->dev) {
		do {
			names = (struct dm_names *)((char *)names + next);
			r = fn(names->name, arg);
			next = names->next;
		} while (!r && next);
	}
	dm_task_destroy(dmt);
	return r;
}

int dm_target_version(const char *target, uint32_t version[3])
{
	struct dm_versions *v, *last;
	struct dm_task *dmt = query(DM_DEVICE_LIST_VERSIONS, NULL);
	int r = -1;

	if (!dmt)
		return -2;
	v = dm_task_get_versions(dmt);
	do {
		last = v;
		if (!strcmp(v->name, target)) {
			memcpy(version, v->version, 3 * sizeof(uint32_t));
			r = 0;
			break;
		}
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
	dm_task_destroy(dmt);
	return r;
}
