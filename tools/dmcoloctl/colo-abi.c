// SPDX-License-Identifier: GPL-2.0-only
/* Status parsers of the dm-colo targets (see colo-abi.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "colo-abi.h"

enum colo_kind colo_kind_of(const char *target_type)
{
	if (!target_type)
		return COLO_KIND_NONE;
	if (!strcmp(target_type, COLO_SECONDARY_TARGET))
		return COLO_KIND_SECONDARY;
	if (!strcmp(target_type, COLO_INGRESS_TARGET))
		return COLO_KIND_INGRESS;
	if (!strcmp(target_type, COLO_PRIMARY_TARGET))
		return COLO_KIND_PRIMARY;
	return COLO_KIND_NONE;
}

/* A word of known states: lower-case letters and '_' only. */
static int is_word(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/*
 * The formats below end with %n so that a line missing a field (n stays -1)
 * is told from a complete one; what follows the known fields is ignored,
 * but must start with a blank so that "12x" is not read as 12.
 */
static int complete(const char *params, int n)
{
	return n > 0 && (params[n] == '\0' || params[n] == ' ');
}

int colo_parse_secondary(const char *params, struct colo_secondary_status *st)
{
	int n = -1;

	memset(st, 0, sizeof(*st));
	if (sscanf(params, "%15s %" SCNu64 " %" SCNu64 "/%" SCNu64 " %" SCNu64 "/%" SCNu64
		   " %" SCNu64 " %" SCNu64 " %23s%n",
		   st->state, &st->epoch, &st->buffered, &st->capacity, &st->merged,
		   &st->to_merge, &st->copies, &st->secondary_writes, st->error, &n) != 9)
		return -1;
	if (!complete(params, n) || !is_word(st->state) || !is_word(st->error))
		return -1;
	return 0;
}

int colo_parse_ingress(const char *params, struct colo_ingress_status *st)
{
	int n = -1;

	memset(st, 0, sizeof(*st));
	if (sscanf(params, "%15s %" SCNu64 " %" SCNu64 "%n", st->state, &st->writes,
		   &st->refused, &n) != 3)
		return -1;
	if (!complete(params, n) || !is_word(st->state))
		return -1;
	return 0;
}

int colo_parse_primary(const char *params, struct colo_primary_status *st)
{
	int n = -1;

	memset(st, 0, sizeof(*st));
	if (sscanf(params, "%15s %7s %" SCNu64 "/%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %23s%n",
		   st->state, st->mode, &st->in_sync, &st->regions, &st->copied,
		   &st->forwarded, &st->forwarding, &st->bytes_in_flight, &st->peak_bytes,
		   &st->remote_errors, st->error, &n) != 11)
		return -1;
	if (!complete(params, n) || !is_word(st->state) || !is_word(st->mode) ||
	    !is_word(st->error))
		return -1;
	return 0;
}
