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

#include "test-dm.h"

static unsigned long cases, refused, accepted, left, state_changed;

/* First word of DEV's status into state (63 bytes). */
static int status_word(const char *name, char *state)
{
	char params[256];

	if (!test_dm_params(DM_DEVICE_STATUS, name, params, sizeof(params)) ||
	    sscanf(params, "%63s", state) != 1)
		return -1;
	return 0;
}

/* Run a case's task (built: its name and payload were set); exits 2 when
 * it could not even be built. */
static int run_case(struct dm_task *dmt, int built, const char *line)
{
	int ok;

	if (!dmt || !built) {
		fprintf(stderr, "colo-hostile: cannot build: %s\n", line);
		exit(2);
	}
	ok = dm_task_run(dmt);
	dm_task_destroy(dmt);
	if (ok) {
		accepted++;
		printf("ACCEPTED %s\n", line);
	}
	return ok;
}

static void table_case(char *rest, const char *line)
{
	char name[128], type[64];
	unsigned long long start, len;
	struct dm_task *dmt;
	int n = 0, built;

	if (sscanf(rest, "%127s %llu %llu %63s %n", name, &start, &len, type, &n) < 4) {
		fprintf(stderr, "colo-hostile: malformed table case: %s\n", line);
		exit(2);
	}
	dmt = dm_task_create(DM_DEVICE_CREATE);
	built = dmt && dm_task_set_name(dmt, name) &&
		dm_task_add_target(dmt, start, len, type, rest + n);
	if (run_case(dmt, built, line)) {
		test_dm_simple(DM_DEVICE_REMOVE, name);
	} else if (test_dm_exists(name)) {
		left++;
		printf("LEFT %s\n", line);
		test_dm_simple(DM_DEVICE_REMOVE, name);
	} else {
		refused++;
	}
}

static void message_case(char *rest, const char *line)
{
	char dev[128], want[64], now[64] = "?";
	struct dm_task *dmt;
	int n = 0, built;

	if (sscanf(rest, "%127s %63s %n", dev, want, &n) < 2 || !rest[n]) {
		fprintf(stderr, "colo-hostile: malformed message case: %s\n", line);
		exit(2);
	}
	dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
	built = dmt && dm_task_set_name(dmt, dev) && dm_task_set_sector(dmt, 0) &&
		dm_task_set_message(dmt, rest + n);
	if (!run_case(dmt, built, line))
		refused++;
	if (status_word(dev, now) || strcmp(now, want)) {
		state_changed++;
		printf("STATE %s: now %s\n", line, now);
	}
}

int main(void)
{
	char line[4096], copy[4096];

	test_dm_quiet();
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
