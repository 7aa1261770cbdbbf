// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-hostile: feed device-mapper hostile tables and messages from stdin,
 * one process, straight through libdevmapper (a dmsetup per case costs a
 * second under TCG on the debug kernel). Each line is
 *
 *   table NAME START LEN TYPE [PARAMS...]   must be refused, leave no NAME
 *   message DEV STATE WORDS...              must be refused, DEV stays STATE
 *
 * Prints one line per case that misbehaved, then
 * "cases N refused N accepted N left N state N"; exits 1 when any
 * misbehaved, 2 on a malformed input line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdevmapper.h>

static unsigned long cases, refused, accepted, left, state_changed;

static void quiet_log(int level, const char *file, int line, int dm_errno_or_class,
		      const char *f, ...)
{
	(void)level; (void)file; (void)line; (void)dm_errno_or_class; (void)f;
}

static int run_simple(int type, const char *name)
{
	struct dm_task *dmt = dm_task_create(type);
	int ok;

	if (!dmt)
		return 0;
	ok = dm_task_set_name(dmt, name) && dm_task_run(dmt);
	dm_task_destroy(dmt);
	return ok;
}

static int exists(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info;
	int r = 0;

	if (!dmt)
		return 0;
	if (dm_task_set_name(dmt, name) && dm_task_run(dmt) && dm_task_get_info(dmt, &info))
		r = info.exists;
	dm_task_destroy(dmt);
	return r;
}

/* First word of DEV's status into state (63 bytes). */
static int status_word(const char *name, char *state)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_STATUS);
	uint64_t start, length;
	char *type = NULL, *params = NULL;
	int r = -1;

	if (!dmt)
		return -1;
	if (dm_task_set_name(dmt, name) && dm_task_run(dmt)) {
		dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
		if (params && sscanf(params, "%63s", state) == 1)
			r = 0;
	}
	dm_task_destroy(dmt);
	return r;
}

static void table_case(char *rest, const char *line)
{
	char name[128], type[64];
	unsigned long long start, len;
	struct dm_task *dmt;
	int n = 0, ok;

	if (sscanf(rest, "%127s %llu %llu %63s %n", name, &start, &len, type, &n) < 4) {
		fprintf(stderr, "colo-hostile: malformed table case: %s\n", line);
		exit(2);
	}
	dmt = dm_task_create(DM_DEVICE_CREATE);
	if (!dmt || !dm_task_set_name(dmt, name) ||
	    !dm_task_add_target(dmt, start, len, type, rest + n)) {
		fprintf(stderr, "colo-hostile: cannot build: %s\n", line);
		exit(2);
	}
	ok = dm_task_run(dmt);
	dm_task_destroy(dmt);
	if (ok) {
		accepted++;
		printf("ACCEPTED %s\n", line);
		run_simple(DM_DEVICE_REMOVE, name);
	} else if (exists(name)) {
		left++;
		printf("LEFT %s\n", line);
		run_simple(DM_DEVICE_REMOVE, name);
	} else {
		refused++;
	}
}

static void message_case(char *rest, const char *line)
{
	char dev[128], want[64], now[64] = "?";
	struct dm_task *dmt;
	int n = 0, ok;

	if (sscanf(rest, "%127s %63s %n", dev, want, &n) < 2 || !rest[n]) {
		fprintf(stderr, "colo-hostile: malformed message case: %s\n", line);
		exit(2);
	}
	dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
	if (!dmt || !dm_task_set_name(dmt, dev) || !dm_task_set_sector(dmt, 0) ||
	    !dm_task_set_message(dmt, rest + n)) {
		fprintf(stderr, "colo-hostile: cannot build: %s\n", line);
		exit(2);
	}
	ok = dm_task_run(dmt);
	dm_task_destroy(dmt);
	if (ok) {
		accepted++;
		printf("ACCEPTED %s\n", line);
	} else {
		refused++;
	}
	if (status_word(dev, now) || strcmp(now, want)) {
		state_changed++;
		printf("STATE %s: now %s\n", line, now);
	}
}

int main(void)
{
	char line[4096], copy[4096];

	dm_log_with_errno_init(quiet_log);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		memcpy(copy, line, sizeof(copy));
		cases++;
		if (!strncmp(line, "table ", 6)) {
			table_case(line + 6, copy);
		} else if (!strncmp(line, "message ", 8)) {
			message_case(line + 8, copy);
		} else {
			fprintf(stderr, "colo-hostile: unknown case: %s\n", line);
			return 2;
		}
	}
	printf("cases %lu refused %lu accepted %lu left %lu state %lu\n", cases, refused,
	       accepted, left, state_changed);
	return accepted || left || state_changed ? 1 : 0;
}
