// SPDX-License-Identifier: GPL-2.0-only
/* libdevmapper calls for the test and bench programs: see test-dm.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdevmapper.h>

#include "test-dm.h"

static void quiet_log(int level, const char *file, int line, int dm_errno_or_class,
		      const char *f, ...)
{
	(void)level; (void)file; (void)line; (void)dm_errno_or_class; (void)f;
}

void test_dm_quiet(void)
{
	dm_log_with_errno_init(quiet_log);
}

bool test_dm_simple(int type, const char *name)
{
	struct dm_task *dmt = dm_task_create(type);
	bool ok;

	if (!dmt)
		return false;
	ok = dm_task_set_name(dmt, name) && dm_task_run(dmt);
	dm_task_destroy(dmt);
	return ok;
}

bool test_dm_exists(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info = { 0 };
	bool ok;

	if (!dmt)
		return false;
	ok = dm_task_set_name(dmt, name) && dm_task_run(dmt) &&
	     dm_task_get_info(dmt, &info) && info.exists;
	dm_task_destroy(dmt);
	return ok;
}

bool test_dm_load(int type, const char *name, uint64_t len, const char *target,
		  const char *params, char *devt, size_t devt_len)
{
	struct dm_task *dmt = dm_task_create(type);
	struct dm_info info = { 0 };
	bool ok;

	if (!dmt)
		return false;
	ok = dm_task_set_name(dmt, name) && dm_task_add_target(dmt, 0, len, target, params) &&
	     dm_task_run(dmt);
	if (ok && devt) {
		ok = dm_task_get_info(dmt, &info) && info.exists;
		if (ok)
			snprintf(devt, devt_len, "%u:%u", info.major, info.minor);
	}
	dm_task_destroy(dmt);
	return ok;
}

bool test_dm_message(const char *name, const char *text)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
	bool ok;

	if (!dmt)
		return false;
	ok = dm_task_set_name(dmt, name) && dm_task_set_sector(dmt, 0) &&
	     dm_task_set_message(dmt, text) && dm_task_run(dmt);
	dm_task_destroy(dmt);
	return ok;
}

bool test_dm_target(int type, const char *name, uint64_t *len, char **target, char **params)
{
	struct dm_task *dmt = dm_task_create(type);
	uint64_t start, length = 0;
	char *t = NULL, *p = NULL;
	bool ok = false;

	if (!dmt)
		return false;
	if (dm_task_set_name(dmt, name) && dm_task_run(dmt)) {
		dm_get_next_target(dmt, NULL, &start, &length, &t, &p);
		ok = t && p;
		if (ok && len)
			*len = length;
		if (ok && target) {
			*target = strdup(t);
			ok = *target;
		}
		if (ok && params) {
			*params = strdup(p);
			ok = *params;
			if (!ok && target)
				free(*target);
		}
	}
	dm_task_destroy(dmt);
	return ok;
}

bool test_dm_params(int type, const char *name, char *out, size_t out_len)
{
	char *params;

	if (!test_dm_target(type, name, NULL, NULL, &params))
		return false;
	snprintf(out, out_len, "%s", params);
	free(params);
	return true;
}
