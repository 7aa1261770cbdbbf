/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: the primary node's target, registered from the module init in
 * dm-colo-target.c.
 */
#ifndef DM_COLO_PRIMARY_H
#define DM_COLO_PRIMARY_H

int colo_primary_register(void);
void colo_primary_unregister(void);

#endif
