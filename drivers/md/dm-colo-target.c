// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: COLO block replication, the secondary node's targets, and the
 * module init for all three (colo-primary lives in dm-colo-primary.c).
 *
 *   colo-secondary <disk_dev> <buffer_dev> <chunk_sectors> [<#opt_args> <opt_args>...]
 *   colo-ingress   <disk_dev>
 *
 * colo-secondary is the secondary VM's disk: its writes go to a disk buffer
 * on buffer_dev, its reads come from the buffer, else from disk_dev.
 * colo-ingress is what the NBD server exports to the primary: before a
 * primary write reaches a chunk of disk_dev, the chunk's content is saved
 * in the same buffer, once per epoch. A checkpoint drops the buffer; a
 * failover merges it into disk_dev (the primary's writes since the last
 * checkpoint are undone, the secondary's kept).
 *
 * Both targets share one struct colo_disk, found through the disk it sits
 * on (dm-snapshot's origin lookup is the model) and kept across table
 * reloads of the colo-secondary device.
 *
 * Locking, outermost first:
 *  - colo_disks_lock (mutex): the list of disks, each disk's count of
 *    colo-secondary instances, owner and parked; ctr and dtr only.
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
 *  - map: the submitter's, may sleep (mempool_alloc with GFP_NOIO, the
 *    index grow); bios that must wait are queued, never waited for.
 *  - end_io: any, including hard interrupts.
 *  - copy_in_done, copy_out_done: dm-kcopyd's callback or the merge
 *    workqueue's (dm-colo-buffer), process context; copy_in_done submits
 *    the bios that waited for the chunk, and starts no copy itself.
 *  - colo_worker: process, on its own ordered WQ_MEM_RECLAIM workqueue.
 *  - message, ctr, dtr, postsuspend, resume: process, may sleep; the
 *    failover fence's wait is killable, the dtr's waits are not
 *    (colo_detach).
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

#include "dm-colo-buffer.h"
#include "dm-colo-primary.h"

#define DM_MSG_PREFIX "colo"
/* The dm-colo release (VERSION, dkms.conf); the targets carry their own. */
#define DM_COLO_RELEASE "0.2.0"

#define COLO_MIN_CHUNK_SECTORS	8
#define COLO_MAX_CHUNK_SECTORS	BIT(16)
#define COLO_MIN_PENDING	64
#define PENDING_HASH_BITS	8
#define TRACK_HASH_BITS		8

enum colo_state {
	COLO_IDLE,		/* no replication: secondary writes fail */
	COLO_RUNNING,		/* buffering; checkpoint drops the buffer */
	COLO_BROKEN,		/* a primary write could not be buffered */
	COLO_MERGING,		/* failover: buffer -> disk, ingress fenced */
	COLO_STANDALONE,	/* merged: linear over the disk */
};

static const char * const colo_state_names[] = {
	[COLO_IDLE] = "idle",
	[COLO_RUNNING] = "running",
	[COLO_BROKEN] = "broken",
	[COLO_MERGING] = "merging",
	[COLO_STANDALONE] = "standalone",
};

enum colo_error {
	COLO_ERR_NONE,
	COLO_ERR_BUFFER_FULL,	/* no free slot for a chunk */
	COLO_ERR_COPY,		/* saving a chunk into the buffer failed */
	COLO_ERR_BUFFER_IO,	/* a read or write on the buffer failed */
	COLO_ERR_MERGE,		/* a merge copy failed */
	COLO_ERR_NOMEM,		/* no memory for the index */
	COLO_ERR_DISK_IO,	/* a primary write to the disk failed */
};

static const char * const colo_error_names[] = {
	[COLO_ERR_NONE] = "-",
	[COLO_ERR_BUFFER_FULL] = "buffer_full",
	[COLO_ERR_COPY] = "copy_failed",
	[COLO_ERR_BUFFER_IO] = "buffer_io",
	[COLO_ERR_MERGE] = "merge_failed",
	[COLO_ERR_NOMEM] = "no_memory",
	[COLO_ERR_DISK_IO] = "disk_io",
};

struct colo_disk;

/*
 * A busy chunk: its slot is being filled (copy-in, or a whole-chunk write)
 * or merged. Every bio for the chunk waits on it, then is routed again.
 */
struct colo_pending {
	struct hlist_node node;
	struct colo_disk *colo;
	u64 chunk;
	u32 slot;
	bool ingress;		/* a primary write is waiting for the fill */
	struct bio_list waiters;
	struct list_head drain;	/* merge waiting for in-flight I/O to end */
	struct colo_pending *run_next;	/* merge: next chunk of the same copy */
};

/* Per-bio data of both targets. */
struct colo_io {
	struct hlist_node node;		/* in colo->tracked while in flight */
	struct colo_pending *fill;	/* whole-chunk write filling a slot */
	u64 chunk;
	unsigned int flags;
};

#define COLO_IO_INGRESS		BIT(0)	/* came through colo-ingress */
#define COLO_IO_TRACKED		BIT(1)	/* routed by the index, in flight */
#define COLO_IO_DISK_READ	BIT(2)	/* a tracked secondary read of the disk */
#define COLO_IO_COUNTED		BIT(3)	/* an ingress bio in flight to the disk */
#define COLO_IO_TO_BUFFER	BIT(4)	/* remapped to the buffer device */

/* One per secondary disk. */
struct colo_disk {
	struct list_head list;		/* in colo_disks */
	refcount_t ref;			/* target instances of both kinds */
	unsigned int nr_secondary;	/* colo-secondary instances (reloads overlap) */
	/*
	 * The last colo-secondary went away with secondary writes still
	 * unmerged: kept, with the module pinned, for the next colo-secondary
	 * over the same devices. disk and buf are stale meanwhile (only a
	 * colo-ingress, which holds the disk open, still uses colo->disk).
	 */
	bool parked;
	struct mapped_device *owner;	/* the colo-secondary device */
	dev_t disk_dev;
	dev_t buffer_dev;
	unsigned int chunk_shift;
	struct block_device *disk;
	struct block_device *buf;

	struct mutex ti_lock;		/* protects ti */
	struct dm_target *ti;		/* live colo-secondary instance, for events */
	struct mutex msg_lock;		/* serialises state changes by message */

	/*
	 * Protects everything below that is not atomic. Taken in map, in the
	 * worker, in kcopyd callbacks and in end_io (any context): irq-safe.
	 */
	spinlock_t lock;
	enum colo_state state;
	enum colo_error error;
	bool detached;			/* the last colo-secondary went away */
	bool quiescing;			/* a message waits for in-flight I/O */
	bool merge_paused;		/* suspended */
	/*
	 * failover: every primary write admitted to the disk before the fence
	 * has completed. Until then the merge must not start: it would copy a
	 * chunk back under a primary write that lands after it.
	 */
	bool ingress_fenced;
	bool merge_skipped;		/* a pass left a busy chunk for later */
	struct list_head merge_draining;	/* merges held back by in-flight I/O */
	u64 epoch;
	struct colo_buffer *buffer;
	struct hlist_head pending[1 << PENDING_HASH_BITS];
	unsigned int nr_pending;
	struct hlist_head tracked[1 << TRACK_HASH_BITS];
	struct bio_list deferred;	/* routed again by the worker */
	struct bio_list blocked;	/* primary writes waiting for disk reads */
	u32 merge_cursor;
	u32 merge_done;
	u32 merge_failed;
	unsigned int merge_inflight;
	u64 nr_copies;			/* primary writes that saved a chunk */
	u64 nr_secondary_writes;	/* secondary writes into the buffer */
	u64 nr_ingress_writes;		/* primary writes passed to the disk */
	u64 nr_ingress_refused;

	/* Tracked, counted and pending I/O; a quiescing message waits for 0. */
	atomic_t nr_inflight;
	/* Counted ingress bios only; failover waits for 0. */
	atomic_t nr_ingress;
	wait_queue_head_t inflight_wait;

	mempool_t pending_pool;
	struct workqueue_struct *wq;
	struct work_struct worker;
};

struct colo_secondary {
	struct colo_disk *colo;
	struct dm_dev *disk;
	struct dm_dev *buffer;
	unsigned int chunk_sectors;
	bool opt_group;			/* "0" optional arguments were given */
};

struct colo_ingress {
	struct colo_disk *colo;
	struct dm_dev *disk;
};

static LIST_HEAD(colo_disks);
static DEFINE_MUTEX(colo_disks_lock);	/* colo_disks, nr_secondary, owner, parked */
static struct kmem_cache *colo_pending_cache;

/* Helpers; the ones named *_locked need colo->lock. */
static u64 bio_chunk(struct colo_disk *colo, struct bio *bio)
{
	return bio->bi_iter.bi_sector >> colo->chunk_shift;
}

static sector_t chunk_sectors_of(struct colo_disk *colo)
{
	return (sector_t)1 << colo->chunk_shift;
}

/* Does the bio cover the whole chunk (the disk's last one may be short)? */
static bool bio_covers_chunk(struct colo_disk *colo, struct bio *bio)
{
	sector_t start = bio->bi_iter.bi_sector & ~(chunk_sectors_of(colo) - 1);
	sector_t len = min_t(sector_t, chunk_sectors_of(colo),
			     bdev_nr_sectors(colo->disk) - start);

	return bio->bi_iter.bi_sector == start && bio_sectors(bio) == len;
}

static void remap_to_disk(struct colo_disk *colo, struct bio *bio)
{
	bio_set_dev(bio, colo->disk);
}

static void remap_to_slot(struct colo_disk *colo, struct bio *bio, u32 slot)
{
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

	io->flags |= COLO_IO_TO_BUFFER;
	bio_set_dev(bio, colo->buf);
	bio->bi_iter.bi_sector = colo_buffer_slot_sector(colo->buffer, slot) +
		(bio->bi_iter.bi_sector & (chunk_sectors_of(colo) - 1));
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

static void inflight_put(struct colo_disk *colo)
{
	if (atomic_dec_and_test(&colo->nr_inflight))
		wake_up_all(&colo->inflight_wait);
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

static void wake_worker(struct colo_disk *colo)
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
static int colo_dispatch(struct colo_disk *colo, struct bio *bio)
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
		 * colo_detach() cannot free the buffer under it (an ingress
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
		remap_to_disk(colo, bio);
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
		switch (colo_dispatch(colo, bio)) {
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
			remap_to_disk(colo, bio);
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
		wake_worker(colo);
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
	wake_worker(colo);
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
	wake_worker(colo);
}

/* The disk registry. */
static struct colo_disk *colo_lookup(dev_t disk_dev)
{
	struct colo_disk *colo;

	lockdep_assert_held(&colo_disks_lock);
	list_for_each_entry(colo, &colo_disks, list)
		if (colo->disk_dev == disk_dev)
			return colo;
	return NULL;
}

static void colo_put(struct colo_disk *colo)
{
	if (!refcount_dec_and_test(&colo->ref))
		return;
	mempool_exit(&colo->pending_pool);
	kfree(colo);
}

static struct colo_disk *colo_create(struct dm_target *ti, struct block_device *disk,
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
static bool colo_detach(struct colo_disk *colo)
{
	bool stalled, keep;

	/* Never drop secondary writes that are not merged yet. */
	spin_lock_irq(&colo->lock);
	colo->merge_paused = false;
	stalled = colo->state == COLO_MERGING && (colo->merge_failed || !colo->ingress_fenced);
	spin_unlock_irq(&colo->lock);
	if (colo->state == COLO_MERGING && !stalled) {
		DMWARN("%pg: removed while merging: finishing the merge first", colo->disk);
		wake_worker(colo);
		wait_event(colo->inflight_wait,
			   READ_ONCE(colo->state) != COLO_MERGING || READ_ONCE(colo->merge_failed));
	}

	spin_lock_irq(&colo->lock);
	colo->detached = true;
	keep = colo->state == COLO_MERGING;
	spin_unlock_irq(&colo->lock);
	/* Deferred primary writes are failed by the worker now. */
	wake_worker(colo);
	flush_workqueue(colo->wq);
	wait_event(colo->inflight_wait, !atomic_read(&colo->nr_inflight));
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

/*
 * A colo-secondary instance is gone (dtr, or ctr's error path). The last
 * one detaches the disk, which is then kept or freed.
 */
static void colo_secondary_put(struct colo_disk *colo)
{
	bool last, keep = false;

	mutex_lock(&colo_disks_lock);
	last = !--colo->nr_secondary;
	mutex_unlock(&colo_disks_lock);
	if (last) {
		/* Still listed: a ctr over the disk meanwhile gets -EBUSY. */
		keep = colo_detach(colo);
		mutex_lock(&colo_disks_lock);
		if (keep) {
			colo->parked = true;
			colo->owner = NULL;
			/* rmmod would free the only copy of those writes */
			__module_get(THIS_MODULE);
		} else {
			list_del(&colo->list);
		}
		mutex_unlock(&colo_disks_lock);
	}
	/* A parked disk keeps the last instance's reference. */
	if (!keep)
		colo_put(colo);
}

/*
 * A new colo-secondary takes over a parked disk: the same devices and
 * chunk size, the state (merging, the failed chunks) and the buffer.
 * Context: ctr, colo_disks_lock held.
 */
static int colo_unpark(struct dm_target *ti, struct colo_disk *colo,
		       struct block_device *disk, struct block_device *buf,
		       unsigned int chunk_shift)
{
	lockdep_assert_held(&colo_disks_lock);
	if (colo->buffer_dev != buf->bd_dev || colo->chunk_shift != chunk_shift) {
		ti->error = "disk_dev has a kept buffer: give its buffer_dev and chunk_sectors";
		return -EINVAL;
	}
	if (colo_buffer_reattach(colo->buffer, disk, buf)) {
		ti->error = "disk_dev or buffer_dev changed size since their buffer was kept";
		return -EINVAL;
	}
	colo->parked = false;
	colo->owner = dm_table_get_md(ti->table);
	colo->nr_secondary = 1;
	spin_lock_irq(&colo->lock);
	colo->disk = disk;
	colo->buf = buf;
	colo->detached = false;
	spin_unlock_irq(&colo->lock);
	module_put(THIS_MODULE);
	DMINFO("%pg: kept buffer taken over, %u chunks to merge: send failover to retry",
	       disk, colo_buffer_count(colo->buffer) - colo->merge_done);
	return 0;
}

/* colo-secondary */
static int parse_chunk_sectors(struct dm_target *ti, const char *arg,
			       struct block_device *disk, struct block_device *buf,
			       unsigned int *chunk_sectors)
{
	unsigned int lbs;

	if (kstrtouint(arg, 10, chunk_sectors)) {
		ti->error = "chunk_sectors is not a number";
		return -EINVAL;
	}
	if (*chunk_sectors < COLO_MIN_CHUNK_SECTORS || *chunk_sectors > COLO_MAX_CHUNK_SECTORS ||
	    !is_power_of_2(*chunk_sectors)) {
		ti->error = "chunk_sectors must be a power of two from 8 to 65536";
		return -EINVAL;
	}
	lbs = max(bdev_logical_block_size(disk), bdev_logical_block_size(buf)) >> SECTOR_SHIFT;
	if (*chunk_sectors % lbs) {
		ti->error = "chunk_sectors is not a multiple of the devices' logical block size";
		return -EINVAL;
	}
	return 0;
}

static int parse_opt_args(struct dm_target *ti, struct dm_arg_set *as, bool *opt_group)
{
	static const struct dm_arg _args[] = {
		{0, 0, "Invalid number of optional arguments (colo-secondary has none yet)"},
	};
	unsigned int argc;
	int r;

	*opt_group = as->argc > 0;
	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;
	return 0;
}

static int secondary_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct block_device *disk, *buf;
	struct colo_secondary *cs;
	struct colo_disk *colo;
	sector_t capacity;
	int r;

	if (argc < 3) {
		ti->error = "Usage: <disk_dev> <buffer_dev> <chunk_sectors> [<#opt_args> ...]";
		return -EINVAL;
	}
	cs = kzalloc(sizeof(*cs), GFP_KERNEL);
	if (!cs) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &cs->disk);
	if (r) {
		ti->error = "Cannot open disk_dev";
		goto bad_disk;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &cs->buffer);
	if (r) {
		ti->error = "Cannot open buffer_dev";
		goto bad_buffer;
	}
	disk = cs->disk->bdev;
	buf = cs->buffer->bdev;
	r = -EINVAL;
	if (disk == buf) {
		ti->error = "disk_dev and buffer_dev are the same device";
		goto bad;
	}
	r = parse_chunk_sectors(ti, dm_shift_arg(&as), disk, buf, &cs->chunk_sectors);
	if (r)
		goto bad;
	r = parse_opt_args(ti, &as, &cs->opt_group);
	if (r)
		goto bad;
	r = -EINVAL;
	if (as.argc) {
		ti->error = "Too many arguments";
		goto bad;
	}
	if (ti->len > bdev_nr_sectors(disk)) {
		ti->error = "Target is larger than disk_dev";
		goto bad;
	}
	capacity = bdev_nr_sectors(buf) >> ilog2(cs->chunk_sectors);
	if (!capacity) {
		ti->error = "buffer_dev is smaller than one chunk";
		goto bad;
	}
	capacity = min_t(sector_t, capacity, COLO_NO_SLOT - 1);

	mutex_lock(&colo_disks_lock);
	colo = colo_lookup(disk->bd_dev);
	if (colo && colo->parked) {
		r = colo_unpark(ti, colo, disk, buf, ilog2(cs->chunk_sectors));
	} else if (colo) {
		/* A table reload of the same device keeps the buffer and state. */
		if (!colo->nr_secondary) {
			ti->error = "disk_dev's colo-secondary is being removed";
			r = -EBUSY;
		} else if (colo->owner != dm_table_get_md(ti->table)) {
			ti->error = "disk_dev already has a colo-secondary device";
			r = -EBUSY;
		} else if (colo->buffer_dev != buf->bd_dev ||
			   colo->chunk_shift != ilog2(cs->chunk_sectors)) {
			ti->error = "A reload cannot change buffer_dev or chunk_sectors";
		} else {
			refcount_inc(&colo->ref);
			colo->nr_secondary++;
			r = 0;
		}
	} else {
		colo = colo_create(ti, disk, buf, ilog2(cs->chunk_sectors), capacity);
		if (IS_ERR(colo)) {
			ti->error = "Cannot allocate the disk buffer";
			r = PTR_ERR(colo);
		} else {
			list_add(&colo->list, &colo_disks);
			r = 0;
		}
	}
	mutex_unlock(&colo_disks_lock);
	if (r)
		goto bad;
	cs->colo = colo;

	r = dm_set_target_max_io_len(ti, cs->chunk_sectors);
	if (r) {
		ti->error = "Cannot set max_io_len";
		goto bad_colo;
	}
	ti->private = cs;
	ti->per_io_data_size = sizeof(struct colo_io);
	/* Flushes go to both devices: bio 0 to the disk, bio 1 to the buffer. */
	ti->num_flush_bios = 2;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
	ti->num_write_zeroes_bios = 1;
	return 0;

bad_colo:
	colo_secondary_put(colo);
bad:
	dm_put_device(ti, cs->buffer);
bad_buffer:
	dm_put_device(ti, cs->disk);
bad_disk:
	kfree(cs);
	return r;
}

static void secondary_dtr(struct dm_target *ti)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;

	mutex_lock(&colo->ti_lock);
	if (colo->ti == ti)
		colo->ti = NULL;
	mutex_unlock(&colo->ti_lock);

	colo_secondary_put(colo);
	dm_put_device(ti, cs->buffer);
	dm_put_device(ti, cs->disk);
	kfree(cs);
}

/* Remap a bio into disk coordinates, cut at the end of its chunk. */
static void bio_to_disk_coordinates(struct dm_target *ti, struct colo_disk *colo,
				    struct bio *bio)
{
	sector_t sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	sector_t left = chunk_sectors_of(colo) - (sector & (chunk_sectors_of(colo) - 1));

	/* Discards and write-zeroes are not split by max_io_len. */
	if (bio_sectors(bio) > left)
		dm_accept_partial_bio(bio, left);
	bio->bi_iter.bi_sector = sector;
}

static int secondary_map(struct dm_target *ti, struct bio *bio)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

	io->flags = 0;
	io->fill = NULL;
	if (bio->bi_opf & REQ_PREFLUSH && !bio_sectors(bio)) {
		bio_set_dev(bio, dm_bio_get_target_bio_nr(bio) ? colo->buf : colo->disk);
		return DM_MAPIO_REMAPPED;
	}
	bio_to_disk_coordinates(ti, colo, bio);
	/* Standalone is final: dm-linear without the lock. */
	if (READ_ONCE(colo->state) == COLO_STANDALONE) {
		if (bio_op(bio) == REQ_OP_DISCARD && !bdev_max_discard_sectors(colo->disk)) {
			bio_endio(bio);
			return DM_MAPIO_SUBMITTED;
		}
		remap_to_disk(colo, bio);
		return DM_MAPIO_REMAPPED;
	}
	return colo_dispatch(colo, bio);
}

/* Context: bio completion, any (irq) context. */
static int colo_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error,
		       struct colo_disk *colo)
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
		wake_worker(colo);
	if (pe) {
		io->fill = NULL;
		mempool_free(pe, &colo->pending_pool);
		inflight_put(colo);
	}
	if (put)
		inflight_put(colo);
	return DM_ENDIO_DONE;
}

static int secondary_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct colo_secondary *cs = ti->private;

	return colo_end_io(ti, bio, error, cs->colo);
}

static void secondary_postsuspend(struct dm_target *ti)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;

	/* No merge I/O while suspended. */
	spin_lock_irq(&colo->lock);
	colo->merge_paused = true;
	spin_unlock_irq(&colo->lock);
	wait_event(colo->inflight_wait, !READ_ONCE(colo->merge_inflight));
}

static void secondary_resume(struct dm_target *ti)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;

	mutex_lock(&colo->ti_lock);
	colo->ti = ti;
	mutex_unlock(&colo->ti_lock);
	spin_lock_irq(&colo->lock);
	colo->merge_paused = false;
	spin_unlock_irq(&colo->lock);
	wake_worker(colo);
}

static void secondary_status(struct dm_target *ti, status_type_t type,
			     unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&colo->lock);
		DMEMIT("%s %llu %u/%u %u/%u %llu %llu %s",
		       colo_state_names[colo->state], colo->epoch,
		       colo_buffer_count(colo->buffer), colo_buffer_capacity(colo->buffer),
		       colo->state == COLO_MERGING || colo->state == COLO_STANDALONE ?
				colo->merge_done : 0,
		       colo->state == COLO_MERGING || colo->state == COLO_STANDALONE ?
				colo_buffer_count(colo->buffer) : 0,
		       colo->nr_copies, colo->nr_secondary_writes,
		       colo_error_names[colo->error]);
		spin_unlock_irq(&colo->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u", cs->disk->name, cs->buffer->name, cs->chunk_sectors);
		if (cs->opt_group)
			DMEMIT(" 0");
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",state=%s;", colo_state_names[READ_ONCE(colo->state)]);
		break;
	}
}

static int secondary_message(struct dm_target *ti, unsigned int argc, char **argv,
			     char *result, unsigned int maxlen)
{
	struct colo_secondary *cs = ti->private;
	struct colo_disk *colo = cs->colo;
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
		r = quiesce_begin(colo);
		if (r)
			goto out;
		spin_lock_irq(&colo->lock);
		colo_buffer_drop(colo->buffer);
		colo->state = COLO_RUNNING;
		colo->error = COLO_ERR_NONE;
		spin_unlock_irq(&colo->lock);
		quiesce_end(colo);
	} else if (!strcasecmp(argv[0], "checkpoint") || !strcasecmp(argv[0], "stop")) {
		bool stop = !strcasecmp(argv[0], "stop");

		if (state != COLO_RUNNING) {
			DMERR("%pg: %s: state is %s, not running%s", colo->disk, argv[0],
			      colo_state_names[state],
			      state == COLO_BROKEN ? " (buffer broken: fail over or remove)" : "");
			r = -EINVAL;
			goto out;
		}
		r = quiesce_begin(colo);
		if (r)
			goto out;
		spin_lock_irq(&colo->lock);
		colo_buffer_drop(colo->buffer);
		if (stop)
			colo->state = COLO_IDLE;
		else
			colo->epoch++;
		spin_unlock_irq(&colo->lock);
		quiesce_end(colo);
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
			wake_worker(colo);
		}
	} else {
		DMERR("%pg: unknown message '%s'", colo->disk, argv[0]);
		r = -EINVAL;
		goto out;
	}
	dm_table_event(ti->table);
out:
	mutex_unlock(&colo->msg_lock);
	return r;
}

static int secondary_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				     void *data)
{
	struct colo_secondary *cs = ti->private;
	int r;

	r = fn(ti, cs->disk, 0, ti->len, data);
	if (!r)
		r = fn(ti, cs->buffer, 0, bdev_nr_sectors(cs->buffer->bdev), data);
	return r;
}

static void secondary_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct colo_secondary *cs = ti->private;
	unsigned int chunk_bytes = cs->chunk_sectors << SECTOR_SHIFT;

	/* Writes smaller than a chunk cost a chunk copy the first time. */
	limits->io_opt = chunk_bytes;
	/* Discards are handled here (no-op until standalone): always allowed. */
	limits->max_hw_discard_sectors = cs->chunk_sectors;
	limits->max_discard_sectors = cs->chunk_sectors;
	limits->discard_granularity = chunk_bytes;
}

static struct target_type colo_secondary_target = {
	.name = "colo-secondary",
	.version = {1, 2, 0},
	.module = THIS_MODULE,
	.ctr = secondary_ctr,
	.dtr = secondary_dtr,
	.map = secondary_map,
	.end_io = secondary_end_io,
	.postsuspend = secondary_postsuspend,
	.resume = secondary_resume,
	.status = secondary_status,
	.message = secondary_message,
	.iterate_devices = secondary_iterate_devices,
	.io_hints = secondary_io_hints,
};

/* colo-ingress */
static int ingress_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct colo_ingress *ci;
	struct colo_disk *colo;
	int r;

	if (argc != 1) {
		ti->error = "Usage: <disk_dev>";
		return -EINVAL;
	}
	ci = kzalloc(sizeof(*ci), GFP_KERNEL);
	if (!ci) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &ci->disk);
	if (r) {
		ti->error = "Cannot open disk_dev";
		goto bad;
	}
	r = -EINVAL;
	if (ti->len > bdev_nr_sectors(ci->disk->bdev)) {
		ti->error = "Target is larger than disk_dev";
		goto bad_put;
	}
	mutex_lock(&colo_disks_lock);
	colo = colo_lookup(ci->disk->bdev->bd_dev);
	/* Parked, or being removed: it would refuse every bio. */
	if (colo && !colo->nr_secondary)
		colo = NULL;
	if (colo)
		refcount_inc(&colo->ref);
	mutex_unlock(&colo_disks_lock);
	if (!colo) {
		ti->error = "No colo-secondary on disk_dev: create it first";
		goto bad_put;
	}
	ci->colo = colo;
	r = dm_set_target_max_io_len(ti, chunk_sectors_of(colo));
	if (r) {
		ti->error = "Cannot set max_io_len";
		colo_put(colo);
		goto bad_put;
	}
	ti->private = ci;
	ti->per_io_data_size = sizeof(struct colo_io);
	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_write_zeroes_bios = 1;
	return 0;

bad_put:
	dm_put_device(ti, ci->disk);
bad:
	kfree(ci);
	return r;
}

static void ingress_dtr(struct dm_target *ti)
{
	struct colo_ingress *ci = ti->private;

	colo_put(ci->colo);
	dm_put_device(ti, ci->disk);
	kfree(ci);
}

static int ingress_map(struct dm_target *ti, struct bio *bio)
{
	struct colo_ingress *ci = ti->private;
	struct colo_disk *colo = ci->colo;
	struct colo_io *io = dm_per_bio_data(bio, sizeof(struct colo_io));

	io->flags = COLO_IO_INGRESS;
	io->fill = NULL;
	if (bio->bi_opf & REQ_PREFLUSH && !bio_sectors(bio)) {
		if (READ_ONCE(colo->state) >= COLO_MERGING || READ_ONCE(colo->detached))
			return DM_MAPIO_KILL;
		bio_set_dev(bio, ci->disk->bdev);
		return DM_MAPIO_REMAPPED;
	}
	bio_to_disk_coordinates(ti, colo, bio);
	return colo_dispatch(colo, bio);
}

static int ingress_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct colo_ingress *ci = ti->private;

	return colo_end_io(ti, bio, error, ci->colo);
}

static void ingress_status(struct dm_target *ti, status_type_t type,
			   unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct colo_ingress *ci = ti->private;
	struct colo_disk *colo = ci->colo;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&colo->lock);
		DMEMIT("%s %llu %llu",
		       colo->detached ? "detached" :
		       colo->state >= COLO_MERGING ? "fenced" : colo_state_names[colo->state],
		       colo->nr_ingress_writes, colo->nr_ingress_refused);
		spin_unlock_irq(&colo->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s", ci->disk->name);
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(";");
		break;
	}
}

static int ingress_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				   void *data)
{
	struct colo_ingress *ci = ti->private;

	return fn(ti, ci->disk, 0, ti->len, data);
}

static struct target_type colo_ingress_target = {
	.name = "colo-ingress",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = ingress_ctr,
	.dtr = ingress_dtr,
	.map = ingress_map,
	.end_io = ingress_end_io,
	.status = ingress_status,
	.iterate_devices = ingress_iterate_devices,
};

/* Module */
static int __init dm_colo_init(void)
{
	int r;

	colo_pending_cache = KMEM_CACHE(colo_pending, 0);
	if (!colo_pending_cache)
		return -ENOMEM;
	r = dm_register_target(&colo_secondary_target);
	if (r)
		goto bad_secondary;
	r = dm_register_target(&colo_ingress_target);
	if (r)
		goto bad_ingress;
	r = colo_primary_register();
	if (r)
		goto bad_primary;
	return 0;

bad_primary:
	dm_unregister_target(&colo_ingress_target);
bad_ingress:
	dm_unregister_target(&colo_secondary_target);
bad_secondary:
	kmem_cache_destroy(colo_pending_cache);
	return r;
}

static void __exit dm_colo_exit(void)
{
	colo_primary_unregister();
	dm_unregister_target(&colo_ingress_target);
	dm_unregister_target(&colo_secondary_target);
	kmem_cache_destroy(colo_pending_cache);
}

module_init(dm_colo_init);
module_exit(dm_colo_exit);

MODULE_DESCRIPTION(DM_NAME " COLO block replication targets");
MODULE_AUTHOR("dm-colo developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(DM_COLO_RELEASE);
/* Device-mapper loads a target's module as "dm-<target name>". */
MODULE_ALIAS("dm-colo-secondary");
MODULE_ALIAS("dm-colo-ingress");
MODULE_ALIAS("dm-colo-primary");
