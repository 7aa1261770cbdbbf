/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: the primary node's state (struct colo_primary) and what its three
 * files share: dm-colo-primary.c (the target, and the registry of states),
 * dm-colo-primary-io.c (ordering and forwarding the writes, the worker),
 * dm-colo-primary-sync.c (the dirty log by flush generation, resync).
 * The functions named *_locked need pc->lock.
 */
#ifndef DM_COLO_PRIMARY_H
#define DM_COLO_PRIMARY_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-dirty-log.h>
#include <linux/dm-kcopyd.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#define PRIMARY_DEFAULT_INFLIGHT_KB	16384
#define PRIMARY_MIN_INFLIGHT_KB		4
#define PRIMARY_MAX_INFLIGHT_KB		(4U << 20)
#define PRIMARY_DEFAULT_REGION		1024
#define PRIMARY_MIN_REGION		8
#define PRIMARY_MAX_REGION		BIT(21)
#define PRIMARY_MAX_COPIES		4
#define PRIMARY_MIN_IOS			64
/* Discards and write-zeroes are cut so one io marks at most this many. */
#define PRIMARY_MAX_IO_REGIONS		256
#define PRIMARY_MARK_BATCH		4096
/* During a resync, a generation flush every so many copied regions. */
#define PRIMARY_FLUSH_BATCH		256
/* A write's private copy is one bio: at most BIO_MAX_VECS pages. */
#define PRIMARY_MAX_IO_SECTORS		(BIO_MAX_VECS << (PAGE_SHIFT - SECTOR_SHIFT))

enum primary_state {
	PRIMARY_IDLE,
	PRIMARY_SYNCING,
	PRIMARY_REPLICATING,
	PRIMARY_DEGRADED,
};

enum primary_mode {
	PRIMARY_ASYNC,
	PRIMARY_SYNC,
};

enum primary_error {
	PRIMARY_ERR_NONE,
	PRIMARY_ERR_REMOTE_IO,
	PRIMARY_ERR_REMOTE_FLUSH,
	PRIMARY_ERR_LOCAL_IO,
	PRIMARY_ERR_COPY,
	PRIMARY_ERR_REMOTE_CHANGED,
	PRIMARY_ERR_NOMEM,
};

/*
 * One write, flush or resync copy, from the worker's first look at it until
 * it is done on every device it goes to.
 */
struct primary_io {
	struct rb_node rb;		/* pc->tree, unless a flush */
	sector_t start, last;		/* target sectors, inclusive */
	sector_t subtree_last;
	u64 seq;
	struct list_head list;		/* pc->ios, in seq order */
	struct list_head waiting;	/* pc->waiting while not dispatched */
	struct colo_primary *pc;
	struct bio *bio;		/* the caller's; NULL for a copy */
	region_t region;		/* a copy's region */
	unsigned int bytes;		/* counted against max_inflight */
	atomic_t legs;			/* devices still to complete */
	blk_status_t local_status;
	blk_status_t remote_status;
	unsigned long flags;		/* IO_*: set before dispatch */
};

#define IO_COPY		BIT(0)	/* a resync copy of one region */
#define IO_IN_TREE	BIT(1)
#define IO_FORWARDED	BIT(2)	/* also sent to the remote */
#define IO_ENDED_EARLY	BIT(3)	/* caller completed with the local write */
#define IO_FLUSH	BIT(4)	/* an empty flush (sync mode) */
#define IO_PRIVATE_COPY	BIT(5)	/* the remote bio's pages are ours */

/*
 * The state of one replicated disk, shared by the tables that load a
 * colo-primary target over the same local device (a reload keeps it).
 */
struct colo_primary {
	struct list_head list;		/* primary_list */
	refcount_t ref;
	struct mapped_device *owner;
	struct block_device *local;
	struct dm_dirty_log *log;
	sector_t len;
	unsigned int region_shift;
	region_t nr_regions;

	/* Set by the table being resumed; stable while it is live. */
	struct block_device *remote;
	dev_t remote_dev;
	enum primary_mode mode;
	u64 max_inflight;

	spinlock_t lock;		/* everything below, and the log */
	struct dm_target *ti;		/* the live target, for events */
	enum primary_state state;
	enum primary_error error;
	bool suspended;
	bool event_pending;
	bool search_reset;		/* resync search restarted this pass */
	bool resync_retry;		/* a copy found no io: run again */
	bool unflushed_lost;		/* degraded: the worker marks the unflushed */
	/*
	 * Flush generations. [0] collects the regions acknowledged since the
	 * generation flush in flight was issued, [1] is what that flush covers
	 * (empty when none is in flight): acked for forwards, copied for
	 * resync copies (out of sync and "recovering" in the log until then).
	 */
	unsigned long *acked[2];
	unsigned long *copied[2];
	unsigned int nr_copied_unflushed;	/* bits in copied[0] */
	bool gen_flushing;		/* a generation flush is in flight */
	bool gen_ended;			/* ... and has completed: worker applies it */
	blk_status_t gen_status;
	u64 gen_started, gen_done, gen_failed;	/* flushes issued, applied, last failed */
	struct rb_root_cached tree;
	struct list_head ios;
	struct list_head waiting;
	struct bio_list deferred;
	struct bio_list remote_bios;	/* dispatched, for remote_worker */
	u64 next_seq;
	unsigned int nr_copies;
	u64 nr_forwarding;
	u64 bytes_inflight;
	u64 peak_inflight;
	u64 nr_forwarded;
	u64 nr_copied;
	u64 nr_remote_errors;

	wait_queue_head_t wait;		/* ios finishing: checkpoint, suspend */
	struct mutex msg_lock;		/* messages, resume */
	struct workqueue_struct *wq;		/* worker: the local path */
	struct workqueue_struct *remote_wq;	/* remote_worker */
	struct work_struct worker;
	struct work_struct remote_worker;
	struct dm_kcopyd_client *kc;
	struct bio_set local_bs;
	struct bio_set remote_bs;
	mempool_t io_pool;
};

/* One colo-primary target: its devices and constructor options. */
struct primary_target {
	struct colo_primary *pc;
	struct dm_dev *local;
	struct dm_dev *remote;
	enum primary_mode mode;
	unsigned int max_inflight_kb;
	unsigned int region_sectors;
	bool nosync;
	unsigned int opts;		/* OPT_* given, for the table line */
	unsigned int nr_opt_args;
};

/* In the order of opt_of()'s names. */
#define OPT_MODE	BIT(0)
#define OPT_INFLIGHT	BIT(1)
#define OPT_REGION	BIT(2)
#define OPT_NOSYNC	BIT(3)

static inline bool forwarding(enum primary_state state)
{
	return state == PRIMARY_SYNCING || state == PRIMARY_REPLICATING;
}

static inline region_t sector_to_region(struct colo_primary *pc, sector_t sector)
{
	return sector >> pc->region_shift;
}

static inline sector_t region_to_sector(struct colo_primary *pc, region_t region)
{
	return (sector_t)region << pc->region_shift;
}

/* dm-colo-primary-io.c */
struct primary_io *colo_primary_io_alloc(struct colo_primary *pc);
bool colo_primary_retry_now(struct colo_primary *pc);
void colo_primary_kick(struct colo_primary *pc);
void colo_primary_worker(struct work_struct *work);
void colo_primary_admit_locked(struct colo_primary *pc, struct primary_io *io);
void colo_primary_dispatch_waiting(struct colo_primary *pc);
bool colo_primary_discard_stays_local(struct colo_primary *pc, struct primary_io *io);
void colo_primary_region_out_of_sync_locked(struct colo_primary *pc, region_t r);
void colo_primary_remote_worker(struct work_struct *work);
void colo_primary_set_state_locked(struct colo_primary *pc, enum primary_state state);
void colo_primary_degrade_locked(struct colo_primary *pc, enum primary_error error);

/* dm-colo-primary-sync.c */
void colo_primary_mark_all_out_of_sync(struct colo_primary *pc);
void colo_primary_gen_flush_apply(struct colo_primary *pc);
void colo_primary_do_resync(struct colo_primary *pc);
void colo_primary_mark_unflushed_out_of_sync(struct colo_primary *pc);
bool colo_primary_gen_applied(struct colo_primary *pc, u64 gen);
u64 colo_primary_gen_flush_start(struct colo_primary *pc);
bool colo_primary_gen_busy(struct colo_primary *pc);

#endif
