// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo disk buffer: the chunk index and the copies into and out of the
 * buffer device. See dm-colo-buffer.h for the contract of each function.
 */
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/device-mapper.h>
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "dm-colo-buffer.h"
#include "dm-colo-compat.h"

#define DM_MSG_PREFIX "colo"

#define COLO_SLOT_COMMITTED	BIT(0)
#define COLO_SLOT_MERGED	BIT(1)

/* One per slot of the buffer device: 16 bytes. */
struct colo_slot {
	u64 chunk;
	u32 next;		/* next slot in the hash chain */
	u32 flags;
};

#define SLOTS_PER_PAGE	(PAGE_SIZE / sizeof(struct colo_slot))

/* A chain is valid only while its tag is the buffer's current tag. */
struct colo_bucket {
	u32 head;
	u32 tag;
};

struct colo_buffer {
	struct block_device *disk;
	struct block_device *buf;
	sector_t disk_sectors;
	unsigned int chunk_shift;
	u32 capacity;

	/* Slot entries, one page at a time as slots are first used. */
	struct colo_slot **pages;
	u32 nr_pages;

	struct colo_bucket *buckets;
	unsigned int hash_bits;
	u32 tag;

	u32 reserved;		/* slots handed out this epoch */
	u32 count;		/* of which committed */
	u32 released;		/* first of the slots whose fill failed, or COLO_NO_SLOT */

	struct dm_kcopyd_client *kc;

	/* Merge copies: each through a buffer of its own, reused. */
	struct dm_io_client *io_client;
	struct workqueue_struct *merge_wq;
	spinlock_t merge_lock;		/* protects merge_free */
	struct list_head merge_free;
	struct colo_merge_copy *merge_copies;
};

/* One merge copy: read the slots into @data, then write them to the disk. */
struct colo_merge_copy {
	struct work_struct work;
	struct list_head free;
	struct colo_buffer *b;
	void *data;
	struct dm_io_region from, to;
	dm_kcopyd_notify_fn done;
	void *context;
};

static struct colo_slot *slot_entry(struct colo_buffer *b, u32 slot)
{
	return &READ_ONCE(b->pages[slot / SLOTS_PER_PAGE])[slot % SLOTS_PER_PAGE];
}

static struct colo_bucket *chunk_bucket(struct colo_buffer *b, u64 chunk)
{
	return &b->buckets[hash_64(chunk, b->hash_bits)];
}

static void merge_copy_work(struct work_struct *work);

/*
 * The merge's dm-io client and workqueue; its buffers come at failover.
 * A copier of its own beside dm-kcopyd because it earns its place: with a
 * buffer per copy (16 x 1 MiB, from failover to the end of the merge) the
 * merge runs at 1.38x `dd` with O_DIRECT in `make bench`; through
 * dm-kcopyd, which allocates and frees its pages for every job, it ran at
 * 0.4-0.5x `dd`. dm-kcopyd still copies what does not fit a buffer (chunks
 * over 1 MiB) and what finds none free (bench/README.md, test 017).
 */
static int merge_copies_create(struct colo_buffer *b)
{
	unsigned int i;

	spin_lock_init(&b->merge_lock);
	INIT_LIST_HEAD(&b->merge_free);
	b->io_client = dm_io_client_create();
	if (IS_ERR(b->io_client)) {
		int r = PTR_ERR(b->io_client);

		b->io_client = NULL;
		return r;
	}
	b->merge_wq = alloc_workqueue("dm-colo-merge", WQ_MEM_RECLAIM | WQ_UNBOUND,
				      COLO_MERGE_JOBS);
	if (!b->merge_wq)
		return -ENOMEM;
	b->merge_copies = kcalloc(COLO_MERGE_JOBS, sizeof(*b->merge_copies), GFP_KERNEL);
	if (!b->merge_copies)
		return -ENOMEM;
	for (i = 0; i < COLO_MERGE_JOBS; i++) {
		b->merge_copies[i].b = b;
		INIT_WORK(&b->merge_copies[i].work, merge_copy_work);
	}
	return 0;
}

static void merge_copies_destroy(struct colo_buffer *b)
{
	if (b->merge_wq)
		destroy_workqueue(b->merge_wq);
	if (b->merge_copies)
		colo_buffer_merge_release(b);
	kfree(b->merge_copies);
	if (b->io_client)
		dm_io_client_destroy(b->io_client);
}

void colo_buffer_merge_prepare(struct colo_buffer *b)
{
	unsigned int i;

	for (i = 0; i < COLO_MERGE_JOBS; i++) {
		struct colo_merge_copy *mc = &b->merge_copies[i];

		if (mc->data)
			continue;
		mc->data = vmalloc(COLO_MERGE_RUN_SECTORS << SECTOR_SHIFT);
		if (!mc->data)
			break;
		spin_lock_irq(&b->merge_lock);
		list_add(&mc->free, &b->merge_free);
		spin_unlock_irq(&b->merge_lock);
	}
	if (i < COLO_MERGE_JOBS)
		DMWARN("%pg: no memory for %u merge buffers: dm-kcopyd merges the rest",
		       b->disk, COLO_MERGE_JOBS - i);
}

void colo_buffer_merge_release(struct colo_buffer *b)
{
	struct colo_merge_copy *mc, *tmp;
	LIST_HEAD(free);

	spin_lock_irq(&b->merge_lock);
	list_splice_init(&b->merge_free, &free);
	spin_unlock_irq(&b->merge_lock);
	list_for_each_entry_safe(mc, tmp, &free, free) {
		list_del(&mc->free);
		vfree(mc->data);
		mc->data = NULL;
	}
}

struct colo_buffer *colo_buffer_create(struct block_device *disk, sector_t disk_sectors,
				       struct block_device *buf, unsigned int chunk_shift,
				       u32 capacity)
{
	struct colo_buffer *b;
	unsigned long nr_buckets;
	int r = -ENOMEM;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return ERR_PTR(-ENOMEM);
	b->disk = disk;
	b->buf = buf;
	b->disk_sectors = disk_sectors;
	b->chunk_shift = chunk_shift;
	b->capacity = capacity;
	b->tag = 1;
	b->released = COLO_NO_SLOT;

	b->nr_pages = DIV_ROUND_UP(capacity, SLOTS_PER_PAGE);
	b->pages = kvcalloc(b->nr_pages, sizeof(*b->pages), GFP_KERNEL);
	if (!b->pages)
		goto bad;

	/* At most two chunks per chain when full, up to 32 MiB of buckets. */
	nr_buckets = roundup_pow_of_two(clamp_t(u32, capacity / 2, 64, 1U << 22));
	b->hash_bits = ilog2(nr_buckets);
	b->buckets = kvcalloc(nr_buckets, sizeof(*b->buckets), GFP_KERNEL);
	if (!b->buckets)
		goto bad;

	b->kc = dm_kcopyd_client_create(NULL);
	if (IS_ERR(b->kc)) {
		r = PTR_ERR(b->kc);
		b->kc = NULL;
		goto bad;
	}
	r = merge_copies_create(b);
	if (r)
		goto bad;
	r = colo_buffer_grow(b, GFP_KERNEL);
	if (r)
		goto bad;
	return b;
bad:
	colo_buffer_destroy(b);
	return ERR_PTR(r);
}

int colo_buffer_reattach(struct colo_buffer *b, struct block_device *disk,
			 struct block_device *buf)
{
	if (bdev_nr_sectors(disk) != b->disk_sectors ||
	    (bdev_nr_sectors(buf) >> b->chunk_shift) < b->capacity)
		return -EINVAL;
	b->disk = disk;
	b->buf = buf;
	return 0;
}

void colo_buffer_destroy(struct colo_buffer *b)
{
	u32 i;

	merge_copies_destroy(b);
	if (b->kc)
		dm_kcopyd_client_destroy(b->kc);
	if (b->pages)
		for (i = 0; i < b->nr_pages; i++)
			free_page((unsigned long)b->pages[i]);
	kvfree(b->pages);
	kvfree(b->buckets);
	kfree(b);
}

int colo_buffer_grow(struct colo_buffer *b, gfp_t gfp)
{
	u32 index = READ_ONCE(b->reserved) / SLOTS_PER_PAGE;
	struct colo_slot *page;

	if (index >= b->nr_pages || READ_ONCE(b->pages[index]))
		return 0;
	page = (struct colo_slot *)get_zeroed_page(gfp);
	if (!page)
		return -ENOMEM;
	/* cmpxchg orders the zeroing before the pointer is seen. */
	if (cmpxchg(&b->pages[index], NULL, page))
		free_page((unsigned long)page);
	return 0;
}

u32 colo_buffer_lookup(struct colo_buffer *b, u64 chunk)
{
	struct colo_bucket *bucket = chunk_bucket(b, chunk);
	struct colo_slot *e;
	u32 slot;

	if (bucket->tag != b->tag)
		return COLO_NO_SLOT;
	for (slot = bucket->head; slot != COLO_NO_SLOT; slot = e->next) {
		e = slot_entry(b, slot);
		if (e->chunk == chunk)
			return slot;
	}
	return COLO_NO_SLOT;
}

int colo_buffer_reserve(struct colo_buffer *b, u32 *slot)
{
	struct colo_slot *page;

	if (b->released != COLO_NO_SLOT) {
		*slot = b->released;
		b->released = slot_entry(b, *slot)->next;
		return 0;
	}
	if (b->reserved >= b->capacity)
		return -ENOSPC;
	page = READ_ONCE(b->pages[b->reserved / SLOTS_PER_PAGE]);
	if (!page)
		return -EAGAIN;
	page[b->reserved % SLOTS_PER_PAGE].flags = 0;
	*slot = b->reserved++;
	return 0;
}

void colo_buffer_release(struct colo_buffer *b, u32 slot)
{
	struct colo_slot *e = slot_entry(b, slot);

	e->flags = 0;
	e->next = b->released;
	b->released = slot;
}

void colo_buffer_commit(struct colo_buffer *b, u64 chunk, u32 slot)
{
	struct colo_bucket *bucket = chunk_bucket(b, chunk);
	struct colo_slot *e = slot_entry(b, slot);

	if (bucket->tag != b->tag) {
		bucket->tag = b->tag;
		bucket->head = COLO_NO_SLOT;
	}
	e->chunk = chunk;
	e->flags = COLO_SLOT_COMMITTED;
	e->next = bucket->head;
	bucket->head = slot;
	b->count++;
}

void colo_buffer_drop(struct colo_buffer *b)
{
	b->reserved = 0;
	b->count = 0;
	b->released = COLO_NO_SLOT;
	/* Once per 2^32 checkpoints the tags wrap: clear them for real. */
	if (++b->tag == 0) {
		memset(b->buckets, 0, sizeof(*b->buckets) << b->hash_bits);
		b->tag = 1;
	}
}

u32 colo_buffer_capacity(struct colo_buffer *b)
{
	return b->capacity;
}

u32 colo_buffer_count(struct colo_buffer *b)
{
	return b->count;
}

u32 colo_buffer_reserved(struct colo_buffer *b)
{
	return b->reserved;
}

bool colo_buffer_slot_chunk(struct colo_buffer *b, u32 slot, u64 *chunk)
{
	struct colo_slot *e;

	if (slot >= b->reserved)
		return false;
	e = slot_entry(b, slot);
	if (!(e->flags & COLO_SLOT_COMMITTED))
		return false;
	*chunk = e->chunk;
	return true;
}

void colo_buffer_set_merged(struct colo_buffer *b, u32 slot)
{
	slot_entry(b, slot)->flags |= COLO_SLOT_MERGED;
}

bool colo_buffer_merged(struct colo_buffer *b, u32 slot)
{
	return slot_entry(b, slot)->flags & COLO_SLOT_MERGED;
}

sector_t colo_buffer_slot_sector(struct colo_buffer *b, u32 slot)
{
	return (sector_t)slot << b->chunk_shift;
}

/* The disk region of @nr chunks from @chunk; the disk's last chunk may be short. */
static void chunk_regions(struct colo_buffer *b, u64 chunk, u32 slot, unsigned int nr,
			  struct dm_io_region *disk, struct dm_io_region *buf)
{
	sector_t start = (sector_t)chunk << b->chunk_shift;

	disk->bdev = b->disk;
	disk->sector = start;
	disk->count = min_t(sector_t, (sector_t)nr << b->chunk_shift, b->disk_sectors - start);
	buf->bdev = b->buf;
	buf->sector = colo_buffer_slot_sector(b, slot);
	buf->count = disk->count;
}

void colo_buffer_copy_in(struct colo_buffer *b, u64 chunk, u32 slot,
			 dm_kcopyd_notify_fn done, void *context)
{
	struct dm_io_region disk, buf;

	chunk_regions(b, chunk, slot, 1, &disk, &buf);
	dm_kcopyd_copy(b->kc, &disk, 1, &buf, 0, done, context);
}

/* A merge copy, in the merge workqueue: read the slots, write the chunks. */
static void merge_copy_work(struct work_struct *work)
{
	struct colo_merge_copy *mc = container_of(work, struct colo_merge_copy, work);
	struct colo_buffer *b = mc->b;
	struct dm_io_request req = {
		.bi_opf = REQ_OP_READ,
		.mem.type = DM_IO_VMA,
		.mem.ptr.vma = mc->data,
		.client = b->io_client,
	};
	unsigned long read_err = 0, write_err = 0;
	dm_kcopyd_notify_fn done = mc->done;
	void *context = mc->context;

	if (colo_dm_io(&req, 1, &mc->from, &read_err) && !read_err)
		read_err = 1;
	if (!read_err) {
		req.bi_opf = REQ_OP_WRITE;
		if (colo_dm_io(&req, 1, &mc->to, &write_err) && !write_err)
			write_err = 1;
	}
	/* Free again before @done: it may start the next copy. */
	spin_lock_irq(&b->merge_lock);
	list_add(&mc->free, &b->merge_free);
	spin_unlock_irq(&b->merge_lock);
	done(read_err ? 1 : 0, write_err, context);
}

void colo_buffer_copy_out(struct colo_buffer *b, u64 chunk, u32 slot, unsigned int nr,
			  dm_kcopyd_notify_fn done, void *context)
{
	struct colo_merge_copy *mc = NULL;
	struct dm_io_region disk, buf;

	chunk_regions(b, chunk, slot, nr, &disk, &buf);
	/* A run is at least one chunk: larger chunks go to dm-kcopyd. */
	if (buf.count <= COLO_MERGE_RUN_SECTORS) {
		spin_lock_irq(&b->merge_lock);
		mc = list_first_entry_or_null(&b->merge_free, struct colo_merge_copy, free);
		if (mc)
			list_del(&mc->free);
		spin_unlock_irq(&b->merge_lock);
	}
	if (!mc) {
		dm_kcopyd_copy(b->kc, &buf, 1, &disk, 0, done, context);
		return;
	}
	mc->from = buf;
	mc->to = disk;
	mc->done = done;
	mc->context = context;
	queue_work(b->merge_wq, &mc->work);
}
