// SPDX-License-Identifier: GPL-2.0-only
/*
 * The runner's self-test module, for tests/selftest to prove what tests/run
 * catches:
 *  - loaded (warn=1, the default), it provokes a kernel WARNING (on the
 *    debug kernel, with panic_on_warn, the VM goes down);
 *  - "leak" written to its parameter "action" kmalloc()s a few objects and
 *    drops the pointers: kmemleak must report them, naming this module;
 *  - "pin" written there takes a reference on this module that is never
 *    put: unloading it at the end of the VM must fail.
 */
#include <linux/bug.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>

static bool warn = true;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN when loaded (default: yes)");

#define DMCOLO_SELFTEST_LEAKS 8

/* Out of line, so that the allocations' backtraces name this module. */
static noinline int dmcolo_selftest_leak(void)
{
	int i;

	for (i = 0; i < DMCOLO_SELFTEST_LEAKS; i++) {
		void *p = kmalloc(256, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		memset(p, 0x5a, 256);
	}
	return 0;
}

static int dmcolo_selftest_action(const char *val, const struct kernel_param *kp)
{
	if (sysfs_streq(val, "leak"))
		return dmcolo_selftest_leak();
	if (sysfs_streq(val, "pin")) {
		__module_get(THIS_MODULE);
		return 0;
	}
	return -EINVAL;
}

static const struct kernel_param_ops dmcolo_selftest_action_ops = {
	.set = dmcolo_selftest_action,
};
module_param_cb(action, &dmcolo_selftest_action_ops, NULL, 0200);
MODULE_PARM_DESC(action, "leak: leak memory; pin: a module reference never put");

static int __init dmcolo_selftest_warn_init(void)
{
	WARN(warn, "dm-colo runner self-test: intentional warning\n");
	return 0;
}

static void __exit dmcolo_selftest_warn_exit(void)
{
}

module_init(dmcolo_selftest_warn_init);
module_exit(dmcolo_selftest_warn_exit);

MODULE_DESCRIPTION("dm-colo test runner self-test: a WARNING, a leak, a pinned module");
MODULE_LICENSE("GPL");
