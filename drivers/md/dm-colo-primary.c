// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-colo: COLO block replication, the primary node's target.
 *
 *   colo-primary <local_dev> <remote_dev> [<#opt_args> <opt_args>...]
 *     mode async|sync   max_inflight_kb <n>   region_sectors <n>   nosync
 *
 * Reads come from local_dev. Every write goes to local_dev and, while
 * replicating, to remote_dev too: the kernel NBD client connected to the
 * secondary's colo-ingress. In async mode the caller's write completes with
 * the local write and the remote write continues from a private copy of the
 * data, within max_inflight_kb; in sync mode it completes when both are done.
 *
 * The state (struct colo_primary) is found through the local device and
 * kept across table reloads, so a reload with a new remote keeps the log.
 *
 * The write path is in dm-colo-primary-io.c, the dirty log and resync in
 * dm-colo-primary-sync.c; dm-colo-primary.h has the state they share.
 *
 * Locking, outermost first:
 *  - primary_list_lock (mutex): the registry and each state's owner; ctr
 *    and dtr only.
 *  - pc->msg_lock (mutex): messages and resume, one at a time.
 *  - pc->lock (spinlock, irq-safe): the state, the interval tree and the
 *    io lists, the dirty log and the generation bitmaps, the counters.
 *    Taken in completions too (any context); nothing sleeps with it held.
 *
 * Context: ctr, dtr, message, the suspend hooks and resume run in process
 * context and may sleep; map in the submitter's and never waits (it queues
 * the bio for the worker).
 *
 * Documentation/admin-guide/device-mapper/dm-colo.rst has the details.
 */

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-dirty-log.h>
#include <linux/dm-kcopyd.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "dm-colo.h"
#include "dm-colo-primary.h"

#define DM_MSG_PREFIX "colo-primary"

static const char * const primary_state_names[] = {
	[PRIMARY_IDLE] = "idle",
	[PRIMARY_SYNCING] = "syncing",
	[PRIMARY_REPLICATING] = "replicating",
	[PRIMARY_DEGRADED] = "degraded",
};

static const char * const primary_mode_names[] = {
	[PRIMARY_ASYNC] = "async",
	[PRIMARY_SYNC] = "sync",
};

static const char * const primary_error_names[] = {
	[PRIMARY_ERR_NONE] = "-",
	[PRIMARY_ERR_REMOTE_IO] = "remote_io",
	[PRIMARY_ERR_REMOTE_FLUSH] = "remote_flush",
	[PRIMARY_ERR_LOCAL_IO] = "local_io",
	[PRIMARY_ERR_COPY] = "copy_failed",
	[PRIMARY_ERR_REMOTE_CHANGED] = "remote_changed",
	[PRIMARY_ERR_NOMEM] = "no_memory",
};

static LIST_HEAD(primary_list);
static DEFINE_MUTEX(primary_list_lock);	/* primary_list, owner */
static struct kmem_cache *primary_io_cache;

/* Registry of colo_primary by local device, under primary_list_lock. */
static struct colo_primary *primary_lookup(dev_t local)
{
	struct colo_primary *pc;

	list_for_each_entry(pc, &primary_list, list)
		if (pc->local->bd_dev == local)
			return pc;
	return NULL;
}

static struct colo_primary *primary_create(struct dm_target *ti, struct primary_target *pt)
{
	char region_arg[16];
	char *log_argv[2] = { region_arg, pt->nosync ? "nosync" : "sync" };
	struct colo_primary *pc;
	int r = -ENOMEM, i;

	pc = kzalloc(sizeof(*pc), GFP_KERNEL);
	if (!pc)
		return ERR_PTR(-ENOMEM);
	refcount_set(&pc->ref, 1);
	pc->owner = dm_table_get_md(ti->table);
	pc->local = pt->local->bdev;
	pc->remote = pt->remote->bdev;
	pc->remote_dev = pt->remote->bdev->bd_dev;
	pc->mode = pt->mode;
	pc->max_inflight = (u64)pt->max_inflight_kb << 10;
	pc->len = ti->len;
	pc->region_shift = ilog2(pt->region_sectors);
	pc->nr_regions = dm_sector_div_up(ti->len, pt->region_sectors);
	spin_lock_init(&pc->lock);
	pc->state = PRIMARY_IDLE;
	pc->suspended = true;
	pc->tree = RB_ROOT_CACHED;
	INIT_LIST_HEAD(&pc->ios);
	INIT_LIST_HEAD(&pc->waiting);
	bio_list_init(&pc->deferred);
	bio_list_init(&pc->remote_bios);
	init_waitqueue_head(&pc->wait);
	mutex_init(&pc->msg_lock);
	INIT_WORK(&pc->worker, colo_primary_worker);
	INIT_WORK(&pc->remote_worker, colo_primary_remote_worker);

	if (mempool_init_slab_pool(&pc->io_pool, PRIMARY_MIN_IOS, primary_io_cache))
		goto bad_pool;
	if (bioset_init(&pc->local_bs, PRIMARY_MIN_IOS, 0, 0))
		goto bad_local_bs;
	if (bioset_init(&pc->remote_bs, PRIMARY_MIN_IOS, 0, BIOSET_NEED_BVECS))
		goto bad_remote_bs;
	for (i = 0; i < 2; i++) {
		pc->acked[i] = bitmap_zalloc(pc->nr_regions, GFP_KERNEL);
		pc->copied[i] = bitmap_zalloc(pc->nr_regions, GFP_KERNEL);
		if (!pc->acked[i] || !pc->copied[i])
			goto bad_bitmaps;
	}
	pc->wq = alloc_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM, 0);
	if (!pc->wq)
		goto bad_bitmaps;
	pc->remote_wq = alloc_workqueue("dm-" DM_MSG_PREFIX "-remote", WQ_MEM_RECLAIM, 0);
	if (!pc->remote_wq)
		goto bad_remote_wq;
	pc->kc = dm_kcopyd_client_create(NULL);
	if (IS_ERR(pc->kc)) {
		r = PTR_ERR(pc->kc);
		goto bad_kc;
	}
	snprintf(region_arg, sizeof(region_arg), "%u", pt->region_sectors);
	pc->log = dm_dirty_log_create("core", ti, NULL, ARRAY_SIZE(log_argv), log_argv);
	if (!pc->log) {
		r = -EINVAL;
		goto bad_log;
	}
	return pc;

bad_log:
	dm_kcopyd_client_destroy(pc->kc);
bad_kc:
	destroy_workqueue(pc->remote_wq);
bad_remote_wq:
	destroy_workqueue(pc->wq);
bad_bitmaps:
	for (i = 0; i < 2; i++) {
		bitmap_free(pc->acked[i]);
		bitmap_free(pc->copied[i]);
	}
	bioset_exit(&pc->remote_bs);
bad_remote_bs:
	bioset_exit(&pc->local_bs);
bad_local_bs:
	mempool_exit(&pc->io_pool);
bad_pool:
	kfree(pc);
	return ERR_PTR(r);
}

static void primary_put(struct colo_primary *pc)
{
	int i;

	mutex_lock(&primary_list_lock);
	if (!refcount_dec_and_test(&pc->ref)) {
		mutex_unlock(&primary_list_lock);
		return;
	}
	list_del(&pc->list);
	mutex_unlock(&primary_list_lock);

	/*
	 * A checkpoint sent while suspended, and killed, may have left its
	 * generation flush in flight: its completion needs pc and the worker.
	 */
	wait_event(pc->wait, !colo_primary_gen_busy(pc));
	/* Suspend waited for every io; a never-resumed table had none. */
	WARN_ON_ONCE(!list_empty(&pc->ios) || !bio_list_empty(&pc->deferred) || pc->gen_flushing);
	destroy_workqueue(pc->remote_wq);
	destroy_workqueue(pc->wq);
	dm_kcopyd_client_destroy(pc->kc);
	dm_dirty_log_destroy(pc->log);
	for (i = 0; i < 2; i++) {
		bitmap_free(pc->acked[i]);
		bitmap_free(pc->copied[i]);
	}
	bioset_exit(&pc->remote_bs);
	bioset_exit(&pc->local_bs);
	mempool_exit(&pc->io_pool);
	kfree(pc);
}

/* Constructor */

static int parse_uint_opt(struct dm_target *ti, struct dm_arg_set *as, const char *name,
			  unsigned int min, unsigned int max, unsigned int *value)
{
	const char *arg = dm_shift_arg(as);

	if (!arg) {
		ti->error = "An option is missing its value";
		DMERR("%s needs a value", name);
		return -EINVAL;
	}
	if (kstrtouint(arg, 10, value) || *value < min || *value > max) {
		ti->error = "Option value out of range";
		DMERR("%s %s: not a number from %u to %u", name, arg, min, max);
		return -EINVAL;
	}
	return 0;
}

static unsigned int opt_of(const char *name)
{
	static const char * const names[] = {
		"mode", "max_inflight_kb", "region_sectors", "nosync",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(name, names[i]))
			return BIT(i);
	return 0;
}

static int parse_opt_args(struct dm_target *ti, struct primary_target *pt, struct dm_arg_set *as)
{
	static const struct dm_arg _args[] = {
		{0, 7, "Invalid number of optional arguments"},
	};
	unsigned int argc, opt;
	const char *name;
	int r;

	pt->mode = PRIMARY_ASYNC;
	pt->max_inflight_kb = PRIMARY_DEFAULT_INFLIGHT_KB;
	pt->region_sectors = PRIMARY_DEFAULT_REGION;
	if (!as->argc)
		return 0;
	r = dm_read_arg_group(_args, as, &argc, &ti->error);
	if (r)
		return r;
	pt->nr_opt_args = argc;
	while (argc) {
		name = dm_shift_arg(as);
		argc--;
		opt = opt_of(name);
		if (!opt) {
			ti->error = "Unknown optional argument";
			DMERR("unknown optional argument '%s'", name);
			return -EINVAL;
		}
		if (pt->opts & opt) {
			ti->error = "Optional argument given twice";
			DMERR("'%s' given twice", name);
			return -EINVAL;
		}
		pt->opts |= opt;
		if (opt == OPT_NOSYNC) {
			pt->nosync = true;
			continue;
		}
		if (!argc) {
			ti->error = "An option is missing its value";
			DMERR("%s needs a value", name);
			return -EINVAL;
		}
		argc--;
		if (opt == OPT_MODE) {
			name = dm_shift_arg(as);
			if (!strcasecmp(name, "async")) {
				pt->mode = PRIMARY_ASYNC;
			} else if (!strcasecmp(name, "sync")) {
				pt->mode = PRIMARY_SYNC;
			} else {
				ti->error = "mode must be async or sync";
				DMERR("mode %s: not async or sync", name);
				return -EINVAL;
			}
		} else if (opt == OPT_INFLIGHT) {
			r = parse_uint_opt(ti, as, "max_inflight_kb", PRIMARY_MIN_INFLIGHT_KB,
					   PRIMARY_MAX_INFLIGHT_KB, &pt->max_inflight_kb);
		} else {
			r = parse_uint_opt(ti, as, "region_sectors", PRIMARY_MIN_REGION,
					   PRIMARY_MAX_REGION, &pt->region_sectors);
			if (!r && !is_power_of_2(pt->region_sectors)) {
				ti->error = "region_sectors must be a power of two";
				DMERR("region_sectors %u: not a power of two", pt->region_sectors);
				r = -EINVAL;
			}
		}
		if (r)
			return r;
	}
	return 0;
}

static int check_devices(struct dm_target *ti, struct primary_target *pt)
{
	struct block_device *local = pt->local->bdev, *remote = pt->remote->bdev;
	unsigned int lbs;

	if (local == remote) {
		ti->error = "local_dev and remote_dev are the same device";
		return -EINVAL;
	}
	if (ti->len > bdev_nr_sectors(local)) {
		ti->error = "Target is larger than local_dev";
		return -EINVAL;
	}
	if (ti->len > bdev_nr_sectors(remote)) {
		ti->error = "Target is larger than remote_dev (is the NBD client connected?)";
		return -EINVAL;
	}
	if (pt->region_sectors > ti->len) {
		ti->error = "region_sectors is larger than the target";
		return -EINVAL;
	}
	if (dm_sector_div_up(ti->len, pt->region_sectors) > UINT_MAX) {
		ti->error = "More than 2^32 regions: use larger region_sectors";
		return -EINVAL;
	}
	lbs = max(bdev_logical_block_size(local), bdev_logical_block_size(remote));
	if ((pt->region_sectors << SECTOR_SHIFT) % lbs) {
		ti->error = "region_sectors is not a multiple of the devices' logical block size";
		return -EINVAL;
	}
	return 0;
}

/* Find the state of a reloaded device, or create it; under primary_list_lock. */
static int primary_attach(struct dm_target *ti, struct primary_target *pt)
{
	struct colo_primary *pc;

	pc = primary_lookup(pt->local->bdev->bd_dev);
	if (pc) {
		if (pc->owner != dm_table_get_md(ti->table)) {
			ti->error = "local_dev already has a colo-primary device";
			return -EBUSY;
		}
		if (pc->len != ti->len || pc->region_shift != ilog2(pt->region_sectors)) {
			ti->error = "A reload cannot change the length or region_sectors";
			return -EINVAL;
		}
		refcount_inc(&pc->ref);
	} else {
		pc = primary_create(ti, pt);
		if (IS_ERR(pc)) {
			ti->error = "Cannot allocate the replication state";
			return PTR_ERR(pc);
		}
		list_add(&pc->list, &primary_list);
	}
	pt->pc = pc;
	return 0;
}

static int primary_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct primary_target *pt;
	int r;

	if (argc < 2) {
		ti->error = "Usage: <local_dev> <remote_dev> [<#opt_args> <opt_args>...]";
		return -EINVAL;
	}
	pt = kzalloc(sizeof(*pt), GFP_KERNEL);
	if (!pt) {
		ti->error = "Cannot allocate context";
		return -ENOMEM;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &pt->local);
	if (r) {
		ti->error = "Cannot open local_dev";
		goto bad_local;
	}
	r = dm_get_device(ti, dm_shift_arg(&as), dm_table_get_mode(ti->table), &pt->remote);
	if (r) {
		ti->error = "Cannot open remote_dev";
		goto bad_remote;
	}
	r = parse_opt_args(ti, pt, &as);
	if (r)
		goto bad;
	if (as.argc) {
		ti->error = "Too many arguments";
		r = -EINVAL;
		goto bad;
	}
	r = check_devices(ti, pt);
	if (r)
		goto bad;
	/* Then a flush is a no-op: measured with nbd-server "flush = false". */
	if (!bdev_write_cache(pt->remote->bdev))
		DMWARN("%pg has no write cache: the NBD server must write through",
		       pt->remote->bdev);
	r = dm_set_target_max_io_len(ti, min_t(unsigned int, pt->region_sectors,
					       PRIMARY_MAX_IO_SECTORS));
	if (r) {
		ti->error = "Cannot set max_io_len";
		goto bad;
	}
	mutex_lock(&primary_list_lock);
	r = primary_attach(ti, pt);
	mutex_unlock(&primary_list_lock);
	if (r)
		goto bad;

	ti->private = pt;
	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_write_zeroes_bios = 1;
	/*
	 * The device discards when the local disk does, whatever the remote
	 * can: dm then does not ask every device, the stacked limits are the
	 * local disk's (a remote's 0 does not count), and a discard the remote
	 * cannot take stays local (colo_primary_discard_stays_local).
	 */
	ti->discards_supported = bdev_max_discard_sectors(pt->local->bdev) > 0;
	return 0;

bad:
	dm_put_device(ti, pt->remote);
bad_remote:
	dm_put_device(ti, pt->local);
bad_local:
	kfree(pt);
	return r;
}

static void primary_dtr(struct dm_target *ti)
{
	struct primary_target *pt = ti->private;

	primary_put(pt->pc);
	dm_put_device(ti, pt->remote);
	dm_put_device(ti, pt->local);
	kfree(pt);
}

static int primary_map(struct dm_target *ti, struct bio *bio)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	unsigned long flags;

	bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
	if (bio_data_dir(bio) == READ) {
		bio_set_dev(bio, pt->local->bdev);
		return DM_MAPIO_REMAPPED;
	}
	/* dm cuts neither at max_io_len: bound the regions one io marks. */
	if (!bio_has_data(bio) && bio_sectors(bio)) {
		sector_t span = (sector_t)PRIMARY_MAX_IO_REGIONS << pc->region_shift;
		sector_t left = span - (bio->bi_iter.bi_sector & (span - 1));

		if (bio_sectors(bio) > left)
			dm_accept_partial_bio(bio, left);
	}
	/* An empty flush needs the remote only in sync mode. */
	if (!bio_sectors(bio) &&
	    (READ_ONCE(pc->mode) == PRIMARY_ASYNC || !forwarding(READ_ONCE(pc->state)))) {
		bio_set_dev(bio, pt->local->bdev);
		return DM_MAPIO_REMAPPED;
	}
	spin_lock_irqsave(&pc->lock, flags);
	bio_list_add(&pc->deferred, bio);
	spin_unlock_irqrestore(&pc->lock, flags);
	colo_primary_kick(pc);
	return DM_MAPIO_SUBMITTED;
}

/* While suspended no copy starts: waiting ones are cancelled, regions stay dirty. */
static void set_suspended(struct dm_target *ti, bool suspended)
{
	struct colo_primary *pc = ((struct primary_target *)ti->private)->pc;

	spin_lock_irq(&pc->lock);
	pc->suspended = suspended;
	spin_unlock_irq(&pc->lock);
	colo_primary_kick(pc);
}

static void primary_presuspend(struct dm_target *ti)
{
	set_suspended(ti, true);
}

/* The suspend did not happen. */
static void primary_presuspend_undo(struct dm_target *ti)
{
	set_suspended(ti, false);
}

static bool ios_done(struct colo_primary *pc)
{
	bool done;

	spin_lock_irq(&pc->lock);
	done = list_empty(&pc->ios) && bio_list_empty(&pc->deferred) && !pc->gen_flushing;
	spin_unlock_irq(&pc->lock);
	return done;
}

static void primary_postsuspend(struct dm_target *ti)
{
	struct colo_primary *pc = ((struct primary_target *)ti->private)->pc;

	/* Async forwards outlive their bios: wait for them (bounded by -t). */
	wait_event(pc->wait, ios_done(pc));
	spin_lock_irq(&pc->lock);
	pc->ti = NULL;
	spin_unlock_irq(&pc->lock);
	flush_workqueue(pc->wq);
	flush_workqueue(pc->remote_wq);
}

static void primary_resume(struct dm_target *ti)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	struct block_device *remote = pt->remote->bdev;

	mutex_lock(&pc->msg_lock);
	spin_lock_irq(&pc->lock);
	if (pc->remote_dev != remote->bd_dev) {
		if (forwarding(pc->state)) {
			DMWARN("%pg: remote_dev changed to %pg: degraded, resync to replicate",
			       pc->local, remote);
			colo_primary_degrade_locked(pc, PRIMARY_ERR_REMOTE_CHANGED);
		}
		/* What the old remote did not flush, the new one may lack. */
		pc->unflushed_lost = true;
	}
	pc->remote = remote;
	pc->remote_dev = remote->bd_dev;
	pc->mode = pt->mode;
	pc->max_inflight = (u64)pt->max_inflight_kb << 10;
	pc->ti = ti;
	pc->suspended = false;
	spin_unlock_irq(&pc->lock);
	mutex_unlock(&pc->msg_lock);
	colo_primary_kick(pc);
}

static void primary_status(struct dm_target *ti, status_type_t type,
			   unsigned int status_flags, char *result, unsigned int maxlen)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&pc->lock);
		DMEMIT("%s %s %llu/%llu %llu %llu %llu %llu %llu %llu %s",
		       primary_state_names[pc->state], primary_mode_names[pc->mode],
		       (unsigned long long)pc->log->type->get_sync_count(pc->log),
		       (unsigned long long)pc->nr_regions, pc->nr_copied, pc->nr_forwarded,
		       pc->nr_forwarding, pc->bytes_inflight, pc->peak_inflight,
		       pc->nr_remote_errors, primary_error_names[pc->error]);
		spin_unlock_irq(&pc->lock);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s", pt->local->name, pt->remote->name);
		if (!pt->nr_opt_args)
			break;
		DMEMIT(" %u", pt->nr_opt_args);
		if (pt->opts & OPT_MODE)
			DMEMIT(" mode %s", primary_mode_names[pt->mode]);
		if (pt->opts & OPT_INFLIGHT)
			DMEMIT(" max_inflight_kb %u", pt->max_inflight_kb);
		if (pt->opts & OPT_REGION)
			DMEMIT(" region_sectors %u", pt->region_sectors);
		if (pt->opts & OPT_NOSYNC)
			DMEMIT(" nosync");
		break;
	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",local_device=%s,remote_device=%s,mode=%s,state=%s;",
		       pt->local->name, pt->remote->name, primary_mode_names[pt->mode],
		       primary_state_names[READ_ONCE(pc->state)]);
		break;
	}
}

static bool checkpoint_reached(struct colo_primary *pc, u64 seq)
{
	struct primary_io *oldest;
	bool reached;

	spin_lock_irq(&pc->lock);
	oldest = list_first_entry_or_null(&pc->ios, struct primary_io, list);
	reached = !oldest || oldest->seq >= seq || pc->state != PRIMARY_REPLICATING;
	spin_unlock_irq(&pc->lock);
	return reached;
}

/*
 * A generation flush, waited for: what the remote acknowledged so far is
 * durable when it returns 0. -EIO when the flush failed (degraded now),
 * -ENOLINK when replication is not forwarding, -EINTR when killed (the
 * flush goes on; the worker applies its result). Context: message.
 */
static int gen_flush_sync(struct colo_primary *pc)
{
	bool failed;
	u64 gen;
	int r;

	/* One at a time: wait for one in flight. */
	for (;;) {
		r = wait_event_killable(pc->wait, !colo_primary_gen_busy(pc));
		if (r)
			return r;
		gen = colo_primary_gen_flush_start(pc);
		if (gen)
			break;
		if (!forwarding(READ_ONCE(pc->state)))
			return -ENOLINK;
	}
	r = wait_event_killable(pc->wait, colo_primary_gen_applied(pc, gen));
	if (r)
		return r;
	spin_lock_irq(&pc->lock);
	failed = pc->gen_failed >= gen;
	spin_unlock_irq(&pc->lock);
	return failed ? -EIO : 0;
}

/*
 * Every write completed before the message is on the remote's disk when it
 * returns 0: acknowledged by the remote, then flushed through it.
 */
static int primary_checkpoint(struct colo_primary *pc)
{
	u64 seq;
	int r;

	spin_lock_irq(&pc->lock);
	seq = pc->next_seq;
	spin_unlock_irq(&pc->lock);
	r = wait_event_killable(pc->wait, checkpoint_reached(pc, seq));
	if (r)
		return r;
	if (READ_ONCE(pc->state) != PRIMARY_REPLICATING) {
		DMERR("%pg: checkpoint: replication failed while waiting", pc->local);
		return -EIO;
	}
	r = gen_flush_sync(pc);
	if (r == -EIO)
		DMERR("%pg: checkpoint: the remote flush failed: unflushed regions out of sync",
		      pc->local);
	else if (r == -ENOLINK)
		DMERR("%pg: checkpoint: replication failed while waiting", pc->local);
	if (r)
		return r == -ENOLINK ? -EIO : r;
	if (READ_ONCE(pc->state) != PRIMARY_REPLICATING) {
		DMERR("%pg: checkpoint: replication failed while flushing", pc->local);
		return -EIO;
	}
	return 0;
}

/* Forward from now on; what is out of sync is copied in the background. */
static void start_sync_locked(struct colo_primary *pc)
{
	colo_primary_set_state_locked(pc, PRIMARY_SYNCING);
	pc->error = PRIMARY_ERR_NONE;
	pc->nr_copied = 0;
	pc->search_reset = false;
	pc->log->type->resume(pc->log);
}

static int primary_message(struct dm_target *ti, unsigned int argc, char **argv,
			   char *result, unsigned int maxlen)
{
	struct primary_target *pt = ti->private;
	struct colo_primary *pc = pt->pc;
	enum primary_state state;
	bool full = false;
	int r = 0;

	if (argc == 2 && (!strcasecmp(argv[0], "start") || !strcasecmp(argv[0], "resync"))) {
		if (strcasecmp(argv[1], "full")) {
			DMERR("%pg: %s: unknown argument '%s' (only 'full')",
			      pc->local, argv[0], argv[1]);
			return -EINVAL;
		}
		full = true;
	} else if (argc != 1) {
		DMERR("%pg: message '%s': wrong number of arguments", pc->local, argv[0]);
		return -EINVAL;
	}
	mutex_lock(&pc->msg_lock);
	/* Only messages leave idle and degraded: stable under msg_lock. */
	state = READ_ONCE(pc->state);
	/* A new secondary disk: what it lacks is not in the log. */
	if (full && ((state == PRIMARY_IDLE && !strcasecmp(argv[0], "start")) ||
		     (state == PRIMARY_DEGRADED && !strcasecmp(argv[0], "resync"))))
		colo_primary_mark_all_out_of_sync(pc);
	/*
	 * stop: what the remote acknowledged is flushed first, so that a later
	 * start copies only what is written from now on; what the flush does
	 * not cover (it failed, or was killed) is marked below.
	 */
	if (!strcasecmp(argv[0], "stop") && forwarding(state))
		gen_flush_sync(pc);
	spin_lock_irq(&pc->lock);
	state = pc->state;
	if (!strcasecmp(argv[0], "start")) {
		if (state == PRIMARY_IDLE)
			start_sync_locked(pc);
		else
			r = -EBUSY;
	} else if (!strcasecmp(argv[0], "resync")) {
		if (state == PRIMARY_DEGRADED)
			start_sync_locked(pc);
		else
			r = -EBUSY;
	} else if (!strcasecmp(argv[0], "stop")) {
		if (state != PRIMARY_IDLE) {
			if (forwarding(state))
				pc->unflushed_lost = true;
			colo_primary_set_state_locked(pc, PRIMARY_IDLE);
		} else {
			r = -EBUSY;
		}
	} else if (!strcasecmp(argv[0], "checkpoint")) {
		if (state != PRIMARY_REPLICATING)
			r = -EIO;
	} else {
		r = -EINVAL;
	}
	spin_unlock_irq(&pc->lock);

	if (r == -EINVAL)
		DMERR("%pg: unknown message '%s'", pc->local, argv[0]);
	else if (r)
		DMERR("%pg: %s: state is %s%s", pc->local, argv[0], primary_state_names[state],
		      !strcasecmp(argv[0], "resync") ? ", not degraded" :
		      !strcasecmp(argv[0], "start") ? ", not idle" :
		      !strcasecmp(argv[0], "stop") ? ", already stopped" : ", not replicating");
	else if (!strcasecmp(argv[0], "checkpoint"))
		r = primary_checkpoint(pc);
	mutex_unlock(&pc->msg_lock);
	colo_primary_kick(pc);
	return r;
}

static int primary_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				   void *data)
{
	struct primary_target *pt = ti->private;
	int r;

	r = fn(ti, pt->local, 0, ti->len, data);
	if (!r)
		r = fn(ti, pt->remote, 0, ti->len, data);
	return r;
}

static struct target_type colo_primary_target = {
	.name = "colo-primary",
	.version = {1, 0, 2},
	.module = THIS_MODULE,
	.ctr = primary_ctr,
	.dtr = primary_dtr,
	.map = primary_map,
	.presuspend = primary_presuspend,
	.presuspend_undo = primary_presuspend_undo,
	.postsuspend = primary_postsuspend,
	.resume = primary_resume,
	.status = primary_status,
	.message = primary_message,
	.iterate_devices = primary_iterate_devices,
};

int colo_primary_register(void)
{
	int r;

	primary_io_cache = KMEM_CACHE(primary_io, 0);
	if (!primary_io_cache)
		return -ENOMEM;
	r = dm_register_target(&colo_primary_target);
	if (r)
		kmem_cache_destroy(primary_io_cache);
	return r;
}

void colo_primary_unregister(void)
{
	dm_unregister_target(&colo_primary_target);
	kmem_cache_destroy(primary_io_cache);
}
