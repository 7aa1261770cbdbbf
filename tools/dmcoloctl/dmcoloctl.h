/* SPDX-License-Identifier: GPL-2.0-only */
/* What dmcoloctl's subcommands share. */
#ifndef DMCOLOCTL_H
#define DMCOLOCTL_H

#include <stdint.h>

#include "clock.h"
#include "colo-abi.h"
#include "state.h"

/* Exit status (dmcoloctl(8), EXIT STATUS). */
#define EXIT_OK 0
#define EXIT_FAILED 1		/* the operation failed */
#define EXIT_USAGE 2		/* bad command line */
#define EXIT_PEER 3		/* the other node (NBD server, agent) unreachable */
#define EXIT_STATE 4		/* the device is not in a state that allows it */

#define DEFAULT_NBD_PORT 10809
#define DEFAULT_NBD_TIMEOUT 10
/* Print "dmcoloctl: <msg>" on stderr. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "dmcoloctl <cmd>: <msg>" on stderr and return EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A block device's size in bytes and logical block size; 0 or -1 (err). */
int blockdev_info(const char *path, uint64_t *bytes, unsigned int *lbs, char *err, size_t len);

/*
 * Refuse targets whose major version this tool does not know; 0 when every
 * loaded colo target is COLO_TARGET_MAJOR (or not loaded). Prints why.
 */
int check_target_version(const char *target);

/* Kind and parsed status of dm device name; -1 with a printed error. */
struct colo_device {
	enum colo_kind kind;
	struct colo_secondary_status sec;
	struct colo_ingress_status ing;
	struct colo_primary_status pri;
};
int colo_device_status(const char *name, struct colo_device *dev, int quiet);

/* Load NAME's tool state, printing an error when there is none. */
int load_state(const char *name, struct node_state *st);

/*
 * Follow NAME until its sync (primary) or merge (secondary) is done,
 * showing progress; 0 done, else an exit status.
 */
int follow_progress(const char *name, int quiet);

int cmd_secondary(int argc, char **argv);
int cmd_primary(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_resync(int argc, char **argv);
int cmd_failover(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_agent(int argc, char **argv);

#endif
