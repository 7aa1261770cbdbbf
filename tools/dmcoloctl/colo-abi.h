/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Everything dmcoloctl knows about the kernel's dm-colo targets: their
 * names, the major version whose table and status formats this file
 * describes, and the parsers of their status lines. Nothing else in the
 * tool spells a target name or a status field.
 *
 * Compatibility rule (Documentation/admin-guide/device-mapper/dm-colo.rst):
 * a minor version may append status fields, a major version may change
 * them. The parsers read the fields they know and ignore what follows;
 * colo_check_versions() refuses a major version other than the one below.
 */
#ifndef DMCOLOCTL_COLO_ABI_H
#define DMCOLOCTL_COLO_ABI_H

#include <stdint.h>

#define COLO_SECONDARY_TARGET "colo-secondary"
#define COLO_INGRESS_TARGET "colo-ingress"
#define COLO_PRIMARY_TARGET "colo-primary"
#define COLO_TARGET_MAJOR 1

/* The colo-ingress device of secondary NAME is NAME + this suffix. */
#define COLO_INGRESS_SUFFIX "-ingress"

enum colo_kind { COLO_KIND_NONE, COLO_KIND_SECONDARY, COLO_KIND_INGRESS, COLO_KIND_PRIMARY };

struct colo_secondary_status {
	char state[16];		/* idle running broken merging standalone */
	uint64_t epoch;
	uint64_t buffered, capacity;
	uint64_t merged, to_merge;
	uint64_t copies, secondary_writes;
	char error[24];
};

struct colo_ingress_status {
	char state[16];		/* the secondary's, or fenced, detached */
	uint64_t writes, refused;
};

struct colo_primary_status {
	char state[16];		/* idle syncing replicating degraded */
	char mode[8];		/* async sync */
	uint64_t in_sync, regions;
	uint64_t copied, forwarded, forwarding;
	uint64_t bytes_in_flight, peak_bytes, remote_errors;
	char error[24];
};

enum colo_kind colo_kind_of(const char *target_type);

/*
 * One table per target lists its status fields in order: it drives the
 * parsers below and the JSON of `dmcoloctl status` (show.c). A word is
 * lower-case letters, '_' and '-'; a pair is "a/b".
 */
enum colo_field_kind { COLO_F_WORD, COLO_F_U64, COLO_F_PAIR };

struct colo_field {
	const char *name;	/* JSON key; NULL ends a table */
	const char *name2;	/* a pair's second number */
	enum colo_field_kind kind;
	size_t offset, offset2;	/* in the status struct */
	size_t size;		/* a word's buffer */
};

extern const struct colo_field colo_secondary_fields[];
extern const struct colo_field colo_ingress_fields[];
extern const struct colo_field colo_primary_fields[];

/* Each returns 0, or -1 when the line does not have the known fields. */
int colo_parse_secondary(const char *params, struct colo_secondary_status *st);
int colo_parse_ingress(const char *params, struct colo_ingress_status *st);
int colo_parse_primary(const char *params, struct colo_primary_status *st);

/* The messages the targets take. */
#define COLO_MSG_START "start"
#define COLO_MSG_START_FULL "start full"
#define COLO_MSG_STOP "stop"
#define COLO_MSG_CHECKPOINT "checkpoint"
#define COLO_MSG_FAILOVER "failover"
#define COLO_MSG_RESYNC "resync"
#define COLO_MSG_RESYNC_FULL "resync full"

/* States the tool acts on. */
#define COLO_ST_IDLE "idle"
#define COLO_ST_RUNNING "running"
#define COLO_ST_BROKEN "broken"
#define COLO_ST_MERGING "merging"
#define COLO_ST_STANDALONE "standalone"
#define COLO_ST_SYNCING "syncing"
#define COLO_ST_REPLICATING "replicating"
#define COLO_ST_DEGRADED "degraded"

/* The colo-secondary error the tool acts on: the merge stalled. */
#define COLO_ERR_MERGE_FAILED "merge_failed"

#endif
