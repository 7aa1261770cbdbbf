// SPDX-License-Identifier: GPL-2.0-only
/*
 * The runner's self-test: loading this module provokes a kernel WARNING, so
 * tests/selftest can prove that tests/run fails a test whose kernel log
 * holds one (and, on the debug kernel with panic_on_warn, that it survives
 * the VM going down).
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init dmcolo_selftest_warn_init(void)
{
	WARN(1, "dm-colo runner self-test: intentional warning\n");
	return 0;
}

static void __exit dmcolo_selftest_warn_exit(void)
{
}

module_init(dmcolo_selftest_warn_init);
module_exit(dmcolo_selftest_warn_exit);

MODULE_DESCRIPTION("dm-colo test runner self-test: provokes a WARNING");
MODULE_LICENSE("GPL");
