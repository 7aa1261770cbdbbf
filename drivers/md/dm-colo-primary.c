// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: COLO block replication, the primary node's target.
 *
 *   colo-primary <local_dev> <remote_dev> [<#opt_args> <opt_args>...]
 *     mode async|sync   max_inflight_kb <n>   region_sectors <n>   nosync
 *
 * Reads come from local_dev. Every write goes to local_dev and, while
 * replicating, to remote_dev too: the kernel NBD client connected to the
 * secondary's colo-ingress. In async mode the caller's write completes with
 * the local write and the remote write continues from a private copy of the
 * data, within max_inflight_kb; in sync mode it completes when both are done.
 *
 * Writes that overlap are applied one after the other, in arrival order, on
 * both devices: every write and every resync copy is an entry of an interval
 * tree from its arrival until it is done on every device, and an entry is
 * dispatched only when no earlier entry overlaps it. That is also what holds
 * writes off a region while it is being copied.
 *
 * Which regions the remote may lack is kept in a dm-dirty-log ("core") as
 * the log's in-sync bits: regions written while not replicating, and regions
 * whose forward failed, are marked out of sync; a resync copies exactly
 * those (get_resync_work / set_region_sync). dm-region-hash is not used: its
 * region states duplicate the interval tree's ordering, and it ignores
 * discards, which must be recorded too.
 *
 * The remote acknowledges a write once nbd-server has it in its page cache;
 * only a remote flush issued after that makes it durable. So the log is
 * kept per flush generation: the regions of forwards and copies the remote
 * acknowledged since the last successful "generation flush" (the
 * checkpoint's, or the resync's) are remembered. A copied region becomes in
 * sync only when such a flush succeeds; when one fails, or replication
 * degrades, every remembered region is marked out of sync: those are
 * exactly the writes the remote may have lost.
 *
 * The state (struct colo_primary) is found through the local device and
 * kept across table reloads, so a reload with a new remote keeps the log.
 *
 * Context: map runs in the submitter's context and never waits. All
 * dispatching happens in the worker (process context, no bio list, so it
 * may wait for memory). The remote bios are submitted by a second work
 * item, in dispatch order: submitting to NBD sleeps while its tags or its
 * socket buffer are full, and a stalled secondary must hold back only the
 * forwards (up to max_inflight_kb), not the local writes. For the same
 * reason the two paths have a workqueue and a bioset each (as dm-raid1 and
 * dm-clone keep theirs apart): under memory pressure a remote path stalled
 * on the network must not hold the rescuer thread or the bio reserve that
 * the local writes need to complete and free memory. Completions run in any
 * context, including hard interrupts: they only take pc->lock and queue the
 * worker.
 *
 * Documentation/admin-guide/device-mapper/dm-colo.rst has the details.
 */

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-dirty-log.h>
#include <linux/dm-kcopyd.h>
#include <linux/interval_tree_generic.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-colo-primary.h"

#define DM_MSG_PREFIX "colo-primary"

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

static const char * const primary_state_names[] = {
	[PRIMARY_IDLE] = "idle",
	[PRIMARY_SYNCING] = "syncing",
	[PRIMARY_REPLICATING] = "replicating",
	[PRIMARY_DEGRADED] = "degraded",
};

enum primary_mode {
	PRIMARY_ASYNC,
	PRIMARY_SYNC,
};

static const char * const primary_mode_names[] = {
	[PRIMARY_ASYNC] = "async",
	[PRIMARY_SYNC] = "sync",
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

static const char * const primary_error_names[] = {
	[PRIMARY_ERR_NONE] = "-",
	[PRIMARY_ERR_REMOTE_IO] = "remote_io",
	[PRIMARY_ERR_REMOTE_FLUSH] = "remote_flush",
	[PRIMARY_ERR_LOCAL_IO] = "local_io",
	[PRIMARY_ERR_COPY] = "copy_failed",
	[PRIMARY_ERR_REMOTE_CHANGED] = "remote_changed",
	[PRIMARY_ERR_NOMEM] = "no_memory",
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

#define IO_START(io)	((io)->start)
#define IO_LAST(io)	((io)->last)
INTERVAL_TREE_DEFINE(struct primary_io, rb, sector_t, subtree_last, IO_START, IO_LAST,
		     static, io_tree)

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

static LIST_HEAD(primary_list);
static DEFINE_MUTEX(primary_list_lock);	/* primary_list, owner */
static struct kmem_cache *primary_io_cache;

static bool forwarding(enum primary_state state)
{
	return state == PRIMARY_SYNCING || state == PRIMARY_REPLICATING;
}

static region_t sector_to_region(struct colo_primary *pc, sector_t sector)
{
	return sector >> pc->region_shift;
}

static sector_t region_to_sector(struct colo_primary *pc, region_t region)
{
	return (sector_t)region << pc->region_shift;
}

static void wake_worker(struct colo_primary *pc)
{
	queue_work(pc->wq, &pc->worker);
}

/*
 * The remote may lack region r: a resync must copy it, and a copy of it
 * waiting for its generation flush no longer counts.
 */
static void region_out_of_sync_locked(struct colo_primary *pc, region_t r)
{
	pc->log->type->set_region_sync(pc->log, r, 0);
	if (test_and_clear_bit(r, pc->copied[0]))
		pc->nr_copied_unflushed--;
	clear_bit(r, pc->copied[1]);
}

/* The remote may lack what io wrote. */
static void mark_out_of_sync_locked(struct colo_primary *pc, struct primary_io *io)
{
	region_t r, end = sector_to_region(pc, io->last);

	for (r = sector_to_region(pc, io->start); r <= end; r++)
		region_out_of_sync_locked(pc, r);
}

/* The remote acknowledged what io wrote: durable after the next generation flush. */
static void mark_acked_locked(struct colo_primary *pc, struct primary_io *io)
{
	region_t r, end = sector_to_region(pc, io->last);

	for (r = sector_to_region(pc, io->start); r <= end; r++)
		set_bit(r, pc->acked[0]);
}

static void set_state_locked(struct colo_primary *pc, enum primary_state state)
{
	if (pc->state == state)
		return;
	pc->state = state;
	pc->event_pending = true;
}

/*
 * Replication cannot go on: serve the local disk alone, log what changes.
 * What the remote acknowledged but did not flush may be lost with it: the
 * worker marks those regions out of sync (unflushed_lost_marks()).
 */
static void degrade_locked(struct colo_primary *pc, enum primary_error error)
{
	pc->error = error;
	if (forwarding(pc->state)) {
		set_state_locked(pc, PRIMARY_DEGRADED);
		pc->unflushed_lost = true;
	}
}

/* Completion of an io on every device: any context. */
static void io_finish(struct primary_io *io)
{
	struct colo_primary *pc = io->pc;
	bool remote_failed = io->remote_status != BLK_STS_OK;
	unsigned long flags;

	spin_lock_irqsave(&pc->lock, flags);
	if (io->flags & IO_FORWARDED) {
		pc->nr_forwarding--;
		pc->bytes_inflight -= io->bytes;
		if (remote_failed)
			pc->nr_remote_errors++;
		else
			pc->nr_forwarded++;
	}
	if (io->flags & IO_IN_TREE) {
		/* Marked before the entry leaves the tree: a later copy sees it. */
		if (remote_failed || io->local_status ||
		    ((io->flags & IO_FORWARDED) && !forwarding(pc->state)))
			mark_out_of_sync_locked(pc, io);
		else if (io->flags & IO_FORWARDED)
			mark_acked_locked(pc, io);
		io_tree_remove(io, &pc->tree);
	}
	if (remote_failed && (io->flags & IO_FLUSH))
		degrade_locked(pc, PRIMARY_ERR_REMOTE_FLUSH);
	else if (remote_failed)
		degrade_locked(pc, PRIMARY_ERR_REMOTE_IO);
	else if (io->local_status && (io->flags & IO_FORWARDED))
		degrade_locked(pc, PRIMARY_ERR_LOCAL_IO);
	list_del(&io->list);
	if (!list_empty(&pc->waiting) || !bio_list_empty(&pc->deferred) ||
	    pc->event_pending || pc->resync_retry || pc->unflushed_lost)
		wake_worker(pc);
	/* Under the lock: once pc->ios is empty, a remove may free pc. */
	wake_up_all(&pc->wait);
	mempool_free(io, &pc->io_pool);
	spin_unlock_irqrestore(&pc->lock, flags);
}

static void io_leg_done(struct primary_io *io)
{
	if (!atomic_dec_and_test(&io->legs))
		return;
	if (!(io->flags & IO_ENDED_EARLY)) {
		io->bio->bi_status = io->local_status;
		bio_endio(io->bio);
	}
	io_finish(io);
}

static void local_endio(struct bio *clone)
{
	struct primary_io *io = clone->bi_private;

	io->local_status = clone->bi_status;
	bio_put(clone);
	if (io->flags & IO_ENDED_EARLY) {
		io->bio->bi_status = io->local_status;
		bio_endio(io->bio);
	}
	io_leg_done(io);
}

static void remote_endio(struct bio *clone)
{
	struct primary_io *io = clone->bi_private;
	struct bvec_iter_all iter_all;
	struct bio_vec *bv;

	io->remote_status = clone->bi_status;
	/* Not bio_has_data(): blk-mq advanced bi_iter to the end. */
	if (io->flags & IO_PRIVATE_COPY) {
		bio_for_each_segment_all(bv, clone, iter_all)
			__free_page(bv->bv_page);
	}
	bio_put(clone);
	io_leg_done(io);
}

/*
 * The remote write of an async write carries a copy of the data: the
 * caller may reuse its pages as soon as its bio completed.
 */
static struct bio *copy_write(struct colo_primary *pc, struct bio *src, blk_opf_t opf)
{
	unsigned int left = src->bi_iter.bi_size;
	struct bio *bio;

	bio = bio_alloc_bioset(pc->remote, DIV_ROUND_UP(left, PAGE_SIZE), opf, GFP_NOIO,
			       &pc->remote_bs);
	bio->bi_iter.bi_sector = src->bi_iter.bi_sector;
	while (left) {
		unsigned int len = min_t(unsigned int, left, PAGE_SIZE);
		/* Under memory pressure degrade rather than stall every write. */
		struct page *page = alloc_page(GFP_NOIO | __GFP_NORETRY | __GFP_NOWARN);

		if (!page) {
			struct bvec_iter_all iter_all;
			struct bio_vec *bv;

			bio_for_each_segment_all(bv, bio, iter_all)
				__free_page(bv->bv_page);
			bio_put(bio);
			return NULL;
		}
		__bio_add_page(bio, page, len, 0);
		left -= len;
	}
	bio_copy_data(bio, src);
	return bio;
}

static struct bio *remote_bio(struct colo_primary *pc, struct primary_io *io)
{
	struct bio *src = io->bio, *bio;
	blk_opf_t opf = src->bi_opf;

	if (io->flags & IO_ENDED_EARLY) {
		/* async: checkpoint provides the remote flush */
		opf &= ~(REQ_PREFLUSH | REQ_FUA);
		if (bio_has_data(src)) {
			io->flags |= IO_PRIVATE_COPY;
			return copy_write(pc, src, opf);
		}
		/*
		 * A discard or write-zeroes: a bio of its own, not a clone,
		 * which would point into the caller's bio after it ended.
		 */
		bio = bio_alloc_bioset(pc->remote, 0, opf, GFP_NOIO, &pc->remote_bs);
		bio->bi_iter.bi_sector = src->bi_iter.bi_sector;
		bio->bi_iter.bi_size = src->bi_iter.bi_size;
		return bio;
	}
	bio = bio_alloc_clone(pc->remote, src, GFP_NOIO, &pc->remote_bs);
	bio->bi_opf = opf;
	return bio;
}

/* Submit the remote bios in the order they were dispatched; may sleep. */
static void remote_worker(struct work_struct *work)
{
	struct colo_primary *pc = container_of(work, struct colo_primary, remote_worker);
	struct bio_list bios;
	struct blk_plug plug;
	struct bio *bio;

	spin_lock_irq(&pc->lock);
	bios = pc->remote_bios;
	bio_list_init(&pc->remote_bios);
	spin_unlock_irq(&pc->lock);

	blk_start_plug(&plug);
	while ((bio = bio_list_pop(&bios)))
		submit_bio_noacct(bio);
	blk_finish_plug(&plug);
}

/*
 * Worker: send io to the local disk, and queue it for the remote
 * (remote_worker) if IO_FORWARDED.
 */
static void dispatch_write(struct colo_primary *pc, struct primary_io *io)
{
	struct bio *local, *remote = NULL;

	if (io->flags & IO_FORWARDED) {
		remote = remote_bio(pc, io);
		if (!remote) {
			spin_lock_irq(&pc->lock);
			io->flags &= ~(IO_FORWARDED | IO_PRIVATE_COPY);
			pc->nr_forwarding--;
			pc->bytes_inflight -= io->bytes;
			mark_out_of_sync_locked(pc, io);
			degrade_locked(pc, PRIMARY_ERR_NOMEM);
			spin_unlock_irq(&pc->lock);
		}
	}
	atomic_set(&io->legs, remote ? 2 : 1);
	local = bio_alloc_clone(pc->local, io->bio, GFP_NOIO, &pc->local_bs);
	local->bi_end_io = local_endio;
	local->bi_private = io;
	submit_bio_noacct(local);
	if (remote) {
		remote->bi_end_io = remote_endio;
		remote->bi_private = io;
		spin_lock_irq(&pc->lock);
		bio_list_add(&pc->remote_bios, remote);
		spin_unlock_irq(&pc->lock);
		queue_work(pc->remote_wq, &pc->remote_worker);
	}
}

static void copy_done(int read_err, unsigned long write_err, void *context)
{
	struct primary_io *io = context;
	struct colo_primary *pc = io->pc;
	unsigned long flags;

	spin_lock_irqsave(&pc->lock, flags);
	pc->nr_copies--;
	if (!read_err && !write_err && pc->state == PRIMARY_SYNCING) {
		/*
		 * In sync once a generation flush issued from now on has
		 * succeeded; "recovering" in the log until then, so that the
		 * resync does not pick it again.
		 */
		if (!test_and_set_bit(io->region, pc->copied[0]))
			pc->nr_copied_unflushed++;
		pc->nr_copied++;
	} else {
		/* Failed, or syncing ended under it: copied again by a resync. */
		region_out_of_sync_locked(pc, io->region);
		if (write_err)
			pc->nr_remote_errors++;
		if (read_err || write_err)
			degrade_locked(pc, PRIMARY_ERR_COPY);
	}
	io_tree_remove(io, &pc->tree);
	list_del(&io->list);
	wake_worker(pc);
	wake_up_all(&pc->wait);
	mempool_free(io, &pc->io_pool);
	spin_unlock_irqrestore(&pc->lock, flags);
}

/* Worker: copy a region to the remote, unless syncing ended meanwhile. */
static void dispatch_copy(struct colo_primary *pc, struct primary_io *io)
{
	struct dm_io_region from = {
		.bdev = pc->local,
		.sector = io->start,
		.count = io->last - io->start + 1,
	};
	struct dm_io_region to = from;

	spin_lock_irq(&pc->lock);
	if (pc->state != PRIMARY_SYNCING || pc->suspended) {
		pc->log->type->set_region_sync(pc->log, io->region, 0);
		pc->nr_copies--;
		io_tree_remove(io, &pc->tree);
		list_del(&io->list);
		/* Writes behind the copy were passed over: look again. */
		wake_worker(pc);
		wake_up_all(&pc->wait);
		mempool_free(io, &pc->io_pool);
		spin_unlock_irq(&pc->lock);
		return;
	}
	to.bdev = pc->remote;
	spin_unlock_irq(&pc->lock);
	dm_kcopyd_copy(pc->kc, &from, 1, &to, 0, copy_done, io);
}

/*
 * A discard the remote cannot take stays local: what a discarded range
 * reads afterwards is unspecified on each disk (dm-colo.rst), so the
 * remote's old bytes are as valid as the local's zeros, and the region
 * needs no resync. Forwarding it would fail and degrade the pair.
 */
static bool discard_stays_local(struct colo_primary *pc, struct primary_io *io)
{
	return bio_op(io->bio) == REQ_OP_DISCARD && !bdev_max_discard_sectors(pc->remote);
}

static bool overlaps_earlier_locked(struct colo_primary *pc, struct primary_io *io)
{
	struct primary_io *other;

	for (other = io_tree_iter_first(&pc->tree, io->start, io->last); other;
	     other = io_tree_iter_next(other, io->start, io->last))
		if (other->seq < io->seq)
			return true;
	return false;
}

/*
 * Worker: dispatch the waiting ios that no earlier io overlaps, in arrival
 * order. Forwarded writes stop at the first one that max_inflight does not
 * admit, so large writes are not starved by small ones.
 */
static void dispatch_waiting(struct colo_primary *pc)
{
	struct primary_io *io, *tmp;
	LIST_HEAD(ready);

	spin_lock_irq(&pc->lock);
	list_for_each_entry_safe(io, tmp, &pc->waiting, waiting) {
		if (overlaps_earlier_locked(pc, io))
			continue;
		if (!(io->flags & IO_COPY) && !discard_stays_local(pc, io)) {
			if (forwarding(pc->state)) {
				if (pc->bytes_inflight &&
				    pc->bytes_inflight + io->bytes > pc->max_inflight)
					break;
				io->flags |= IO_FORWARDED;
				pc->nr_forwarding++;
				pc->bytes_inflight += io->bytes;
				pc->peak_inflight = max(pc->peak_inflight, pc->bytes_inflight);
			} else {
				mark_out_of_sync_locked(pc, io);
			}
			if (pc->mode == PRIMARY_ASYNC || !(io->flags & IO_FORWARDED))
				io->flags |= IO_ENDED_EARLY;
		}
		list_move_tail(&io->waiting, &ready);
	}
	spin_unlock_irq(&pc->lock);

	list_for_each_entry_safe(io, tmp, &ready, waiting) {
		list_del_init(&io->waiting);
		if (io->flags & IO_COPY)
			dispatch_copy(pc, io);
		else
			dispatch_write(pc, io);
	}
}

static struct primary_io *io_alloc(struct colo_primary *pc)
{
	struct primary_io *io;
	bool idle;

	/*
	 * Waiting for a free io is safe only if one is in flight: ios that
	 * wait for this worker to dispatch them would never come back.
	 */
	spin_lock_irq(&pc->lock);
	idle = list_empty(&pc->ios);
	spin_unlock_irq(&pc->lock);
	io = mempool_alloc(&pc->io_pool, idle ? GFP_NOIO : GFP_NOWAIT);
	if (io)
		memset(io, 0, sizeof(*io));
	return io;
}

/* Worker: sync-mode empty flush, to both devices, outside the tree. */
static void dispatch_flush(struct colo_primary *pc, struct primary_io *io)
{
	spin_lock_irq(&pc->lock);
	io->seq = pc->next_seq++;
	list_add_tail(&io->list, &pc->ios);
	if (forwarding(pc->state)) {
		io->flags |= IO_FORWARDED;
		pc->nr_forwarding++;
	} else {
		io->flags |= IO_ENDED_EARLY;
	}
	spin_unlock_irq(&pc->lock);
	dispatch_write(pc, io);
}

/* Worker: give each new bio its io, in arrival order. */
static void process_deferred(struct colo_primary *pc)
{
	struct primary_io *io;
	struct bio *bio;

	for (;;) {
		spin_lock_irq(&pc->lock);
		bio = bio_list_pop(&pc->deferred);
		spin_unlock_irq(&pc->lock);
		if (!bio)
			return;
		io = io_alloc(pc);
		if (!io) {
			bool idle;

			/* Retried when an io in flight finishes, if one still is. */
			spin_lock_irq(&pc->lock);
			bio_list_add_head(&pc->deferred, bio);
			idle = list_empty(&pc->ios);
			spin_unlock_irq(&pc->lock);
			if (idle)
				continue;
			return;
		}
		io->pc = pc;
		io->bio = bio;
		INIT_LIST_HEAD(&io->waiting);
		if (!bio_sectors(bio)) {
			io->flags |= IO_FLUSH;
			dispatch_flush(pc, io);
			continue;
		}
		io->start = bio->bi_iter.bi_sector;
		io->last = bio_end_sector(bio) - 1;
		if (bio_has_data(bio))
			io->bytes = bio->bi_iter.bi_size;
		spin_lock_irq(&pc->lock);
		io->seq = pc->next_seq++;
		io->flags |= IO_IN_TREE;
		io_tree_insert(io, &pc->tree);
		list_add_tail(&io->list, &pc->ios);
		list_add_tail(&io->waiting, &pc->waiting);
		spin_unlock_irq(&pc->lock);
	}
}

/*
 * Generation flushes: a remote flush that makes the regions acknowledged
 * before it durable (see the top of this file). One at a time; the worker
 * applies its result (gen_flush_apply).
 */
static void gen_flush_endio(struct bio *bio)
{
	struct colo_primary *pc = bio->bi_private;
	unsigned long flags;

	spin_lock_irqsave(&pc->lock, flags);
	pc->gen_status = bio->bi_status;
	pc->gen_ended = true;
	spin_unlock_irqrestore(&pc->lock, flags);
	bio_put(bio);
	wake_worker(pc);
}

/*
 * Issue a generation flush unless one is in flight or replication is not
 * forwarding. Returns the generation it makes durable, 0 for none.
 * Context: process, may sleep (the bio allocation).
 */
static u64 gen_flush_start(struct colo_primary *pc)
{
	struct block_device *remote = READ_ONCE(pc->remote);
	struct bio *bio;
	u64 gen;

	bio = bio_alloc_bioset(remote, 0, REQ_OP_WRITE | REQ_PREFLUSH, GFP_NOIO, &pc->remote_bs);
	spin_lock_irq(&pc->lock);
	/* pc->remote changes only in resume, which degrades if it forwarded. */
	if (pc->gen_flushing || !forwarding(pc->state) || pc->remote != remote) {
		spin_unlock_irq(&pc->lock);
		bio_put(bio);
		return 0;
	}
	pc->gen_flushing = true;
	swap(pc->acked[0], pc->acked[1]);
	swap(pc->copied[0], pc->copied[1]);
	pc->nr_copied_unflushed = 0;
	gen = ++pc->gen_started;
	bio->bi_end_io = gen_flush_endio;
	bio->bi_private = pc;
	/* Through remote_worker: submitting to NBD may sleep. */
	bio_list_add(&pc->remote_bios, bio);
	spin_unlock_irq(&pc->lock);
	queue_work(pc->remote_wq, &pc->remote_worker);
	return gen;
}

/*
 * The regions the remote may have lost (acknowledged, never flushed), out
 * of sync, in batches under the lock. Context: process.
 */
static void mark_unflushed_out_of_sync(struct colo_primary *pc)
{
	unsigned long r, end, b;
	unsigned int i;

	for (r = 0; r < pc->nr_regions; r = end) {
		end = min_t(unsigned long, r + PRIMARY_MARK_BATCH, pc->nr_regions);
		spin_lock_irq(&pc->lock);
		for (i = 0; i < 2; i++) {
			b = r;
			for_each_set_bit_from(b, pc->acked[i], end) {
				pc->log->type->set_region_sync(pc->log, b, 0);
				clear_bit(b, pc->acked[i]);
			}
			b = r;
			for_each_set_bit_from(b, pc->copied[i], end) {
				pc->log->type->set_region_sync(pc->log, b, 0);
				clear_bit(b, pc->copied[i]);
			}
		}
		spin_unlock_irq(&pc->lock);
		cond_resched();
	}
	spin_lock_irq(&pc->lock);
	pc->nr_copied_unflushed = 0;
	spin_unlock_irq(&pc->lock);
}

/*
 * Worker: the generation flush has completed. On success its copied
 * regions are in sync and its acknowledged ones durable; on failure the
 * remote may have lost any of them: degraded, and out of sync.
 */
static void gen_flush_apply(struct colo_primary *pc)
{
	unsigned long r, end, b;
	bool ok;

	spin_lock_irq(&pc->lock);
	if (!pc->gen_ended) {
		spin_unlock_irq(&pc->lock);
		return;
	}
	ok = pc->gen_status == BLK_STS_OK;
	if (!ok) {
		pc->gen_failed = pc->gen_started;
		pc->nr_remote_errors++;
		degrade_locked(pc, PRIMARY_ERR_REMOTE_FLUSH);
	}
	spin_unlock_irq(&pc->lock);

	for (r = 0; ok && r < pc->nr_regions; r = end) {
		end = min_t(unsigned long, r + PRIMARY_MARK_BATCH, pc->nr_regions);
		spin_lock_irq(&pc->lock);
		b = r;
		for_each_set_bit_from(b, pc->acked[1], end)
			clear_bit(b, pc->acked[1]);
		b = r;
		for_each_set_bit_from(b, pc->copied[1], end) {
			pc->log->type->set_region_sync(pc->log, b, 1);
			clear_bit(b, pc->copied[1]);
		}
		spin_unlock_irq(&pc->lock);
		cond_resched();
	}
	/* On failure degrade_locked() had the lost regions marked. */
	if (!ok)
		mark_unflushed_out_of_sync(pc);

	spin_lock_irq(&pc->lock);
	pc->gen_ended = false;
	pc->gen_flushing = false;
	pc->gen_done = pc->gen_started;
	if (!ok)
		pc->unflushed_lost = false;
	wake_up_all(&pc->wait);
	spin_unlock_irq(&pc->lock);
}

static bool gen_busy(struct colo_primary *pc)
{
	bool busy;

	spin_lock_irq(&pc->lock);
	busy = pc->gen_flushing;
	spin_unlock_irq(&pc->lock);
	return busy;
}

static bool gen_applied(struct colo_primary *pc, u64 gen)
{
	bool applied;

	spin_lock_irq(&pc->lock);
	applied = pc->gen_done >= gen;
	spin_unlock_irq(&pc->lock);
	return applied;
}

/* Worker: start copies of out-of-sync regions; end syncing when none is. */
static void do_resync(struct colo_primary *pc)
{
	struct dm_dirty_log *log = pc->log;
	struct primary_io *io;
	region_t region;
	int found;

	for (;;) {
		spin_lock_irq(&pc->lock);
		pc->resync_retry = false;
		if (pc->state != PRIMARY_SYNCING || pc->suspended) {
			spin_unlock_irq(&pc->lock);
			return;
		}
		if (pc->nr_copies >= PRIMARY_MAX_COPIES) {
			spin_unlock_irq(&pc->lock);
			return;
		}
		/* Copies wait in copied[0] for a flush to be in sync. */
		if (pc->nr_copied_unflushed >= PRIMARY_FLUSH_BATCH && !pc->gen_flushing) {
			spin_unlock_irq(&pc->lock);
			gen_flush_start(pc);
			continue;
		}
		found = log->type->get_resync_work(log, &region);
		if (!found && !pc->nr_copies) {
			if (log->type->get_sync_count(log) == pc->nr_regions) {
				set_state_locked(pc, PRIMARY_REPLICATING);
				spin_unlock_irq(&pc->lock);
				return;
			}
			/* The last copies: in sync when their flush succeeds. */
			if (pc->gen_flushing) {
				spin_unlock_irq(&pc->lock);
				return;
			}
			if (pc->nr_copied_unflushed) {
				spin_unlock_irq(&pc->lock);
				gen_flush_start(pc);
				return;
			}
			/* A copy failed or was cancelled behind the search. */
			if (!pc->search_reset) {
				pc->search_reset = true;
				log->type->resume(log);
				spin_unlock_irq(&pc->lock);
				continue;
			}
		}
		spin_unlock_irq(&pc->lock);
		if (!found)
			return;

		io = io_alloc(pc);
		if (!io) {
			bool idle;

			/* Tried again when an io in flight finishes, if one still is. */
			spin_lock_irq(&pc->lock);
			log->type->set_region_sync(log, region, 0);
			pc->search_reset = false;
			pc->resync_retry = true;
			idle = list_empty(&pc->ios);
			spin_unlock_irq(&pc->lock);
			if (idle)
				continue;
			return;
		}
		io->pc = pc;
		io->flags = IO_COPY | IO_IN_TREE;
		io->region = region;
		io->start = region_to_sector(pc, region);
		io->last = min_t(sector_t, io->start + BIT_ULL(pc->region_shift), pc->len) - 1;
		spin_lock_irq(&pc->lock);
		pc->search_reset = false;
		pc->nr_copies++;
		io->seq = pc->next_seq++;
		io_tree_insert(io, &pc->tree);
		list_add_tail(&io->list, &pc->ios);
		list_add_tail(&io->waiting, &pc->waiting);
		spin_unlock_irq(&pc->lock);
		dispatch_waiting(pc);
	}
}

/*
 * Process context: every region out of sync, a batch at a time (a new
 * secondary disk: start full, resync full).
 */
static void mark_all_out_of_sync(struct colo_primary *pc)
{
	region_t r = 0, end;

	while (r < pc->nr_regions) {
		end = min_t(region_t, r + PRIMARY_MARK_BATCH, pc->nr_regions);
		spin_lock_irq(&pc->lock);
		for (; r < end; r++)
			region_out_of_sync_locked(pc, r);
		spin_unlock_irq(&pc->lock);
		cond_resched();
	}
}

static void raise_event(struct colo_primary *pc)
{
	struct dm_target *ti;

	spin_lock_irq(&pc->lock);
	ti = pc->event_pending ? pc->ti : NULL;
	if (ti)
		pc->event_pending = false;
	spin_unlock_irq(&pc->lock);
	if (ti)
		dm_table_event(ti->table);
}

static void primary_worker(struct work_struct *work)
{
	struct colo_primary *pc = container_of(work, struct colo_primary, worker);

	bool lost;

	gen_flush_apply(pc);
	spin_lock_irq(&pc->lock);
	lost = pc->unflushed_lost;
	pc->unflushed_lost = false;
	spin_unlock_irq(&pc->lock);
	/* Before any resync can look at the log. */
	if (lost)
		mark_unflushed_out_of_sync(pc);
	process_deferred(pc);
	dispatch_waiting(pc);
	do_resync(pc);
	raise_event(pc);
}

/* Registry of colo_primary by local device, under primary_list_lock. */
static struct colo_primary *primary_lookup(dev_t local)
{
	struct colo_primary *pc;

	list_for_each_entry(pc, &primary_list, list)
		if (pc->local->bd_dev == local)
			return pc;
	return NULL;
}

static struct colo_primary *primary_create(struct dm_target *ti, struct primary_target *pt)
{
	char region_arg[16];
	char *log_argv[2] = { region_arg, pt->nosync ? "nosync" : "sync" };
	struct colo_primary *pc;
	int r = -ENOMEM, i;

	pc = kzalloc(sizeof(*pc), GFP_KERNEL);
	if (!pc)
		return ERR_PTR(-ENOMEM);
	refcount_set(&pc->ref, 1);
	pc->owner = dm_table_get_md(ti->table);
	pc->local = pt->local->bdev;
	pc->remote = pt->remote->bdev;
	pc->remote_dev = pt->remote->bdev->bd_dev;
	pc->mode = pt->mode;
	pc->max_inflight = (u64)pt->max_inflight_kb << 10;
	pc->len = ti->len;
	pc->region_shift = ilog2(pt->region_sectors);
	pc->nr_regions = dm_sector_div_up(ti->len, pt->region_sectors);
	spin_lock_init(&pc->lock);
	pc->state = PRIMARY_IDLE;
	pc->suspended = true;
	pc->tree = RB_ROOT_CACHED;
	INIT_LIST_HEAD(&pc->ios);
	INIT_LIST_HEAD(&pc->waiting);
	bio_list_init(&pc->deferred);
	bio_list_init(&pc->remote_bios);
	init_waitqueue_head(&pc->wait);
	mutex_init(&pc->msg_lock);
	INIT_WORK(&pc->worker, primary_worker);
	INIT_WORK(&pc->remote_worker, remote_worker);

	if (mempool_init_slab_pool(&pc->io_pool, PRIMARY_MIN_IOS, primary_io_cache))
		goto bad_pool;
	if (bioset_init(&pc->local_bs, PRIMARY_MIN_IOS, 0, 0))
		goto bad_local_bs;
	if (bioset_init(&pc->remote_bs, PRIMARY_MIN_IOS, 0, BIOSET_NEED_BVECS))
		goto bad_remote_bs;
	for (i = 0; i < 2; i++) {
		pc->acked[i] = bitmap_zalloc(pc->nr_regions, GFP_KERNEL);
		pc->copied[i] = bitmap_zalloc(pc->nr_regions, GFP_KERNEL);
		if (!pc->acked[i] || !pc->copied[i])
			goto bad_bitmaps;
	}
	pc->wq = alloc_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM, 0);
	if (!pc->wq)
		goto bad_bitmaps;
	pc->remote_wq = alloc_workqueue("dm-" DM_MSG_PREFIX "-remote", WQ_MEM_RECLAIM, 0);
	if (!pc->remote_wq)
		goto bad_remote_wq;
	pc->kc = dm_kcopyd_client_create(NULL);
	if (IS_ERR(pc->kc)) {
		r = PTR_ERR(pc->kc);
		goto bad_kc;
	}
	snprintf(region_arg, sizeof(region_arg), "%u", pt->region_sectors);
	pc->log = dm_dirty_log_create("core", ti, NULL, ARRAY_SIZE(log_argv), log_argv);
	if (!pc->log) {
		r = -EINVAL;
		goto bad_log;
	}
	return pc;

bad_log:
	dm_kcopyd_client_destroy(pc->kc);
bad_kc:
	destroy_workqueue(pc->remote_wq);
bad_remote_wq:
	destroy_workqueue(pc->wq);
bad_bitmaps:
	for (i = 0; i < 2; i++) {
		bitmap_free(pc->acked[i]);
		bitmap_free(pc->copied[i]);
	}
	bioset_exit(&pc->remote_bs);
bad_remote_bs:
	bioset_exit(&pc->local_bs);
bad_local_bs:
	mempool_exit(&pc->io_pool);
bad_pool:
	kfree(pc);
	return ERR_PTR(r);
}

static void primary_put(struct colo_primary *pc)
{
	int i;

	mutex_lock(&primary_list_lock);
	if (!refcount_dec_and_test(&pc->ref)) {
		mutex_unlock(&primary_list_lock);
		return;
	}
	list_del(&pc->list);
	mutex_unlock(&primary_list_lock);

	/*
	 * A checkpoint sent while suspended, and killed, may have left its
	 * generation flush in flight: its completion needs pc and the worker.
	 */
	wait_event(pc->wait, !gen_busy(pc));
	/* Suspend waited for every io; a never-resumed table had none. */
	WARN_ON_ONCE(!list_empty(&pc->ios) || !bio_list_empty(&pc->deferred) || pc->gen_flushing);
	destroy_workqueue(pc->remote_wq);
	destroy_workqueue(pc->wq);
	dm_kcopyd_client_destroy(pc->kc);
	dm_dirty_log_destroy(pc->log);
	for (i = 0; i < 2; i++) {
		bitmap_free(pc->acked[i]);
		bitmap_free(pc->copied[i]);
	}
	bioset_exit(&pc->remote_bs);
	bioset_exit(&pc->local_bs);
	mempool_exit(&pc->io_pool);
	kfree(pc);
}

/* Constructor */
static int parse_uint_opt(struct dm_target *ti, struct dm_arg_set *as, const char *name,
			  unsigned int min, unsigned int max, unsigned int *value)
{
	const char *arg = dm_shift_arg(as);

	if (!arg) {
		ti->error = "An option is missing its value";
		DMERR("%s needs a value", name);
		return -EINVAL;
	}
	if (kstrtouint(arg, 10, value) || *value < min || *value > max) {
		ti->error = "Option value out of range";
		DMERR("%s %s: not a number from %u to %u", name, arg, min, max);
		return -EINVAL;
	}
	return 0;
}

static unsigned int opt_of(const char *name)
{
	static const char * const names[] = {
		"mode", "max_inflight_kb", "region_sectors", "nosync",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(name, names[i]))
			return BIT(i);
	return 0;
}

static int parse_opt_args(struct dm_target *ti, struct primary_target *pt, struct dm_arg_set *as)
{
	static const struct dm_arg _args[] = {
		{0, 7, "Invalid number of optional arguments"},
	};
	unsigned int argc, opt;
	const char *name;
	int r;

	pt->mode = PRIMARY_ASYNC;
	pt->max_inflight_kb = PRIMARY_DEFAULT_INFLIGHT_KB;
	pt->region_sectors = PRIMARY_DEFAULT_REGION;
	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;
	pt->nr_opt_args = argc;
	while (argc) {
		name = dm_shift_arg(as);
		argc--;
		opt = opt_of(name);
		if (!opt) {
			ti->error = "Unknown optional argument";
			DMERR("unknown optional argument '%s'", name);
			return -EINVAL;
		}
		if (pt->opts & opt) {
			ti->error = "Optional argument given twice";
			DMERR("'%s' given twice", name);
			return -EINVAL;
		}
		pt->opts |= opt;
		if (opt == OPT_NOSYNC) {
			pt->nosync = true;
			continue;
		}
		if (!argc) {
			ti->error = "An option is missing its value";
			DMERR("%s needs a value", name);
			return -EINVAL;
		}
		argc--;
		if (opt == OPT_MODE) {
			name = dm_shift_arg(as);
			if (!strcasecmp(name, "async")) {
				pt->mode = PRIMARY_ASYNC;
			} else if (!strcasecmp(name, "sync")) {
				pt->mode = PRIMARY_SYNC;
			} else {
				ti->error = "mode must be async or sync";
				DMERR("mode %s: not async or sync", name);
				return -EINVAL;
			}
		} else if (opt == OPT_INFLIGHT) {
			r = parse_uint_opt(ti, as, "max_inflight_kb", PRIMARY_MIN_INFLIGHT_KB,
					   PRIMARY_MAX_INFLIGHT_KB, &pt->max_inflight_kb);
		} else {
			r = parse_uint_opt(ti, as, "region_sectors", PRIMARY_MIN_REGION,
					   PRIMARY_MAX_REGION, &pt->region_sectors);
			if (!r && !is_power_of_2(pt->region_sectors)) {
				ti->error = "region_sectors must be a power of two";
				DMERR("region_sectors %u: not a power of two", pt->region_sectors);
				r = -EINVAL;
			}
		}
		if (r)
			return r;
	}
	return 0;
}

static int check_devices(struct dm_target *ti, struct primary_target *pt)
{
	struct block_device *local = pt->local->bdev, *remote = pt->remote->bdev;
	unsigned int lbs;

	if (local == remote) {
		ti->error = "local_dev and remote_dev are the same device";
		return -EINVAL;
	}
	if (ti->len > bdev_nr_sectors(local)) {
		ti->error = "Target is larger than local_dev";
		return -EINVAL;
	}
	if (ti->len > bdev_nr_sectors(remote)) {
		ti->error = "Target is larger than remote_dev (is the NBD client connected?)";
		return -EINVAL;
	}
	if (pt->region_sectors > ti->len) {
		ti->error = "region_sectors is larger than the target";
		return -EINVAL;
	}
	if (dm_sector_div_up(ti->len, pt->region_sectors) > UINT_MAX) {
		ti->error = "More than 2^32 regions: use larger region_sectors";
		return -EINVAL;
	}
	lbs = max(bdev_logical_block_size(local), bdev_logical_block_size(remote));
	if ((pt->region_sectors << SECTOR_SHIFT) % lbs) {
		ti->error = "region_sectors is not a multiple of the devices' logical block size";
		return -EINVAL;
	}
	return 0;
}

/* Find the state of a reloaded device, or create it; under primary_list_lock. */
static int primary_attach(struct dm_target *ti, struct primary_target *pt)
{
	struct colo_primary *pc;

	pc = primary_lookup(pt->local->bdev->bd_dev);
	if (pc) {
		if (pc->owner != dm_table_get_md(ti->table)) {
			ti->error = "local_dev already has a colo-primary device";
			return -EBUSY;
		}
		if (pc->len != ti->len || pc->region_shift != ilog2(pt->region_sectors)) {
			ti->error = "A reload cannot change the length or region_sectors";
			return -EINVAL;
		}
		refcount_inc(&pc->ref);
	} else {
		pc = primary_create(ti, pt);
		if (IS_ERR(pc)) {
			ti->error = "Cannot allocate the replication state";
			return PTR_ERR(pc);
		}
		list_add(&pc->list, &primary_list);
	}
	pt->pc = pc;
	return 0;
}

static int primary_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct primary_target *pt;
	int r;

	if (argc < 2) {
		ti->error = "Usage: <local_dev> <remote_dev> [<#opt_args> <opt_args>...]";
		return -EINVAL;
	}
	pt = kzalloc(sizeof(*pt), GFP_KERNEL);
	if (!pt) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &pt->local);
	if (r) {
		ti->error = "Cannot open local_dev";
		goto bad_local;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &pt->remote);
	if (r) {
		ti->error = "Cannot open remote_dev";
		goto bad_remote;
	}
	r = parse_opt_args(ti, pt, &as);
	if (r)
		goto bad;
	if (as.argc) {
		ti->error = "Too many arguments";
		r = -EINVAL;
		goto bad;
	}
	r = check_devices(ti, pt);
	if (r)
		goto bad;
	/* Then a flush is a no-op: measured with nbd-server "flush = false". */
	if (!bdev_write_cache(pt->remote->bdev))
		DMWARN("%pg has no write cache: the NBD server must write through",
		       pt->remote->bdev);
	r = dm_set_target_max_io_len(ti, min_t(unsigned int, pt->region_sectors,
					       PRIMARY_MAX_IO_SECTORS));
	if (r) {
		ti->error = "Cannot set max_io_len";
		goto bad;
	}
	mutex_lock(&primary_list_lock);
	r = primary_attach(ti, pt);
	mutex_unlock(&primary_list_lock);
	if (r)
		goto bad;

	ti->private = pt;
	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_write_zeroes_bios = 1;
	/*
	 * The device discards when the local disk does, whatever the remote
	 * can: dm then does not ask every device, the stacked limits are the
	 * local disk's (a remote's 0 does not count), and a discard the remote
	 * cannot take stays local (discard_stays_local).
	 */
	ti->discards_supported = bdev_max_discard_sectors(pt->local->bdev) > 0;
	return 0;

bad:
	dm_put_device(ti, pt->remote);
bad_remote:
	dm_put_device(ti, pt->local);
bad_local:
	kfree(pt);
	return r;
}

static void primary_dtr(struct dm_target *ti)
{
	struct primary_target *pt = ti->private;

	primary_put(pt->pc);
	dm_put_device(ti, pt->remote);
	dm_put_device(ti, pt->local);
	kfree(pt);
}

static int primary_map(struct dm_target *ti, struct bio *bio)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	unsigned long flags;

	bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	if (bio_data_dir(bio) == READ) {
		bio_set_dev(bio, pt->local->bdev);
		return DM_MAPIO_REMAPPED;
	}
	/* dm cuts neither at max_io_len: bound the regions one io marks. */
	if (!bio_has_data(bio) && bio_sectors(bio)) {
		sector_t span = (sector_t)PRIMARY_MAX_IO_REGIONS << pc->region_shift;
		sector_t left = span - (bio->bi_iter.bi_sector & (span - 1));

		if (bio_sectors(bio) > left)
			dm_accept_partial_bio(bio, left);
	}
	/* An empty flush needs the remote only in sync mode. */
	if (!bio_sectors(bio) &&
	    (READ_ONCE(pc->mode) == PRIMARY_ASYNC || !forwarding(READ_ONCE(pc->state)))) {
		bio_set_dev(bio, pt->local->bdev);
		return DM_MAPIO_REMAPPED;
	}
	spin_lock_irqsave(&pc->lock, flags);
	bio_list_add(&pc->deferred, bio);
	spin_unlock_irqrestore(&pc->lock, flags);
	wake_worker(pc);
	return DM_MAPIO_SUBMITTED;
}

/* While suspended no copy starts: waiting ones are cancelled, regions stay dirty. */
static void set_suspended(struct dm_target *ti, bool suspended)
{
	struct colo_primary *pc = ((struct primary_target *)ti->private)->pc;

	spin_lock_irq(&pc->lock);
	pc->suspended = suspended;
	spin_unlock_irq(&pc->lock);
	wake_worker(pc);
}

static void primary_presuspend(struct dm_target *ti)
{
	set_suspended(ti, true);
}

/* The suspend did not happen. */
static void primary_presuspend_undo(struct dm_target *ti)
{
	set_suspended(ti, false);
}

static bool ios_done(struct colo_primary *pc)
{
	bool done;

	spin_lock_irq(&pc->lock);
	done = list_empty(&pc->ios) && bio_list_empty(&pc->deferred) && !pc->gen_flushing;
	spin_unlock_irq(&pc->lock);
	return done;
}

static void primary_postsuspend(struct dm_target *ti)
{
	struct colo_primary *pc = ((struct primary_target *)ti->private)->pc;

	/* Async forwards outlive their bios: wait for them (bounded by -t). */
	wait_event(pc->wait, ios_done(pc));
	spin_lock_irq(&pc->lock);
	pc->ti = NULL;
	spin_unlock_irq(&pc->lock);
	flush_workqueue(pc->wq);
	flush_workqueue(pc->remote_wq);
}

static void primary_resume(struct dm_target *ti)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	struct block_device *remote = pt->remote->bdev;

	mutex_lock(&pc->msg_lock);
	spin_lock_irq(&pc->lock);
	if (pc->remote_dev != remote->bd_dev) {
		if (forwarding(pc->state)) {
			DMWARN("%pg: remote_dev changed to %pg: degraded, resync to replicate",
			       pc->local, remote);
			degrade_locked(pc, PRIMARY_ERR_REMOTE_CHANGED);
		}
		/* What the old remote did not flush, the new one may lack. */
		pc->unflushed_lost = true;
	}
	pc->remote = remote;
	pc->remote_dev = remote->bd_dev;
	pc->mode = pt->mode;
	pc->max_inflight = (u64)pt->max_inflight_kb << 10;
	pc->ti = ti;
	pc->suspended = false;
	spin_unlock_irq(&pc->lock);
	mutex_unlock(&pc->msg_lock);
	wake_worker(pc);
}

static void primary_status(struct dm_target *ti, status_type_t type,
			   unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&pc->lock);
		DMEMIT("%s %s %llu/%llu %llu %llu %llu %llu %llu %llu %s",
		       primary_state_names[pc->state], primary_mode_names[pc->mode],
		       (unsigned long long)pc->log->type->get_sync_count(pc->log),
		       (unsigned long long)pc->nr_regions, pc->nr_copied, pc->nr_forwarded,
		       pc->nr_forwarding, pc->bytes_inflight, pc->peak_inflight,
		       pc->nr_remote_errors, primary_error_names[pc->error]);
		spin_unlock_irq(&pc->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s", pt->local->name, pt->remote->name);
		if (!pt->nr_opt_args)
			break;
		DMEMIT(" %u", pt->nr_opt_args);
		if (pt->opts & OPT_MODE)
			DMEMIT(" mode %s", primary_mode_names[pt->mode]);
		if (pt->opts & OPT_INFLIGHT)
			DMEMIT(" max_inflight_kb %u", pt->max_inflight_kb);
		if (pt->opts & OPT_REGION)
			DMEMIT(" region_sectors %u", pt->region_sectors);
		if (pt->opts & OPT_NOSYNC)
			DMEMIT(" nosync");
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",local_device=%s,remote_device=%s,mode=%s,state=%s;",
		       pt->local->name, pt->remote->name, primary_mode_names[pt->mode],
		       primary_state_names[READ_ONCE(pc->state)]);
		break;
	}
}

static bool checkpoint_reached(struct colo_primary *pc, u64 seq)
{
	struct primary_io *oldest;
	bool reached;

	spin_lock_irq(&pc->lock);
	oldest = list_first_entry_or_null(&pc->ios, struct primary_io, list);
	reached = !oldest || oldest->seq >= seq || pc->state != PRIMARY_REPLICATING;
	spin_unlock_irq(&pc->lock);
	return reached;
}

/*
 * A generation flush, waited for: what the remote acknowledged so far is
 * durable when it returns 0. -EIO when the flush failed (degraded now),
 * -ENOLINK when replication is not forwarding, -EINTR when killed (the
 * flush goes on; the worker applies its result). Context: message.
 */
static int gen_flush_sync(struct colo_primary *pc)
{
	bool failed;
	u64 gen;
	int r;

	/* One at a time: wait for one in flight. */
	for (;;) {
		r = wait_event_killable(pc->wait, !gen_busy(pc));
		if (r)
			return r;
		gen = gen_flush_start(pc);
		if (gen)
			break;
		if (!forwarding(READ_ONCE(pc->state)))
			return -ENOLINK;
	}
	r = wait_event_killable(pc->wait, gen_applied(pc, gen));
	if (r)
		return r;
	spin_lock_irq(&pc->lock);
	failed = pc->gen_failed >= gen;
	spin_unlock_irq(&pc->lock);
	return failed ? -EIO : 0;
}

/*
 * Every write completed before the message is on the remote's disk when it
 * returns 0: acknowledged by the remote, then flushed through it.
 */
static int primary_checkpoint(struct colo_primary *pc)
{
	u64 seq;
	int r;

	spin_lock_irq(&pc->lock);
	seq = pc->next_seq;
	spin_unlock_irq(&pc->lock);
	r = wait_event_killable(pc->wait, checkpoint_reached(pc, seq));
	if (r)
		return r;
	if (READ_ONCE(pc->state) != PRIMARY_REPLICATING) {
		DMERR("%pg: checkpoint: replication failed while waiting", pc->local);
		return -EIO;
	}
	r = gen_flush_sync(pc);
	if (r == -EIO)
		DMERR("%pg: checkpoint: the remote flush failed: unflushed regions out of sync",
		      pc->local);
	else if (r == -ENOLINK)
		DMERR("%pg: checkpoint: replication failed while waiting", pc->local);
	if (r)
		return r == -ENOLINK ? -EIO : r;
	if (READ_ONCE(pc->state) != PRIMARY_REPLICATING) {
		DMERR("%pg: checkpoint: replication failed while flushing", pc->local);
		return -EIO;
	}
	return 0;
}

/* Forward from now on; what is out of sync is copied in the background. */
static void start_sync_locked(struct colo_primary *pc)
{
	set_state_locked(pc, PRIMARY_SYNCING);
	pc->error = PRIMARY_ERR_NONE;
	pc->nr_copied = 0;
	pc->search_reset = false;
	pc->log->type->resume(pc->log);
}

static int primary_message(struct dm_target *ti, unsigned int argc, char **argv,
			   char *result, unsigned int maxlen)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	enum primary_state state;
	bool full = false;
	int r = 0;

	if (argc == 2 && (!strcasecmp(argv[0], "start") || !strcasecmp(argv[0], "resync"))) {
		if (strcasecmp(argv[1], "full")) {
			DMERR("%pg: %s: unknown argument '%s' (only 'full')",
			      pc->local, argv[0], argv[1]);
			return -EINVAL;
		}
		full = true;
	} else if (argc != 1) {
		DMERR("%pg: message '%s': wrong number of arguments", pc->local, argv[0]);
		return -EINVAL;
	}
	mutex_lock(&pc->msg_lock);
	/* Only messages leave idle and degraded: stable under msg_lock. */
	state = READ_ONCE(pc->state);
	/* A new secondary disk: what it lacks is not in the log. */
	if (full && ((state == PRIMARY_IDLE && !strcasecmp(argv[0], "start")) ||
		     (state == PRIMARY_DEGRADED && !strcasecmp(argv[0], "resync"))))
		mark_all_out_of_sync(pc);
	/*
	 * stop: what the remote acknowledged is flushed first, so that a later
	 * start copies only what is written from now on; what the flush does
	 * not cover (it failed, or was killed) is marked below.
	 */
	if (!strcasecmp(argv[0], "stop") && forwarding(state))
		gen_flush_sync(pc);
	spin_lock_irq(&pc->lock);
	state = pc->state;
	if (!strcasecmp(argv[0], "start")) {
		if (state == PRIMARY_IDLE)
			start_sync_locked(pc);
		else
			r = -EBUSY;
	} else if (!strcasecmp(argv[0], "resync")) {
		if (state == PRIMARY_DEGRADED)
			start_sync_locked(pc);
		else
			r = -EBUSY;
	} else if (!strcasecmp(argv[0], "stop")) {
		if (state != PRIMARY_IDLE) {
			if (forwarding(state))
				pc->unflushed_lost = true;
			set_state_locked(pc, PRIMARY_IDLE);
		} else {
			r = -EBUSY;
		}
	} else if (!strcasecmp(argv[0], "checkpoint")) {
		if (state != PRIMARY_REPLICATING)
			r = -EIO;
	} else {
		r = -EINVAL;
	}
	spin_unlock_irq(&pc->lock);

	if (r == -EINVAL)
		DMERR("%pg: unknown message '%s'", pc->local, argv[0]);
	else if (r)
		DMERR("%pg: %s: state is %s%s", pc->local, argv[0], primary_state_names[state],
		      !strcasecmp(argv[0], "resync") ? ", not degraded" :
		      !strcasecmp(argv[0], "start") ? ", not idle" :
		      !strcasecmp(argv[0], "stop") ? ", already stopped" : ", not replicating");
	else if (!strcasecmp(argv[0], "checkpoint"))
		r = primary_checkpoint(pc);
	mutex_unlock(&pc->msg_lock);
	wake_worker(pc);
	return r;
}

static int primary_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				   void *data)
{
	struct primary_target *pt = ti->private;
	int r;

	r = fn(ti, pt->local, 0, ti->len, data);
	if (!r)
		r = fn(ti, pt->remote, 0, ti->len, data);
	return r;
}

static struct target_type colo_primary_target = {
	.name = "colo-primary",
	.version = {1, 0, 2},
	.module = THIS_MODULE,
	.ctr = primary_ctr,
	.dtr = primary_dtr,
	.map = primary_map,
	.presuspend = primary_presuspend,
	.presuspend_undo = primary_presuspend_undo,
	.postsuspend = primary_postsuspend,
	.resume = primary_resume,
	.status = primary_status,
	.message = primary_message,
	.iterate_devices = primary_iterate_devices,
};

int colo_primary_register(void)
{
	int r;

	primary_io_cache = KMEM_CACHE(primary_io, 0);
	if (!primary_io_cache)
		return -ENOMEM;
	r = dm_register_target(&colo_primary_target);
	if (r)
		kmem_cache_destroy(primary_io_cache);
	return r;
}

void colo_primary_unregister(void)
{
	dm_unregister_target(&colo_primary_target);
	kmem_cache_destroy(primary_io_cache);
}
