/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: the kernel interfaces that differ between the kernels it builds
 * on (6.1 and 6.12, vanilla or a distribution's), in one place. The rest of
 * the code calls only the colo_* names below.
 */
#ifndef DM_COLO_COMPAT_H
#define DM_COLO_COMPAT_H

#include <linux/dm-io.h>
#include <linux/ioprio.h>
#include <linux/version.h>

/*
 * dm_io() takes the I/O priority of its bios since 6.9. Distribution
 * kernels may have it earlier (Debian's 6.1 has it backported), which a
 * version check cannot see: out of tree, drivers/md/Makefile looks at the
 * prototype and defines COLO_DM_IO_HAS_IOPRIO.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0) || defined(COLO_DM_IO_HAS_IOPRIO)
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits, IOPRIO_DEFAULT)
#else
#define colo_dm_io(req, nr, regions, error_bits) \
	dm_io(req, nr, regions, error_bits)
#endif

#endif
