// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: the registry of the secondary node's disk objects. The targets
 * find a disk object through the disk it sits on (dm-snapshot's origin
 * lookup is the model): colo-secondary's instances share one across table
 * reloads of their device, colo-ingress attaches to it. A disk whose merge
 * is stalled when its last colo-secondary goes is parked here: kept, with
 * the module pinned and its devices held open, for the next colo-secondary
 * over the same devices.
 *
 * Locking: colo_disks_lock (mutex) protects the list, and each disk's
 * nr_secondary, owner and parked; it is taken outside every lock of the
 * disk object (dm-colo-disk.c) and never held across colo_disk_detach().
 *
 * Context: the gets and puts are called by the targets' constructors and
 * destructors only: process context, may sleep.
 */
#include <linux/device-mapper.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

#include "dm-colo-disk.h"

#define DM_MSG_PREFIX "colo"

static LIST_HEAD(colo_disks);
static DEFINE_MUTEX(colo_disks_lock);

static struct colo_disk *colo_disk_lookup(dev_t disk_dev)
{
	struct colo_disk *colo;

	lockdep_assert_held(&colo_disks_lock);
	list_for_each_entry(colo, &colo_disks, list)
		if (colo->disk_dev == disk_dev)
			return colo;
	return NULL;
}

/*
 * A parked disk holds its disk and buffer devices open, not exclusively
 * (the next colo-secondary claims them), so that neither can be removed
 * while the buffer holds the only copy of writes the disk lacks. Called
 * in the last dtr, while the table still holds them: no moment without.
 */
static void colo_disk_hold(struct colo_disk *colo)
{
	int r = colo_bdev_get(colo->disk_dev, &colo->held_disk);

	if (!r)
		r = colo_bdev_get(colo->buffer_dev, &colo->held_buf);
	if (r)
		DMWARN("%pg: cannot hold the kept devices open (%d): do not remove them",
		       colo->disk, r);
}

static void colo_disk_unhold(struct colo_disk *colo)
{
	colo_bdev_put(&colo->held_disk);
	colo_bdev_put(&colo->held_buf);
}

/*
 * A colo-secondary instance is gone (dtr, or ctr's error path). The last
 * one detaches the disk, which is then kept or freed.
 */
void colo_disk_put_secondary(struct colo_disk *colo)
{
	bool last, keep = false;

	mutex_lock(&colo_disks_lock);
	last = !--colo->nr_secondary;
	mutex_unlock(&colo_disks_lock);
	if (last) {
		/* Still listed: a ctr over the disk meanwhile gets -EBUSY. */
		keep = colo_disk_detach(colo);
		if (keep)
			colo_disk_hold(colo);
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
		colo_disk_put(colo);
}

/*
 * A new colo-secondary takes over a parked disk: the same devices and
 * chunk size, the state (merging, the failed chunks) and the buffer.
 * Context: ctr, colo_disks_lock held.
 */
static int colo_disk_unpark(struct dm_target *ti, struct colo_disk *colo,
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
	/* The new table holds the devices now. */
	colo_disk_unhold(colo);
	module_put(THIS_MODULE);
	DMINFO("%pg: kept buffer taken over, %u chunks to merge: send failover to retry",
	       disk, colo_buffer_count(colo->buffer) - colo->merge_done);
	return 0;
}

/*
 * The disk object for a colo-secondary instance: a reload of the same
 * device shares it, a parked one is taken over, else a new one. Context:
 * ctr. ERR_PTR with ti->error set on failure.
 */
struct colo_disk *colo_disk_get_secondary(struct dm_target *ti, struct block_device *disk,
					  struct block_device *buf, unsigned int chunk_shift,
					  u32 capacity)
{
	struct colo_disk *colo;
	int r = -EINVAL;

	mutex_lock(&colo_disks_lock);
	colo = colo_disk_lookup(disk->bd_dev);
	if (colo && colo->parked) {
		r = colo_disk_unpark(ti, colo, disk, buf, chunk_shift);
	} else if (colo) {
		/* A table reload of the same device keeps the buffer and state. */
		if (!colo->nr_secondary) {
			ti->error = "disk_dev's colo-secondary is being removed";
			r = -EBUSY;
		} else if (colo->owner != dm_table_get_md(ti->table)) {
			ti->error = "disk_dev already has a colo-secondary device";
			r = -EBUSY;
		} else if (colo->buffer_dev != buf->bd_dev || colo->chunk_shift != chunk_shift) {
			ti->error = "A reload cannot change buffer_dev or chunk_sectors";
		} else {
			refcount_inc(&colo->ref);
			colo->nr_secondary++;
			r = 0;
		}
	} else {
		colo = colo_disk_create(ti, disk, buf, chunk_shift, capacity);
		if (IS_ERR(colo)) {
			ti->error = "Cannot allocate the disk buffer";
			r = PTR_ERR(colo);
		} else {
			list_add(&colo->list, &colo_disks);
			r = 0;
		}
	}
	mutex_unlock(&colo_disks_lock);
	return r ? ERR_PTR(r) : colo;
}

/*
 * The disk object for a colo-ingress over @disk_dev, or NULL when it has no
 * live colo-secondary: none, parked, or being removed (it would refuse
 * every bio). Context: ctr.
 */
struct colo_disk *colo_disk_get_ingress(dev_t disk_dev)
{
	struct colo_disk *colo;

	mutex_lock(&colo_disks_lock);
	colo = colo_disk_lookup(disk_dev);
	if (colo && !colo->nr_secondary)
		colo = NULL;
	if (colo)
		refcount_inc(&colo->ref);
	mutex_unlock(&colo_disks_lock);
	return colo;
}
