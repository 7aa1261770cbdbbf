/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: the kernel interfaces that differ between the kernels it builds
 * on (6.1 and 6.12, vanilla or a distribution's), in one place. The rest of
 * the code calls only the colo_* names below.
 *
 * Out of tree, drivers/md/Makefile defines COLO_OUT_OF_TREE and, from the
 * kernel's own headers, one COLO_* feature macro per difference: a version
 * check cannot see the backports of distribution kernels (Debian's 6.1 has
 * dm_io()'s ioprio), and inside a tree the code is for that tree's version.
 */
#ifndef DM_COLO_COMPAT_H
#define DM_COLO_COMPAT_H

#include <linux/blkdev.h>
#include <linux/dm-io.h>
#include <linux/file.h>
#include <linux/ioprio.h>

/* dm_io() takes the I/O priority of its bios since 6.9. */
#if !defined(COLO_OUT_OF_TREE) || defined(COLO_DM_IO_HAS_IOPRIO)
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits, IOPRIO_DEFAULT)
#else
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits)
#endif

/*
 * A plain (not exclusive) open of a block device by number, which keeps it
 * from being removed: bdev_file_open_by_dev() since 6.9, blkdev_get_by_dev()
 * with an fmode_t as 6.1 has it (6.5-6.8, with blk_mode_t, are not
 * supported). 0 or -errno; colo_bdev_put() takes an unset one too.
 */
#if !defined(COLO_OUT_OF_TREE) || defined(COLO_HAS_BDEV_FILE)
struct colo_bdev_ref {
	struct file *file;
};

static inline int colo_bdev_get(dev_t dev, struct colo_bdev_ref *ref)
{
	struct file *file = bdev_file_open_by_dev(dev, BLK_OPEN_READ | BLK_OPEN_WRITE, NULL, NULL);

	if (IS_ERR(file))
		return PTR_ERR(file);
	ref->file = file;
	return 0;
}

static inline void colo_bdev_put(struct colo_bdev_ref *ref)
{
	if (ref->file)
		fput(ref->file);
	ref->file = NULL;
}
#else
struct colo_bdev_ref {
	struct block_device *bdev;
};

static inline int colo_bdev_get(dev_t dev, struct colo_bdev_ref *ref)
{
	struct block_device *bdev = blkdev_get_by_dev(dev, FMODE_READ | FMODE_WRITE, NULL);

	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	ref->bdev = bdev;
	return 0;
}

static inline void colo_bdev_put(struct colo_bdev_ref *ref)
{
	if (ref->bdev)
		blkdev_put(ref->bdev, FMODE_READ | FMODE_WRITE);
	ref->bdev = NULL;
}
#endif

#endif
