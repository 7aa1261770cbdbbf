// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: the secondary node's disk object (struct colo_disk,
 * dm-colo-disk.h): how the I/O of colo-secondary and colo-ingress is routed
 * chunk by chunk between the disk and the buffer, the copies that fill the
 * buffer before a primary write and empty it at failover (the merge), the
 * state changes the messages ask for, and the object's life (its registry
 * is dm-colo-disk-registry.c).
 *
 * Per-chunk exclusion is written here by hand rather than with
 * dm-bio-prison, because the two kinds of holder differ: a pending chunk
 * (a slot being filled or merged) holds back every bio for the chunk, but
 * tracked secondary I/O holds back only the merge and, for a read of the
 * disk, the primary writes to that chunk, never other secondary I/O.
 * Prison v1 has exclusive cells only; v2's shared holders would fit, but
 * both allocate a cell per bio (here the tracking lives in per-bio data),
 * and the routing decision must be taken under the same irq-safe lock as
 * the buffer index lookup and slot reservation, which a prison's own lock
 * would only nest inside.
 *
 * Locking, outermost first:
 *  - colo_disks_lock (mutex, dm-colo-disk-registry.c): the registry.
 *  - colo->msg_lock (mutex): one state change by message at a time.
 *  - colo->ti_lock (mutex): the live colo-secondary instance, for events.
 *  - colo->lock (spinlock, irq-safe): the state, the index calls into
 *    dm-colo-buffer, the pending and tracked chunks, the bio lists and the
 *    counters. Taken in map, end_io, kcopyd callbacks, the worker and the
 *    messages; nothing sleeps or allocates with it held.
 *  - nr_inflight and nr_ingress are atomics that the quiescing message,
 *    the failover fence and the removal wait on (inflight_wait).
 *
 * Context of the entry points:
 *  - colo_disk_map: the submitter's, may sleep (mempool_alloc with
 *    GFP_NOIO, the index grow); bios that must wait are queued, never
 *    waited for.
 *  - colo_disk_end_io, colo_disk_kick: any, including hard interrupts.
 *  - copy_in_done, copy_out_done: dm-kcopyd's callback or the merge
 *    workqueue's (dm-colo-buffer), process context; copy_in_done submits
 *    the bios that waited for the chunk, and starts no copy itself.
 *  - colo_worker: process, on its own ordered WQ_MEM_RECLAIM workqueue.
 *  - colo_disk_message, colo_disk_create, colo_disk_detach and
 *    colo_disk_put: process, may sleep; the failover fence's wait is
 *    killable, colo_disk_detach's waits are not.
 *
 * Documentation/admin-guide/device-mapper/dm-colo.rst has the details.
 */
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/hash.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-colo-disk.h"

#define DM_MSG_PREFIX "colo"

const char * const colo_state_names[] = {
	[COLO_IDLE] = "idle",
	[COLO_RUNNING] = "running",
	[COLO_BROKEN] = "broken",
	[COLO_MERGING] = "merging",
	[COLO_STANDALONE] = "standalone",
};

const char * const colo_error_names[] = {
	[COLO_ERR_NONE] = "-",
	[COLO_ERR_BUFFER_FULL] = "buffer_full",
	[COLO_ERR_COPY] = "copy_failed",
	[COLO_ERR_BUFFER_IO] = "buffer_io",
	[COLO_ERR_MERGE] = "merge_failed",
	[COLO_ERR_NOMEM] = "no_memory",
	[COLO_ERR_DISK_IO] = "disk_io",
};

static struct kmem_cache *colo_pending_cache;

/* Helpers; the ones named *_locked need colo->lock. */
static u64 bio_chunk(struct colo_disk *colo, struct bio *bio)
{
	return bio->bi_iter.bi_sector >> colo->chunk_shift;
}

/* Does the bio cover the whole chunk (the disk's last one may be short)? */
static bool bio_covers_chunk(struct colo_disk *colo, struct bio *bio)
{
	sector_t start = bio->bi_iter.bi_sector & ~(colo_chunk_sectors(colo) - 1);
	sector_t len = min_t(sector_t, colo_chunk_sectors(colo),
			     bdev_nr_sectors(colo->disk) - start);

	return bio->bi_iter.bi_sector == start && bio_sectors(bio) == len;
}

static void remap_to_slot(struct colo_disk *colo, struct bio *bio, u32 slot)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

	io->flags |= COLO_IO_TO_BUFFER;
	bio_set_dev(bio, colo->buf);
	bio->bi_iter.bi_sector = colo_buffer_slot_sector(colo->buffer, slot) +
		(bio->bi_iter.bi_sector & (colo_chunk_sectors(colo) - 1));
}

static struct colo_pending *pending_lookup_locked(struct colo_disk *colo, u64 chunk)
{
	struct colo_pending *pe;

	hlist_for_each_entry(pe, &colo->pending[hash_64(chunk, PENDING_HASH_BITS)], node)
		if (pe->chunk == chunk)
			return pe;
	return NULL;
}

static void pending_add_locked(struct colo_disk *colo, struct colo_pending *pe,
			       u64 chunk, u32 slot)
{
	pe->colo = colo;
	pe->chunk = chunk;
	pe->slot = slot;
	pe->ingress = false;
	pe->run_next = NULL;
	bio_list_init(&pe->waiters);
	hlist_add_head(&pe->node, &colo->pending[hash_64(chunk, PENDING_HASH_BITS)]);
	colo->nr_pending++;
	atomic_inc(&colo->nr_inflight);
}

/* The chunk is no longer busy: its waiters are routed again, in order. */
static void pending_release_locked(struct colo_disk *colo, struct colo_pending *pe)
{
	hlist_del(&pe->node);
	colo->nr_pending--;
	bio_list_merge(&colo->deferred, &pe->waiters);
}

static void track_locked(struct colo_disk *colo, struct bio *bio, u64 chunk, bool disk_read)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

	io->chunk = chunk;
	io->flags |= COLO_IO_TRACKED | (disk_read ? COLO_IO_DISK_READ : 0);
	hlist_add_head(&io->node, &colo->tracked[hash_64(chunk, TRACK_HASH_BITS)]);
	atomic_inc(&colo->nr_inflight);
}

/* Is secondary I/O on @chunk in flight (only reads of the disk if @disk_reads)? */
static bool chunk_tracked_locked(struct colo_disk *colo, u64 chunk, bool disk_reads)
{
	struct colo_io *io;

	hlist_for_each_entry(io, &colo->tracked[hash_64(chunk, TRACK_HASH_BITS)], node)
		if (io->chunk == chunk && (!disk_reads || (io->flags & COLO_IO_DISK_READ)))
			return true;
	return false;
}

/*
 * The decrement and the wake-up are one step under the wait queue's lock:
 * once the count is 0, colo_disk_detach() may go on to free the disk, so nothing
 * may touch it after; colo_disk_detach() takes the same lock before it goes on.
 * (Today every caller's context is also waited for before the free: dm
 * core's for end_io, dm-kcopyd's client and the workqueues' destruction
 * for the copies. This does not depend on that.)
 */
static void inflight_put(struct colo_disk *colo)
{
	unsigned long flags;

	spin_lock_irqsave(&colo->inflight_wait.lock, flags);
	if (atomic_dec_and_test(&colo->nr_inflight))
		wake_up_locked(&colo->inflight_wait);
	spin_unlock_irqrestore(&colo->inflight_wait.lock, flags);
}

static void set_error_locked(struct colo_disk *colo, enum colo_error error)
{
	colo->error = error;
}

/* A primary write could not be buffered: keep the checkpoint view intact. */
static void set_broken_locked(struct colo_disk *colo, enum colo_error error)
{
	set_error_locked(colo, error);
	if (colo->state == COLO_RUNNING) {
		colo->state = COLO_BROKEN;
		DMERR("%pg: buffer broken (%s): checkpoint refused, failover still possible",
		      colo->disk, colo_error_names[error]);
	}
}

void colo_disk_kick(struct colo_disk *colo)
{
	queue_work(colo->wq, &colo->worker);
}

static void colo_raise_event(struct colo_disk *colo)
{
	mutex_lock(&colo->ti_lock);
	if (colo->ti)
		dm_table_event(colo->ti->table);
	mutex_unlock(&colo->ti_lock);
}

/* Routing: decide, under colo->lock, where a bio goes. */
enum colo_action {
	ACT_DISK,		/* remap to the disk */
	ACT_BUFFER,		/* remap to route.slot */
	ACT_QUEUED,		/* taken: waits on a pending chunk or a list */
	ACT_COPY,		/* new pending: start the copy-in */
	ACT_KILL,		/* fail with EIO */
	ACT_ENDIO,		/* complete now (discard no-op) */
	ACT_NEED_PENDING,	/* call again with a preallocated pending */
	ACT_NEED_GROW,		/* call again after colo_buffer_grow() */
};

struct colo_route {
	u32 slot;
	struct colo_pending *copy;
};

/* Take a slot for @chunk and a pending for filling it. */
static enum colo_action reserve_fill_locked(struct colo_disk *colo, u64 chunk,
					    struct colo_pending **prealloc,
					    struct colo_route *r, bool ingress)
{
	int ret;

	if (!*prealloc)
		return ACT_NEED_PENDING;
	ret = colo_buffer_reserve(colo->buffer, &r->slot);
	if (ret == -EAGAIN)
		return ACT_NEED_GROW;
	if (ret) {
		if (ingress)
			set_broken_locked(colo, COLO_ERR_BUFFER_FULL);
		else
			set_error_locked(colo, COLO_ERR_BUFFER_FULL);
		return ACT_KILL;
	}
	r->copy = *prealloc;
	*prealloc = NULL;
	pending_add_locked(colo, r->copy, chunk, r->slot);
	return ACT_COPY;
}

static enum colo_action route_secondary_locked(struct colo_disk *colo, struct bio *bio,
					       struct colo_pending **prealloc,
					       struct colo_route *r)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));
	bool write = op_is_write(bio_op(bio));
	u64 chunk = bio_chunk(colo, bio);
	struct colo_pending *pe;
	enum colo_action act;

	switch (colo->state) {
	case COLO_IDLE:
		return write ? ACT_KILL : ACT_DISK;
	case COLO_STANDALONE:
		return ACT_DISK;
	default:
		break;
	}
	/* The disk must never see a secondary discard before standalone. */
	if (bio_op(bio) == REQ_OP_DISCARD)
		return ACT_ENDIO;
	if (colo->quiescing) {
		bio_list_add(&colo->deferred, bio);
		return ACT_QUEUED;
	}
	pe = pending_lookup_locked(colo, chunk);
	if (pe) {
		bio_list_add(&pe->waiters, bio);
		return ACT_QUEUED;
	}
	r->slot = colo_buffer_lookup(colo->buffer, chunk);

	if (colo->state == COLO_MERGING) {
		/* Unbuffered or already merged: the disk holds the view. */
		if (r->slot == COLO_NO_SLOT || colo_buffer_merged(colo->buffer, r->slot))
			return ACT_DISK;
		track_locked(colo, bio, chunk, false);
		return ACT_BUFFER;
	}

	/* running or broken */
	if (r->slot != COLO_NO_SLOT) {
		track_locked(colo, bio, chunk, false);
		colo->nr_secondary_writes += write;
		return ACT_BUFFER;
	}
	if (!write) {
		track_locked(colo, bio, chunk, true);
		return ACT_DISK;
	}
	act = reserve_fill_locked(colo, chunk, prealloc, r, false);
	if (act != ACT_COPY)
		return act;
	colo->nr_secondary_writes++;
	if (bio_covers_chunk(colo, bio)) {
		/* Nothing to save: the write itself fills the slot. */
		io->fill = r->copy;
		r->copy = NULL;
		return ACT_BUFFER;
	}
	bio_list_add(&r->copy->waiters, bio);
	return ACT_COPY;
}

static enum colo_action route_ingress_locked(struct colo_disk *colo, struct bio *bio,
					     struct colo_pending **prealloc,
					     struct colo_route *r)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));
	u64 chunk = bio_chunk(colo, bio);
	struct colo_pending *pe;
	enum colo_action act;

	if (colo->detached || colo->state == COLO_MERGING || colo->state == COLO_STANDALONE) {
		colo->nr_ingress_refused++;
		return ACT_KILL;
	}
	if (!op_is_write(bio_op(bio)))
		return ACT_DISK;
	if (colo->quiescing) {
		bio_list_add(&colo->deferred, bio);
		return ACT_QUEUED;
	}
	if (colo->state == COLO_IDLE)
		goto pass;
	/* Keep primary writes in order behind any that are blocked. */
	if (!bio_list_empty(&colo->blocked)) {
		bio_list_add(&colo->blocked, bio);
		return ACT_QUEUED;
	}
	pe = pending_lookup_locked(colo, chunk);
	if (pe) {
		bio_list_add(&pe->waiters, bio);
		return ACT_QUEUED;
	}
	if (colo_buffer_lookup(colo->buffer, chunk) != COLO_NO_SLOT) {
		/* A secondary read that went to the disk must not see it. */
		if (chunk_tracked_locked(colo, chunk, true)) {
			bio_list_add(&colo->blocked, bio);
			return ACT_QUEUED;
		}
		goto pass;
	}
	if (colo->state == COLO_BROKEN) {
		colo->nr_ingress_refused++;
		return ACT_KILL;
	}
	act = reserve_fill_locked(colo, chunk, prealloc, r, true);
	if (act == ACT_KILL)
		colo->nr_ingress_refused++;
	if (act != ACT_COPY)
		return act;
	r->copy->ingress = true;
	colo->nr_copies++;
	bio_list_add(&r->copy->waiters, bio);
	return ACT_COPY;
pass:
	io->flags |= COLO_IO_COUNTED;
	atomic_inc(&colo->nr_inflight);
	atomic_inc(&colo->nr_ingress);
	colo->nr_ingress_writes++;
	return ACT_DISK;
}

static void copy_in_done(int read_err, unsigned long write_err, void *context);

/*
 * Route a bio and act on the decision. Context: process, may sleep (map,
 * the worker); no spinlock held. Returns a DM_MAPIO_* value for map.
 */
int colo_disk_map(struct colo_disk *colo, struct bio *bio)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));
	struct colo_pending *prealloc = NULL;
	struct colo_route r = { .copy = NULL };
	enum colo_action act;

	for (;;) {
		int grow_err;

		spin_lock_irq(&colo->lock);
		if (io->flags & COLO_IO_INGRESS)
			act = route_ingress_locked(colo, bio, &prealloc, &r);
		else
			act = route_secondary_locked(colo, bio, &prealloc, &r);
		/*
		 * The grow runs without the lock: counted in flight, so that
		 * colo_disk_detach() cannot free the buffer under it (an ingress
		 * write may be here while the colo-secondary is removed).
		 */
		if (act == ACT_NEED_GROW)
			atomic_inc(&colo->nr_inflight);
		spin_unlock_irq(&colo->lock);

		if (act == ACT_NEED_PENDING) {
			prealloc = mempool_alloc(&colo->pending_pool, GFP_NOIO);
			continue;
		}
		if (act == ACT_NEED_GROW) {
			grow_err = colo_buffer_grow(colo->buffer, GFP_NOIO);
			if (grow_err) {
				spin_lock_irq(&colo->lock);
				if (io->flags & COLO_IO_INGRESS)
					set_broken_locked(colo, COLO_ERR_NOMEM);
				else
					set_error_locked(colo, COLO_ERR_NOMEM);
				spin_unlock_irq(&colo->lock);
			}
			inflight_put(colo);
			if (grow_err) {
				act = ACT_KILL;
				break;
			}
			continue;
		}
		break;
	}
	if (prealloc)
		mempool_free(prealloc, &colo->pending_pool);

	switch (act) {
	case ACT_DISK:
		colo_remap_to_disk(colo, bio);
		return DM_MAPIO_REMAPPED;
	case ACT_BUFFER:
		remap_to_slot(colo, bio, r.slot);
		return DM_MAPIO_REMAPPED;
	case ACT_COPY:
		colo_buffer_copy_in(colo->buffer, r.copy->chunk, r.copy->slot,
				    copy_in_done, r.copy);
		return DM_MAPIO_SUBMITTED;
	case ACT_ENDIO:
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	case ACT_KILL:
		return DM_MAPIO_KILL;
	default:
		return DM_MAPIO_SUBMITTED;
	}
}

/* Bios deferred from map or released by a pending chunk. Context: worker. */
static void process_deferred(struct colo_disk *colo)
{
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&colo->lock);
	bios = colo->deferred;
	bio_list_init(&colo->deferred);
	spin_unlock_irq(&colo->lock);

	while ((bio = bio_list_pop(&bios))) {
		switch (colo_disk_map(colo, bio)) {
		case DM_MAPIO_REMAPPED:
			submit_bio_noacct(bio);
			break;
		case DM_MAPIO_KILL:
			bio_io_error(bio);
			break;
		}
	}
}

/*
 * Route the waiters of a chunk just filled, in order, and take those that
 * only need a remap or an ending: @issue gets them remapped, @ended the
 * ones to end (a refused write with BLK_STS_IOERR). This spares the first
 * write to each chunk a trip through the worker, as dm-snapshot issues its
 * bios from the copy's callback. A waiter whose route would sleep (allocate, start a
 * copy) goes to the worker with every waiter after it, to keep their order.
 */
static void route_filled_locked(struct colo_disk *colo, struct bio_list *waiters,
				struct bio_list *issue, struct bio_list *ended)
{
	struct colo_pending *no_prealloc = NULL;
	struct colo_route r;
	enum colo_action act;
	struct bio *bio;

	while ((bio = bio_list_pop(waiters))) {
		struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

		r.copy = NULL;
		if (io->flags & COLO_IO_INGRESS)
			act = route_ingress_locked(colo, bio, &no_prealloc, &r);
		else
			act = route_secondary_locked(colo, bio, &no_prealloc, &r);
		switch (act) {
		case ACT_DISK:
			colo_remap_to_disk(colo, bio);
			bio_list_add(issue, bio);
			break;
		case ACT_BUFFER:
			remap_to_slot(colo, bio, r.slot);
			bio_list_add(issue, bio);
			break;
		case ACT_ENDIO:
			bio_list_add(ended, bio);
			break;
		case ACT_KILL:
			bio->bi_status = BLK_STS_IOERR;
			bio_list_add(ended, bio);
			break;
		case ACT_QUEUED:
			break;
		default:
			/* ACT_NEED_*: nothing was taken for it yet. */
			bio_list_add(&colo->deferred, bio);
			bio_list_merge(&colo->deferred, waiters);
			bio_list_init(waiters);
			return;
		}
	}
}

/*
 * kcopyd finished saving a chunk into its slot. Context: kcopyd's callback
 * (process, may sleep in submit_bio_noacct; no kcopyd copy is started here).
 */
static void copy_in_done(int read_err, unsigned long write_err, void *context)
{
	struct colo_pending *pe = context;
	struct colo_disk *colo = pe->colo;
	struct bio_list failed, issue, ended, waiters;
	unsigned long flags;
	bool wake;
	struct bio *bio;

	bio_list_init(&failed);
	bio_list_init(&issue);
	bio_list_init(&ended);
	spin_lock_irqsave(&colo->lock, flags);
	if (!read_err && !write_err) {
		colo_buffer_commit(colo->buffer, pe->chunk, pe->slot);
		waiters = pe->waiters;
		bio_list_init(&pe->waiters);
		pending_release_locked(colo, pe);
		route_filled_locked(colo, &waiters, &issue, &ended);
	} else {
		/*
		 * The original is not saved: writes waiting for it fail,
		 * reads go on to the disk (which still holds the chunk).
		 */
		/*
		 * Whoever asked for the copy, the disk or the buffer failed:
		 * this node is no longer a safe failover target to checkpoint.
		 */
		set_broken_locked(colo, COLO_ERR_COPY);
		colo_buffer_release(colo->buffer, pe->slot);
		while ((bio = bio_list_pop(&pe->waiters))) {
			struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

			if (op_is_write(bio_op(bio))) {
				if (io->flags & COLO_IO_INGRESS)
					colo->nr_ingress_refused++;
				bio_list_add(&failed, bio);
			} else {
				bio_list_add(&colo->deferred, bio);
			}
		}
		pending_release_locked(colo, pe);
	}
	/* A merge waits for fills to end; deferred bios wait for the worker. */
	wake = !bio_list_empty(&colo->deferred) || colo->state == COLO_MERGING;
	spin_unlock_irqrestore(&colo->lock, flags);

	while ((bio = bio_list_pop(&issue)))
		submit_bio_noacct(bio);
	while ((bio = bio_list_pop(&ended)))
		bio_endio(bio);
	while ((bio = bio_list_pop(&failed)))
		bio_io_error(bio);
	mempool_free(pe, &colo->pending_pool);
	if (wake)
		colo_disk_kick(colo);
	inflight_put(colo);
}

/*
 * Failover merge: every committed slot is copied back to its chunk, a run
 * of slots holding consecutive chunks in one copy (merge_extend_locked).
 */
static void copy_out_done(int read_err, unsigned long write_err, void *context)
{
	struct colo_pending *run = context, *pe, *next;
	struct colo_disk *colo = run->colo;
	unsigned int i, n = 0;
	unsigned long flags;

	spin_lock_irqsave(&colo->lock, flags);
	if (read_err || write_err)
		set_error_locked(colo, COLO_ERR_MERGE);
	for (pe = run; pe; pe = pe->run_next) {
		if (!read_err && !write_err) {
			colo_buffer_set_merged(colo->buffer, pe->slot);
			colo->merge_done++;
		} else {
			colo->merge_failed++;
		}
		pending_release_locked(colo, pe);
		n++;
	}
	colo->merge_inflight--;
	spin_unlock_irqrestore(&colo->lock, flags);

	for (pe = run; pe; pe = next) {
		next = pe->run_next;
		mempool_free(pe, &colo->pending_pool);
	}
	colo_disk_kick(colo);
	/* postsuspend and a dtr may wait for the merge */
	wake_up_all(&colo->inflight_wait);
	for (i = 0; i < n; i++)
		inflight_put(colo);
}

/*
 * A sequential write fills slots in disk order: after @lead, take the next
 * slots into the same copy while they hold the next chunks and are idle,
 * up to COLO_MERGE_RUN_SECTORS. Returns the chunks in the run.
 * Context: worker, colo->lock held (so the allocation does not wait).
 */
static unsigned int merge_extend_locked(struct colo_disk *colo, struct colo_pending *lead)
{
	unsigned int n = 1, max = max(1U, COLO_MERGE_RUN_SECTORS >> colo->chunk_shift);
	struct colo_pending *last = lead, *pe;
	u32 slot;
	u64 chunk;

	while (n < max && colo->merge_cursor < colo_buffer_reserved(colo->buffer)) {
		slot = colo->merge_cursor;
		if (!colo_buffer_slot_chunk(colo->buffer, slot, &chunk) ||
		    chunk != lead->chunk + n || colo_buffer_merged(colo->buffer, slot) ||
		    pending_lookup_locked(colo, chunk) || chunk_tracked_locked(colo, chunk, false))
			break;
		pe = mempool_alloc(&colo->pending_pool, GFP_NOWAIT);
		if (!pe)
			break;
		pending_add_locked(colo, pe, chunk, slot);
		last->run_next = pe;
		last = pe;
		colo->merge_cursor++;
		n++;
	}
	return n;
}

/*
 * Start the copies of merges that were waiting for secondary I/O on their
 * chunk to end. They run even while suspended: their pending chunk holds
 * bios back, and suspend waits for those.
 */
static void merge_start_drained(struct colo_disk *colo)
{
	struct colo_pending *pe, *tmp;
	LIST_HEAD(ready);

	spin_lock_irq(&colo->lock);
	list_for_each_entry_safe(pe, tmp, &colo->merge_draining, drain)
		if (!chunk_tracked_locked(colo, pe->chunk, false))
			list_move_tail(&pe->drain, &ready);
	spin_unlock_irq(&colo->lock);

	list_for_each_entry_safe(pe, tmp, &ready, drain) {
		list_del_init(&pe->drain);
		colo_buffer_copy_out(colo->buffer, pe->chunk, pe->slot, 1, copy_out_done, pe);
	}
}

/*
 * Start merge copies until COLO_MERGE_JOBS are in flight. A chunk with
 * secondary I/O in flight to its slot gets its pending at once, so no new
 * I/O can keep it busy for ever, and its copy starts when that I/O has
 * ended (merge_start_drained). A chunk still being filled is left for the
 * next pass. The end of either wakes the worker again.
 * Context: worker. Returns true when the merge has just completed.
 */
static bool merge_step(struct colo_disk *colo)
{
	struct colo_pending *pe = NULL;
	bool completed = false;
	u64 chunk;
	u32 slot;

	if (READ_ONCE(colo->state) != COLO_MERGING)
		return false;
	merge_start_drained(colo);
	for (;;) {
		if (!pe)
			pe = mempool_alloc(&colo->pending_pool, GFP_NOIO);
		spin_lock_irq(&colo->lock);
		if (colo->state != COLO_MERGING || !colo->ingress_fenced || colo->detached ||
		    colo->merge_paused || colo->merge_inflight >= COLO_MERGE_JOBS)
			break;
		if (colo->merge_cursor >= colo_buffer_reserved(colo->buffer)) {
			/* Copies and fills still running wake us when done. */
			if (colo->merge_inflight || colo->nr_pending)
				break;
			if (colo->merge_done == colo_buffer_count(colo->buffer)) {
				colo->state = COLO_STANDALONE;
				completed = true;
				break;
			}
			/* Failed chunks wait for another failover message. */
			if (colo->merge_done + colo->merge_failed >=
			    colo_buffer_count(colo->buffer))
				break;
			/*
			 * Slots committed behind the cursor, or skipped while
			 * busy: another pass, at once or when the busy I/O ends.
			 */
			colo->merge_cursor = 0;
			if (colo->merge_skipped) {
				colo->merge_skipped = false;
				break;
			}
			spin_unlock_irq(&colo->lock);
			continue;
		}
		slot = colo->merge_cursor++;
		if (!colo_buffer_slot_chunk(colo->buffer, slot, &chunk) ||
		    colo_buffer_merged(colo->buffer, slot)) {
			spin_unlock_irq(&colo->lock);
			continue;
		}
		if (pending_lookup_locked(colo, chunk)) {
			colo->merge_skipped = true;
			spin_unlock_irq(&colo->lock);
			continue;
		}
		pending_add_locked(colo, pe, chunk, slot);
		colo->merge_inflight++;
		if (chunk_tracked_locked(colo, chunk, false)) {
			list_add_tail(&pe->drain, &colo->merge_draining);
			spin_unlock_irq(&colo->lock);
		} else {
			unsigned int nr = merge_extend_locked(colo, pe);

			spin_unlock_irq(&colo->lock);
			colo_buffer_copy_out(colo->buffer, chunk, slot, nr, copy_out_done, pe);
		}
		pe = NULL;
	}
	spin_unlock_irq(&colo->lock);
	if (pe)
		mempool_free(pe, &colo->pending_pool);
	return completed;
}

static void colo_worker(struct work_struct *work)
{
	struct colo_disk *colo = container_of(work, struct colo_disk, worker);

	process_deferred(colo);
	if (merge_step(colo)) {
		colo_buffer_merge_release(colo->buffer);
		DMINFO("%pg: failover merge complete, standalone", colo->disk);
		wake_up_all(&colo->inflight_wait);
		colo_raise_event(colo);
	}
}

/* Quiescing: hold new I/O back while in-flight I/O drains. */
static void quiesce_end(struct colo_disk *colo);

/*
 * Context: message, may sleep. -EINTR (and nothing held back) when the
 * caller is killed while a device does not complete its I/O.
 */
static int quiesce_begin(struct colo_disk *colo)
{
	spin_lock_irq(&colo->lock);
	colo->quiescing = true;
	spin_unlock_irq(&colo->lock);
	if (wait_event_killable(colo->inflight_wait, !atomic_read(&colo->nr_inflight))) {
		quiesce_end(colo);
		return -EINTR;
	}
	return 0;
}

static void quiesce_end(struct colo_disk *colo)
{
	spin_lock_irq(&colo->lock);
	colo->quiescing = false;
	bio_list_merge(&colo->deferred, &colo->blocked);
	bio_list_init(&colo->blocked);
	spin_unlock_irq(&colo->lock);
	colo_disk_kick(colo);
}

/* The disk object's life: created, detached by the last colo-secondary, put. */
void colo_disk_put(struct colo_disk *colo)
{
	if (!refcount_dec_and_test(&colo->ref))
		return;
	mempool_exit(&colo->pending_pool);
	kfree(colo);
}

struct colo_disk *colo_disk_create(struct dm_target *ti, struct block_device *disk,
				   struct block_device *buf, unsigned int chunk_shift,
				   u32 capacity)
{
	struct colo_disk *colo;
	int r;

	colo = kzalloc(sizeof(*colo), GFP_KERNEL);
	if (!colo)
		return ERR_PTR(-ENOMEM);
	refcount_set(&colo->ref, 1);
	colo->nr_secondary = 1;
	colo->owner = dm_table_get_md(ti->table);
	colo->disk_dev = disk->bd_dev;
	colo->buffer_dev = buf->bd_dev;
	colo->chunk_shift = chunk_shift;
	colo->disk = disk;
	colo->buf = buf;
	mutex_init(&colo->ti_lock);
	mutex_init(&colo->msg_lock);
	spin_lock_init(&colo->lock);
	colo->state = COLO_IDLE;
	bio_list_init(&colo->deferred);
	bio_list_init(&colo->blocked);
	INIT_LIST_HEAD(&colo->merge_draining);
	atomic_set(&colo->nr_inflight, 0);
	atomic_set(&colo->nr_ingress, 0);
	init_waitqueue_head(&colo->inflight_wait);
	INIT_WORK(&colo->worker, colo_worker);

	r = mempool_init_slab_pool(&colo->pending_pool, COLO_MIN_PENDING, colo_pending_cache);
	if (r)
		goto bad_pool;
	colo->wq = alloc_ordered_workqueue("dm-colo-%pg", WQ_MEM_RECLAIM, disk);
	if (!colo->wq) {
		r = -ENOMEM;
		goto bad_wq;
	}
	colo->buffer = colo_buffer_create(disk, bdev_nr_sectors(disk), buf, chunk_shift, capacity);
	if (IS_ERR(colo->buffer)) {
		r = PTR_ERR(colo->buffer);
		goto bad_buffer;
	}
	return colo;

bad_buffer:
	destroy_workqueue(colo->wq);
bad_wq:
	mempool_exit(&colo->pending_pool);
bad_pool:
	kfree(colo);
	return ERR_PTR(r);
}

/*
 * The last colo-secondary instance is gone. Context: dtr, may sleep.
 * Returns true when the disk object must be kept (parked): its merge is
 * stalled, and the buffer holds the only copy of secondary writes that
 * the disk lacks. A dtr cannot refuse, and the index lives in memory only,
 * so it is kept for the next colo-secondary over the same devices.
 *
 * The waits are uninterruptible: a dtr cannot fail, and nothing may be
 * freed while the merge or an I/O still uses it (dm core too waits for
 * in-flight bios without a timeout before it calls us). What a caller
 * can refuse is done before: the failover message's wait is killable, and
 * dmcoloctl refuses to remove a secondary whose merge is stalled.
 */
bool colo_disk_detach(struct colo_disk *colo)
{
	bool stalled, keep;

	/* Never drop secondary writes that are not merged yet. */
	spin_lock_irq(&colo->lock);
	colo->merge_paused = false;
	stalled = colo->state == COLO_MERGING && (colo->merge_failed || !colo->ingress_fenced);
	spin_unlock_irq(&colo->lock);
	if (colo->state == COLO_MERGING && !stalled) {
		DMWARN("%pg: removed while merging: finishing the merge first", colo->disk);
		colo_disk_kick(colo);
		wait_event(colo->inflight_wait,
			   READ_ONCE(colo->state) != COLO_MERGING || READ_ONCE(colo->merge_failed));
	}

	spin_lock_irq(&colo->lock);
	colo->detached = true;
	/* Nothing to keep when every buffered chunk is merged (or none is). */
	keep = colo->state == COLO_MERGING &&
	       colo->merge_done < colo_buffer_count(colo->buffer);
	spin_unlock_irq(&colo->lock);
	/* Deferred primary writes are failed by the worker now. */
	colo_disk_kick(colo);
	flush_workqueue(colo->wq);
	wait_event(colo->inflight_wait, !atomic_read(&colo->nr_inflight));
	/* The last inflight_put() has left the wait queue's lock. */
	spin_lock_irq(&colo->inflight_wait.lock);
	spin_unlock_irq(&colo->inflight_wait.lock);
	flush_workqueue(colo->wq);
	if (keep) {
		colo_buffer_merge_release(colo->buffer);
		DMWARN("%pg: removed with %u of %u chunks unmerged: buffer kept for reuse",
		       colo->disk, colo_buffer_count(colo->buffer) - colo->merge_done,
		       colo_buffer_count(colo->buffer));
		return true;
	}
	destroy_workqueue(colo->wq);
	colo_buffer_destroy(colo->buffer);
	colo->buffer = NULL;
	return false;
}

/* Context: bio completion, any (irq) context. */
int colo_disk_end_io(struct colo_disk *colo, struct bio *bio, blk_status_t *error)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));
	struct colo_pending *pe = io->fill;
	bool kick = false, put = false;
	unsigned long flags;

	if (!(io->flags & (COLO_IO_TRACKED | COLO_IO_COUNTED | COLO_IO_TO_BUFFER)) && !pe)
		return DM_ENDIO_DONE;

	spin_lock_irqsave(&colo->lock, flags);
	if (io->flags & COLO_IO_TRACKED) {
		hlist_del(&io->node);
		/* Primary writes may wait for this read; a merge for any I/O. */
		kick = !bio_list_empty(&colo->blocked) || colo->state == COLO_MERGING;
		put = true;
	}
	if (io->flags & COLO_IO_COUNTED) {
		put = true;
		/* failover waits for the last one */
		if (atomic_dec_and_test(&colo->nr_ingress))
			wake_up_all(&colo->inflight_wait);
	}
	/* As for a failed copy-in: the buffer device is not to be trusted. */
	if (*error && (io->flags & COLO_IO_TO_BUFFER))
		set_broken_locked(colo, COLO_ERR_BUFFER_IO);
	/*
	 * The disk lacks a primary write: it is no checkpoint any more. The
	 * primary may never hear of it (nbd-server 3.24 ignores the fsync of
	 * its "sync" writes, and that fsync consumes the error a later flush
	 * would report), so the checkpoint is refused here.
	 */
	if (*error && (io->flags & COLO_IO_COUNTED))
		set_broken_locked(colo, COLO_ERR_DISK_IO);
	if (pe) {
		if (!*error)
			colo_buffer_commit(colo->buffer, pe->chunk, pe->slot);
		else
			colo_buffer_release(colo->buffer, pe->slot);
		pending_release_locked(colo, pe);
		kick = true;
	}
	if (kick && !bio_list_empty(&colo->blocked) && !colo->quiescing) {
		bio_list_merge(&colo->deferred, &colo->blocked);
		bio_list_init(&colo->blocked);
	}
	spin_unlock_irqrestore(&colo->lock, flags);

	/* The worker is woken first: after the last put, a dtr may destroy it. */
	if (kick)
		colo_disk_kick(colo);
	if (pe) {
		io->fill = NULL;
		mempool_free(pe, &colo->pending_pool);
		inflight_put(colo);
	}
	if (put)
		inflight_put(colo);
	return DM_ENDIO_DONE;
}

enum colo_drop { DROP_START, DROP_CHECKPOINT, DROP_STOP };

/*
 * Start, checkpoint or stop: once the I/O in flight has drained, drop the
 * buffer; start enters running with no error, a checkpoint starts the
 * next epoch, stop enters idle. A checkpoint is refused (-EIO, the buffer
 * kept for a failover) when the buffer broke while the I/O drained: the
 * disk may lack a primary write, or a chunk's original.
 * Context: message, may sleep.
 */
static int drop_buffer(struct colo_disk *colo, enum colo_drop what)
{
	enum colo_error error;
	int r = quiesce_begin(colo);

	if (r)
		return r;
	spin_lock_irq(&colo->lock);
	if (what == DROP_CHECKPOINT && colo->state != COLO_RUNNING) {
		error = colo->error;
		spin_unlock_irq(&colo->lock);
		quiesce_end(colo);
		DMERR("%pg: checkpoint: buffer broken (%s) while I/O drained: refused",
		      colo->disk, colo_error_names[error]);
		return -EIO;
	}
	colo_buffer_drop(colo->buffer);
	switch (what) {
	case DROP_START:
		colo->state = COLO_RUNNING;
		colo->error = COLO_ERR_NONE;
		break;
	case DROP_CHECKPOINT:
		colo->epoch++;
		break;
	case DROP_STOP:
		colo->state = COLO_IDLE;
		break;
	}
	spin_unlock_irq(&colo->lock);
	quiesce_end(colo);
	return 0;
}

/*
 * The state changes that colo-secondary's messages ask for: start,
 * checkpoint, stop, failover. Context: message, may sleep. Errors are said
 * with DMERR; the state has changed on 0, and on -EINTR (a failover whose
 * fence wait was interrupted is merging).
 */
int colo_disk_message(struct colo_disk *colo, unsigned int argc, char **argv)
{
	enum colo_state state;
	int r = 0;

	if (argc != 1) {
		DMERR("%pg: message '%s' takes no arguments", colo->disk, argv[0]);
		return -EINVAL;
	}
	mutex_lock(&colo->msg_lock);
	state = READ_ONCE(colo->state);
	if (!strcasecmp(argv[0], "start")) {
		if (state != COLO_IDLE) {
			DMERR("%pg: start: state is %s, not idle",
			      colo->disk, colo_state_names[state]);
			r = -EINVAL;
			goto out;
		}
		/* Writes passed through while idle land before the epoch starts. */
		r = drop_buffer(colo, DROP_START);
		if (r)
			goto out;
	} else if (!strcasecmp(argv[0], "checkpoint") || !strcasecmp(argv[0], "stop")) {
		bool stop = !strcasecmp(argv[0], "stop");

		if (state != COLO_RUNNING) {
			DMERR("%pg: %s: state is %s, not running%s", colo->disk, argv[0],
			      colo_state_names[state],
			      state == COLO_BROKEN ? " (buffer broken: fail over or remove)" : "");
			r = -EINVAL;
			goto out;
		}
		r = drop_buffer(colo, stop ? DROP_STOP : DROP_CHECKPOINT);
		if (r)
			goto out;
	} else if (!strcasecmp(argv[0], "failover")) {
		/* Again in merging: retry failed copies, or finish the fence. */
		if (state != COLO_RUNNING && state != COLO_BROKEN &&
		    !(state == COLO_MERGING &&
		      (READ_ONCE(colo->merge_failed) || !READ_ONCE(colo->ingress_fenced)))) {
			DMERR("%pg: failover: state is %s, not running or broken",
			      colo->disk, colo_state_names[state]);
			r = -EINVAL;
			goto out;
		}
		colo_buffer_merge_prepare(colo->buffer);
		spin_lock_irq(&colo->lock);
		/* From now on colo-ingress refuses all I/O. */
		if (colo->state != COLO_MERGING)
			colo->ingress_fenced = false;
		colo->state = COLO_MERGING;
		colo->merge_cursor = 0;
		colo->merge_failed = 0;
		colo->error = COLO_ERR_NONE;
		spin_unlock_irq(&colo->lock);
		/*
		 * Primary writes already on their way to the disk land first:
		 * merge_step() starts only once they all have.
		 */
		if (wait_event_killable(colo->inflight_wait, !atomic_read(&colo->nr_ingress))) {
			DMERR("%pg: failover: interrupted waiting for primary writes: send again",
			      colo->disk);
			r = -EINTR;
		} else {
			spin_lock_irq(&colo->lock);
			colo->ingress_fenced = true;
			bio_list_merge(&colo->deferred, &colo->blocked);
			bio_list_init(&colo->blocked);
			spin_unlock_irq(&colo->lock);
			colo_disk_kick(colo);
		}
	} else {
		DMERR("%pg: unknown message '%s'", colo->disk, argv[0]);
		r = -EINVAL;
		goto out;
	}
out:
	mutex_unlock(&colo->msg_lock);
	return r;
}

int colo_disk_init(void)
{
	colo_pending_cache = KMEM_CACHE(colo_pending, 0);
	return colo_pending_cache ? 0 : -ENOMEM;
}

void colo_disk_exit(void)
{
	kmem_cache_destroy(colo_pending_cache);
}
