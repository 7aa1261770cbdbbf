/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * dm-colo: what the module's files share. dm-colo-module.c registers the targets
 * of both nodes: colo-secondary and colo-ingress (dm-colo-secondary.c) and
 * colo-primary (dm-colo-primary.c).
 */
#ifndef DM_COLO_H
#define DM_COLO_H

/* The dm-colo release (VERSION, dkms.conf); the targets carry their own. */
#define DM_COLO_RELEASE "0.2.0"

int colo_secondary_register(void);
void colo_secondary_unregister(void);
int colo_primary_register(void);
void colo_primary_unregister(void);

#endif
