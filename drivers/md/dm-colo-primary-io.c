// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: colo-primary's write path: ordering, dispatch and forwarding.
 *
 * Writes that overlap are applied one after the other, in arrival order, on
 * both devices: every write and every resync copy is an entry of an interval
 * tree from its arrival until it is done on every device, and an entry is
 * dispatched only when no earlier entry overlaps it. That is also what holds
 * writes off a region while it is being copied.
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
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/interval_tree_generic.h>
#include <linux/slab.h>

#include "dm-colo-primary.h"

#define DM_MSG_PREFIX "colo-primary"

#define IO_START(io)	((io)->start)
#define IO_LAST(io)	((io)->last)
INTERVAL_TREE_DEFINE(struct primary_io, rb, sector_t, subtree_last, IO_START, IO_LAST,
		     static, io_tree)

void colo_primary_kick(struct colo_primary *pc)
{
	queue_work(pc->wq, &pc->worker);
}

/*
 * The remote may lack region r: a resync must copy it, and a copy of it
 * waiting for its generation flush no longer counts.
 */
void colo_primary_region_out_of_sync_locked(struct colo_primary *pc, region_t r)
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
		colo_primary_region_out_of_sync_locked(pc, r);
}

/* The remote acknowledged what io wrote: durable after the next generation flush. */
static void mark_acked_locked(struct colo_primary *pc, struct primary_io *io)
{
	region_t r, end = sector_to_region(pc, io->last);

	for (r = sector_to_region(pc, io->start); r <= end; r++)
		set_bit(r, pc->acked[0]);
}

void colo_primary_set_state_locked(struct colo_primary *pc, enum primary_state state)
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
void colo_primary_degrade_locked(struct colo_primary *pc, enum primary_error error)
{
	pc->error = error;
	if (forwarding(pc->state)) {
		colo_primary_set_state_locked(pc, PRIMARY_DEGRADED);
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
		colo_primary_degrade_locked(pc, PRIMARY_ERR_REMOTE_FLUSH);
	else if (remote_failed)
		colo_primary_degrade_locked(pc, PRIMARY_ERR_REMOTE_IO);
	else if (io->local_status && (io->flags & IO_FORWARDED))
		colo_primary_degrade_locked(pc, PRIMARY_ERR_LOCAL_IO);
	list_del(&io->list);
	if (!list_empty(&pc->waiting) || !bio_list_empty(&pc->deferred) ||
	    pc->event_pending || pc->resync_retry || pc->unflushed_lost)
		colo_primary_kick(pc);
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
void colo_primary_remote_worker(struct work_struct *work)
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
 * (colo_primary_remote_worker) if IO_FORWARDED.
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
			colo_primary_degrade_locked(pc, PRIMARY_ERR_NOMEM);
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
		colo_primary_region_out_of_sync_locked(pc, io->region);
		if (write_err)
			pc->nr_remote_errors++;
		if (read_err || write_err)
			colo_primary_degrade_locked(pc, PRIMARY_ERR_COPY);
	}
	io_tree_remove(io, &pc->tree);
	list_del(&io->list);
	colo_primary_kick(pc);
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
		colo_primary_kick(pc);
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
bool colo_primary_discard_stays_local(struct colo_primary *pc, struct primary_io *io)
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
void colo_primary_dispatch_waiting(struct colo_primary *pc)
{
	struct primary_io *io, *tmp;
	LIST_HEAD(ready);

	spin_lock_irq(&pc->lock);
	list_for_each_entry_safe(io, tmp, &pc->waiting, waiting) {
		if (overlaps_earlier_locked(pc, io))
			continue;
		if (!(io->flags & IO_COPY) && !colo_primary_discard_stays_local(pc, io)) {
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

struct primary_io *colo_primary_io_alloc(struct colo_primary *pc)
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

/*
 * @io arrives: it takes the next sequence number, enters the interval tree
 * and waits for dispatch behind every earlier entry it overlaps.
 */
void colo_primary_admit_locked(struct colo_primary *pc, struct primary_io *io)
{
	io->seq = pc->next_seq++;
	io_tree_insert(io, &pc->tree);
	list_add_tail(&io->list, &pc->ios);
	list_add_tail(&io->waiting, &pc->waiting);
}

/*
 * No memory for an io: the caller has put its work back. True to try again
 * at once, when no io is in flight (none would wake the worker); else the
 * worker runs again when one finishes.
 */
bool colo_primary_retry_now(struct colo_primary *pc)
{
	bool idle;

	spin_lock_irq(&pc->lock);
	idle = list_empty(&pc->ios);
	spin_unlock_irq(&pc->lock);
	return idle;
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
		io = colo_primary_io_alloc(pc);
		if (!io) {
			spin_lock_irq(&pc->lock);
			bio_list_add_head(&pc->deferred, bio);
			spin_unlock_irq(&pc->lock);
			if (colo_primary_retry_now(pc))
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
		io->flags |= IO_IN_TREE;
		colo_primary_admit_locked(pc, io);
		spin_unlock_irq(&pc->lock);
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

void colo_primary_worker(struct work_struct *work)
{
	struct colo_primary *pc = container_of(work, struct colo_primary, worker);

	bool lost;

	colo_primary_gen_flush_apply(pc);
	spin_lock_irq(&pc->lock);
	lost = pc->unflushed_lost;
	pc->unflushed_lost = false;
	spin_unlock_irq(&pc->lock);
	/* Before any resync can look at the log. */
	if (lost)
		colo_primary_mark_unflushed_out_of_sync(pc);
	process_deferred(pc);
	colo_primary_dispatch_waiting(pc);
	colo_primary_do_resync(pc);
	raise_event(pc);
}
