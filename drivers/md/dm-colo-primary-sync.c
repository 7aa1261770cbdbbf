// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: colo-primary's record of what the remote may lack, and resync.
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
 * Context: the worker's (process), except gen_flush_endio (any).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-dirty-log.h>
#include <linux/dm-kcopyd.h>

#include "dm-colo-primary.h"

#define DM_MSG_PREFIX "colo-primary"

/*
 * Generation flushes: a remote flush that makes the regions acknowledged
 * before it durable (see above). One at a time; the worker
 * applies its result (colo_primary_gen_flush_apply).
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
	colo_primary_kick(pc);
}

/*
 * Issue a generation flush unless one is in flight or replication is not
 * forwarding. Returns the generation it makes durable, 0 for none.
 * Context: process, may sleep (the bio allocation).
 */
u64 colo_primary_gen_flush_start(struct colo_primary *pc)
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
	/* Through colo_primary_remote_worker: submitting to NBD may sleep. */
	bio_list_add(&pc->remote_bios, bio);
	spin_unlock_irq(&pc->lock);
	queue_work(pc->remote_wq, &pc->remote_worker);
	return gen;
}

/*
 * The regions the remote may have lost (acknowledged, never flushed), out
 * of sync, in batches under the lock. Context: process.
 */
void colo_primary_mark_unflushed_out_of_sync(struct colo_primary *pc)
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
void colo_primary_gen_flush_apply(struct colo_primary *pc)
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
		colo_primary_degrade_locked(pc, PRIMARY_ERR_REMOTE_FLUSH);
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
	/* On failure colo_primary_degrade_locked() had the lost regions marked. */
	if (!ok)
		colo_primary_mark_unflushed_out_of_sync(pc);

	spin_lock_irq(&pc->lock);
	pc->gen_ended = false;
	pc->gen_flushing = false;
	pc->gen_done = pc->gen_started;
	if (!ok)
		pc->unflushed_lost = false;
	wake_up_all(&pc->wait);
	spin_unlock_irq(&pc->lock);
}

bool colo_primary_gen_busy(struct colo_primary *pc)
{
	bool busy;

	spin_lock_irq(&pc->lock);
	busy = pc->gen_flushing;
	spin_unlock_irq(&pc->lock);
	return busy;
}

bool colo_primary_gen_applied(struct colo_primary *pc, u64 gen)
{
	bool applied;

	spin_lock_irq(&pc->lock);
	applied = pc->gen_done >= gen;
	spin_unlock_irq(&pc->lock);
	return applied;
}

/* Worker: start copies of out-of-sync regions; end syncing when none is. */
void colo_primary_do_resync(struct colo_primary *pc)
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
			colo_primary_gen_flush_start(pc);
			continue;
		}
		found = log->type->get_resync_work(log, &region);
		if (!found && !pc->nr_copies) {
			if (log->type->get_sync_count(log) == pc->nr_regions) {
				colo_primary_set_state_locked(pc, PRIMARY_REPLICATING);
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
				colo_primary_gen_flush_start(pc);
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

		io = colo_primary_io_alloc(pc);
		if (!io) {
			spin_lock_irq(&pc->lock);
			log->type->set_region_sync(log, region, 0);
			pc->search_reset = false;
			pc->resync_retry = true;
			spin_unlock_irq(&pc->lock);
			if (colo_primary_retry_now(pc))
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
		colo_primary_admit_locked(pc, io);
		spin_unlock_irq(&pc->lock);
		colo_primary_dispatch_waiting(pc);
	}
}

/*
 * Process context: every region out of sync, a batch at a time (a new
 * secondary disk: start full, resync full).
 */
void colo_primary_mark_all_out_of_sync(struct colo_primary *pc)
{
	region_t r = 0, end;

	while (r < pc->nr_regions) {
		end = min_t(region_t, r + PRIMARY_MARK_BATCH, pc->nr_regions);
		spin_lock_irq(&pc->lock);
		for (; r < end; r++)
			colo_primary_region_out_of_sync_locked(pc, r);
		spin_unlock_irq(&pc->lock);
		cond_resched();
	}
}
