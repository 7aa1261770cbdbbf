// SPDX-License-Identifier: GPL-2.0-only
/* Status parsers of the dm-colo targets (see colo-abi.h). */
#include <inttypes.h>
#include <stddef.h>
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

#define WORD(name, type, member) \
	{ name, NULL, COLO_F_WORD, offsetof(type, member), 0, sizeof(((type *)0)->member) }
#define U64(name, type, member) \
	{ name, NULL, COLO_F_U64, offsetof(type, member), 0, 0 }
#define PAIR(name, name2, type, m1, m2) \
	{ name, name2, COLO_F_PAIR, offsetof(type, m1), offsetof(type, m2), 0 }

/* The status lines, field by field: dm-colo.rst, "Status". */
const struct colo_field colo_secondary_fields[] = {
	WORD("state", struct colo_secondary_status, state),
	U64("epoch", struct colo_secondary_status, epoch),
	PAIR("buffered", "capacity", struct colo_secondary_status, buffered, capacity),
	PAIR("merged", "to_merge", struct colo_secondary_status, merged, to_merge),
	U64("copies", struct colo_secondary_status, copies),
	U64("secondary_writes", struct colo_secondary_status, secondary_writes),
	WORD("error", struct colo_secondary_status, error),
	{ NULL }
};

const struct colo_field colo_ingress_fields[] = {
	WORD("state", struct colo_ingress_status, state),
	U64("writes", struct colo_ingress_status, writes),
	U64("refused", struct colo_ingress_status, refused),
	{ NULL }
};

const struct colo_field colo_primary_fields[] = {
	WORD("state", struct colo_primary_status, state),
	WORD("mode", struct colo_primary_status, mode),
	PAIR("in_sync", "regions", struct colo_primary_status, in_sync, regions),
	U64("copied", struct colo_primary_status, copied),
	U64("forwarded", struct colo_primary_status, forwarded),
	U64("forwarding", struct colo_primary_status, forwarding),
	U64("bytes_in_flight", struct colo_primary_status, bytes_in_flight),
	U64("peak_bytes", struct colo_primary_status, peak_bytes),
	U64("remote_errors", struct colo_primary_status, remote_errors),
	WORD("error", struct colo_primary_status, error),
	{ NULL }
};

static int is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_' || c == '-';
}

/* A decimal number at *p, ended by @end or a blank or the line's end. */
static int parse_u64(const char **p, char end, uint64_t *value)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != end && *s != ' ' && *s)
		return -1;
	*value = v;
	*p = s;
	return 0;
}

/*
 * The fields of @fields, in order, separated by blanks; what follows the
 * known fields (a newer minor version's) is ignored, but must start with a
 * blank so that "12x" is not read as 12.
 */
static int parse_fields(const char *params, const struct colo_field *fields, void *st)
{
	const char *p = params;
	char *base = st;
	size_t n;

	for (; fields->name; fields++) {
		if (p != params) {
			if (*p != ' ')
				return -1;
			while (*p == ' ')
				p++;
		}
		switch (fields->kind) {
		case COLO_F_WORD:
			for (n = 0; is_word_char(p[n]); n++)
				;
			if (!n || n >= fields->size || (p[n] && p[n] != ' '))
				return -1;
			memcpy(base + fields->offset, p, n);
			base[fields->offset + n] = '\0';
			p += n;
			break;
		case COLO_F_U64:
			if (parse_u64(&p, ' ', (uint64_t *)(base + fields->offset)))
				return -1;
			break;
		case COLO_F_PAIR:
			if (parse_u64(&p, '/', (uint64_t *)(base + fields->offset)) || *p++ != '/' ||
			    parse_u64(&p, ' ', (uint64_t *)(base + fields->offset2)))
				return -1;
			break;
		}
	}
	return *p && *p != ' ' ? -1 : 0;
}

int colo_parse_secondary(const char *params, struct colo_secondary_status *st)
{
	memset(st, 0, sizeof(*st));
	return parse_fields(params, colo_secondary_fields, st);
}

int colo_parse_ingress(const char *params, struct colo_ingress_status *st)
{
	memset(st, 0, sizeof(*st));
	return parse_fields(params, colo_ingress_fields, st);
}

int colo_parse_primary(const char *params, struct colo_primary_status *st)
{
	memset(st, 0, sizeof(*st));
	return parse_fields(params, colo_primary_fields, st);
}
