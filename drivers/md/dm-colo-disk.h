/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: the secondary node's disk object, shared by colo-secondary and
 * colo-ingress (dm-colo-secondary.c) and driven by dm-colo-disk.c. One per
 * secondary disk: its state, its buffer and the per-chunk tracking of the
 * I/O of both targets; the targets find it in dm-colo-disk-registry.c.
 * The locks and the context of each call are in dm-colo-disk.c's header;
 * the functions below say what they need.
 */
#ifndef DM_COLO_DISK_H
#define DM_COLO_DISK_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "dm-colo-buffer.h"
#include "dm-colo-compat.h"

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

enum colo_error {
	COLO_ERR_NONE,
	COLO_ERR_BUFFER_FULL,	/* no free slot for a chunk */
	COLO_ERR_COPY,		/* saving a chunk into the buffer failed */
	COLO_ERR_BUFFER_IO,	/* a read or write on the buffer failed */
	COLO_ERR_MERGE,		/* a merge copy failed */
	COLO_ERR_NOMEM,		/* no memory for the index */
	COLO_ERR_DISK_IO,	/* a primary write to the disk failed */
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
	struct list_head list;		/* in the registry's colo_disks */
	refcount_t ref;			/* target instances of both kinds */
	unsigned int nr_secondary;	/* colo-secondary instances (reloads overlap) */
	/*
	 * The last colo-secondary went away with secondary writes still
	 * unmerged: kept, with the module pinned, for the next colo-secondary
	 * over the same devices, which it holds open meanwhile (held_disk,
	 * held_buf) so that they cannot be removed. disk and buf, and the
	 * buffer's own, are not used meanwhile (a colo-ingress fails its bios
	 * before any remap) until colo_disk_unpark() sets them again.
	 */
	bool parked;
	struct colo_bdev_ref held_disk;
	struct colo_bdev_ref held_buf;
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

extern const char * const colo_state_names[];
extern const char * const colo_error_names[];

static inline sector_t colo_chunk_sectors(struct colo_disk *colo)
{
	return (sector_t)1 << colo->chunk_shift;
}

static inline void colo_remap_to_disk(struct colo_disk *colo, struct bio *bio)
{
	bio_set_dev(bio, colo->disk);
}

/* Module init and exit: the cache of pending chunks. */
int colo_disk_init(void);
void colo_disk_exit(void);

/*
 * The disk registry (dm-colo-disk-registry.c), for the constructors and
 * destructors (process context, may sleep). Each get is paired with a put
 * of the same kind.
 */
struct colo_disk *colo_disk_get_secondary(struct dm_target *ti, struct block_device *disk,
					  struct block_device *buf, unsigned int chunk_shift,
					  u32 capacity);
struct colo_disk *colo_disk_get_ingress(dev_t disk_dev);
/* Drop a colo-ingress's reference. */
void colo_disk_put(struct colo_disk *colo);
/* Drop a colo-secondary instance: the last one detaches (and may park). */
void colo_disk_put_secondary(struct colo_disk *colo);

/*
 * The object's life, for the registry: create, and detach when the last
 * colo-secondary is gone (true: keep it, unmerged writes in its buffer).
 */
struct colo_disk *colo_disk_create(struct dm_target *ti, struct block_device *disk,
				   struct block_device *buf, unsigned int chunk_shift,
				   u32 capacity);
bool colo_disk_detach(struct colo_disk *colo);

/* The I/O path: map (submitter's context) and end_io (any context). */
int colo_disk_map(struct colo_disk *colo, struct bio *bio);
int colo_disk_end_io(struct colo_disk *colo, struct bio *bio, blk_status_t *error);

/* Queue the worker: deferred bios and the merge. Any context. */
void colo_disk_kick(struct colo_disk *colo);

/* colo-secondary's messages: start, checkpoint, stop, failover. */
int colo_disk_message(struct colo_disk *colo, unsigned int argc, char **argv);

#endif
