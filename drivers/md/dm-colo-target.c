// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: COLO block replication targets.
 *
 * This file holds the target glue. The design is described in
 * Documentation/admin-guide/device-mapper/dm-colo.rst.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>

#define DM_MSG_PREFIX "colo"

static int __init dm_colo_init(void)
{
	DMINFO("version 0.1.0 loaded");
	return 0;
}

static void __exit dm_colo_exit(void)
{
}

module_init(dm_colo_init);
module_exit(dm_colo_exit);

MODULE_DESCRIPTION(DM_NAME " COLO block replication targets");
MODULE_LICENSE("GPL");
