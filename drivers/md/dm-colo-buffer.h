/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo disk buffer: which disk chunks are buffered this epoch, in which
 * slot of the buffer device, and the copies that fill and empty the slots.
 *
 * Slots are handed out in order within an epoch and never freed before the
 * next checkpoint, so the index is an array of 16-byte slot entries plus a
 * hash table whose buckets carry an epoch tag: dropping the whole buffer is
 * one increment, whatever its size.
 */
#ifndef DM_COLO_BUFFER_H
#define DM_COLO_BUFFER_H

#include <linux/blkdev.h>
#include <linux/dm-kcopyd.h>
#include <linux/types.h>

#define COLO_NO_SLOT	U32_MAX

struct colo_buffer;

/*
 * Create the buffer for a disk of disk_sectors in chunks of
 * 1 << chunk_shift sectors, with capacity slots on buf.
 * Context: process, may sleep. Returns an ERR_PTR on failure.
 */
struct colo_buffer *colo_buffer_create(struct block_device *disk, sector_t disk_sectors,
				       struct block_device *buf, unsigned int chunk_shift,
				       u32 capacity);

/* Context: process, may sleep; no copy may be in flight. */
void colo_buffer_destroy(struct colo_buffer *b);

/*
 * The devices were opened again (a kept buffer taken over by a new target):
 * copy through @disk and @buf from now on. -EINVAL when the disk's size
 * has changed since the index was built, or @buf is now too small for its
 * slots. Context: any; no copy may be in flight.
 */
int colo_buffer_reattach(struct colo_buffer *b, struct block_device *disk,
			 struct block_device *buf);

/*
 * The index. None of these sleep or take a lock: the caller serialises all
 * of them (and reserve/commit/drop against each other) with its own lock;
 * they are safe in any context.
 */

/* The committed slot holding @chunk this epoch, or COLO_NO_SLOT. */
u32 colo_buffer_lookup(struct colo_buffer *b, u64 chunk);

/*
 * Take the next free slot. -ENOSPC when the buffer is full; -EAGAIN when
 * the slot's index page is not allocated yet: call colo_buffer_grow() from a
 * context that may sleep, then try again.
 */
int colo_buffer_reserve(struct colo_buffer *b, u32 *slot);

/*
 * A reserved @slot that will never be committed (its fill failed): the next
 * reserve hands it out again, so failed fills do not use up the buffer.
 */
void colo_buffer_release(struct colo_buffer *b, u32 slot);

/* Make a reserved @slot hold @chunk: lookups find it from now on. */
void colo_buffer_commit(struct colo_buffer *b, u64 chunk, u32 slot);

/* Checkpoint: forget every slot. O(1). */
void colo_buffer_drop(struct colo_buffer *b);

u32 colo_buffer_capacity(struct colo_buffer *b);
/* Chunks committed this epoch. */
u32 colo_buffer_count(struct colo_buffer *b);
/* Slots reserved this epoch (committed or not). */
u32 colo_buffer_reserved(struct colo_buffer *b);

/* The chunk a committed slot holds; false for a slot never committed. */
bool colo_buffer_slot_chunk(struct colo_buffer *b, u32 slot, u64 *chunk);
void colo_buffer_set_merged(struct colo_buffer *b, u32 slot);
bool colo_buffer_merged(struct colo_buffer *b, u32 slot);

/* First sector of @slot on the buffer device. */
sector_t colo_buffer_slot_sector(struct colo_buffer *b, u32 slot);

/*
 * Allocate the index page for the next reservation.
 * Context: process; may sleep when @gfp allows it. Caller holds no spinlock;
 * safe against concurrent lookups (pages are published before use).
 */
int colo_buffer_grow(struct colo_buffer *b, gfp_t gfp);

/* Merge copies in flight at most, and the longest run of one (1 MiB). */
#define COLO_MERGE_JOBS		16
#define COLO_MERGE_RUN_SECTORS	2048

/*
 * Copies. Starting one may sleep (both dm-kcopyd and dm-io allocate with
 * GFP_NOIO): call from process context without spinlocks held. @done runs
 * once, in process context (kcopyd's, or the merge workqueue's).
 */
/* Disk chunk -> slot: save a chunk's current content. */
void colo_buffer_copy_in(struct colo_buffer *b, u64 chunk, u32 slot,
			 dm_kcopyd_notify_fn done, void *context);
/*
 * Slots -> disk chunks: merge at failover. @nr consecutive slots from @slot
 * hold the @nr consecutive chunks from @chunk.
 */
void colo_buffer_copy_out(struct colo_buffer *b, u64 chunk, u32 slot, unsigned int nr,
			  dm_kcopyd_notify_fn done, void *context);

/*
 * The merge copies a run through one of COLO_MERGE_JOBS buffers of its own
 * with dm-io: dm-kcopyd allocates and frees its pages for every copy, which
 * made the merge half as fast as a plain copy. prepare allocates them (at
 * failover; without memory the merge falls back to dm-kcopyd), release
 * frees them (the merge has ended: no copy in flight).
 * Context: process, may sleep.
 */
void colo_buffer_merge_prepare(struct colo_buffer *b);
void colo_buffer_merge_release(struct colo_buffer *b);

#endif
