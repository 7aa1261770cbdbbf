// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: the secondary node's targets.
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
 * Both targets are thin: they parse their tables, remap into disk
 * coordinates and hand every bio, completion and message to the struct
 * colo_disk they share (dm-colo-disk.c, where its locks are described).
 *
 * Context: ctr, dtr, message, postsuspend and resume run in process
 * context and may sleep; map in the submitter's (it never waits); end_io
 * in any, including hard interrupts. postsuspend waits for the merge's
 * copies in flight; the last dtr of a colo-secondary waits for its I/O.
 *
 * Documentation/admin-guide/device-mapper/dm-colo.rst has the details.
 */
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "dm-colo.h"
#include "dm-colo-disk.h"

#define DM_MSG_PREFIX "colo"

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

	colo = colo_disk_get_secondary(ti, disk, buf, ilog2(cs->chunk_sectors), capacity);
	if (IS_ERR(colo)) {
		r = PTR_ERR(colo);
		goto bad;
	}
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
	colo_disk_put_secondary(colo);
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

	colo_disk_put_secondary(colo);
	dm_put_device(ti, cs->buffer);
	dm_put_device(ti, cs->disk);
	kfree(cs);
}

/* Remap a bio into disk coordinates, cut at the end of its chunk. */
static void bio_to_disk_coordinates(struct dm_target *ti, struct colo_disk *colo,
				    struct bio *bio)
{
	sector_t sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	sector_t left = colo_chunk_sectors(colo) - (sector & (colo_chunk_sectors(colo) - 1));

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
		colo_remap_to_disk(colo, bio);
		return DM_MAPIO_REMAPPED;
	}
	return colo_disk_map(colo, bio);
}

static int secondary_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct colo_secondary *cs = ti->private;

	return colo_disk_end_io(cs->colo, bio, error);
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
	colo_disk_kick(colo);
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
	int r = colo_disk_message(cs->colo, argc, argv);

	/* On this table: its resume may not have run yet (colo->ti). */
	if (!r || r == -EINTR)
		dm_table_event(ti->table);
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
	colo = colo_disk_get_ingress(ci->disk->bdev->bd_dev);
	if (!colo) {
		ti->error = "No colo-secondary on disk_dev: create it first";
		goto bad_put;
	}
	ci->colo = colo;
	r = dm_set_target_max_io_len(ti, colo_chunk_sectors(colo));
	if (r) {
		ti->error = "Cannot set max_io_len";
		colo_disk_put(colo);
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

	colo_disk_put(ci->colo);
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
	return colo_disk_map(colo, bio);
}

static int ingress_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct colo_ingress *ci = ti->private;

	return colo_disk_end_io(ci->colo, bio, error);
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

int colo_secondary_register(void)
{
	int r;

	r = dm_register_target(&colo_secondary_target);
	if (r)
		return r;
	r = dm_register_target(&colo_ingress_target);
	if (r)
		dm_unregister_target(&colo_secondary_target);
	return r;
}

void colo_secondary_unregister(void)
{
	dm_unregister_target(&colo_ingress_target);
	dm_unregister_target(&colo_secondary_target);
}
