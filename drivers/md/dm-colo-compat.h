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

#include <linux/dm-io.h>
#include <linux/ioprio.h>

/* dm_io() takes the I/O priority of its bios since 6.9. */
#if !defined(COLO_OUT_OF_TREE) || defined(COLO_DM_IO_HAS_IOPRIO)
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits, IOPRIO_DEFAULT)
#else
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits)
#endif

#endif
