// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: COLO block replication (QEMU's block replication, in
 * device-mapper). The module: its init and exit, which register the
 * targets of both nodes.
 *
 *   primary node:    colo-primary                  dm-colo-primary.c
 *   secondary node:  colo-secondary, colo-ingress  dm-colo-secondary.c
 *                    their shared disk object      dm-colo-disk.c
 *                    the disk buffer               dm-colo-buffer.c
 *
 * Context: module init and exit, process. The module is pinned while a
 * disk object is parked (dm-colo-disk.c), so exit never finds one.
 *
 * Documentation/admin-guide/device-mapper/dm-colo.rst has the details.
 */
#include <linux/device-mapper.h>
#include <linux/module.h>

#include "dm-colo.h"
#include "dm-colo-disk.h"

static int __init dm_colo_init(void)
{
	int r;

	r = colo_disk_init();
	if (r)
		return r;
	r = colo_secondary_register();
	if (r)
		goto bad_secondary;
	r = colo_primary_register();
	if (r)
		goto bad_primary;
	return 0;

bad_primary:
	colo_secondary_unregister();
bad_secondary:
	colo_disk_exit();
	return r;
}

static void __exit dm_colo_exit(void)
{
	colo_primary_unregister();
	colo_secondary_unregister();
	colo_disk_exit();
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
