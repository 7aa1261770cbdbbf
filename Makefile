# SPDX-License-Identifier: GPL-2.0-only
#
# dm-colo top-level Makefile.
#
#   make                    module + tools, against the newest installed kernel
#   make KVER=6.1.0-56-amd64 / make KDIR=/path/to/kbuild-tree
#   make KERNEL=deb61|deb612|debug   a test kernel (scripts/kernels)
#   make demo               the two-node workflow with a failover, narrated, in a VM
#   make reliability-doc    Documentation/dm-colo-reliability.md from the last
#                           full suite run's figures (build/results/reliability.md)
#   make check              install deps, build, static checks, unit tests and
#                           the VM suite on every test kernel
#   make check KERNELS=deb61 TESTS=<regex>   narrow it
#   make bench [KERNEL=deb61]  the benchmarks against the peers, in VMs
#                           (deb612 by default): bench/results/KERNEL.md
#   make clean

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

ifneq ($(KERNEL),)
KDIR := $(shell $(TOP)/scripts/kernels info $(KERNEL) | sed -n 's/^KDIR=//p')
ifeq ($(KDIR),)
$(error kernel '$(KERNEL)' is not available: run scripts/kernels ensure $(KERNEL))
endif
endif

# Default: the running kernel when its headers are installed, else the newest
# installed Debian kernel that has a build tree.
ifeq ($(KDIR)$(KVER),)
KVER := $(shell if [ -d /lib/modules/$$(uname -r)/build ]; then uname -r; else \
	  ls -d /lib/modules/*/build 2>/dev/null | cut -d/ -f4 | sort -V | tail -n 1; fi)
endif
KDIR ?= /lib/modules/$(KVER)/build
KRELEASE = $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' $(KDIR)/include/generated/utsrelease.h 2>/dev/null)
MODBUILD = $(TOP)/build/$(KRELEASE)

MOD_SOURCES := $(wildcard $(TOP)/drivers/md/dm-colo*.[ch]) $(TOP)/drivers/md/Makefile

.PHONY: all module tools test-tools bench-tools bench check selftest-module clean demo \
	reliability-doc

all: module tools

# Kbuild builds external modules in the source directory; copy the sources
# to one directory per kernel so several kernels can be built side by side.
module:
	@test -f $(KDIR)/Makefile || { echo "no kernel build tree at '$(KDIR)' (install headers or set KDIR/KVER)" >&2; exit 1; }
	@mkdir -p $(MODBUILD)/module
	@cp -p $(MOD_SOURCES) $(MODBUILD)/module/
	$(MAKE) -C $(KDIR) M=$(MODBUILD)/module CONFIG_DM_COLO=m modules

# The runner self-test's module that provokes a kernel WARNING.
selftest-module:
	@mkdir -p $(MODBUILD)/selftest
	@cp -p $(TOP)/tests/modules/*.c $(TOP)/tests/modules/Kbuild $(MODBUILD)/selftest/
	$(MAKE) -C $(KDIR) M=$(MODBUILD)/selftest modules

tools:
	$(MAKE) -C $(TOP)/tools/dmcoloctl

# Programs the VM tests run (build/tests/).
test-tools: tools
	@mkdir -p $(TOP)/build/tests
	$(MAKE) -C $(TOP)/tests/tools OUT=$(TOP)/build/tests

check:
	$(TOP)/tests/check

# Programs the benchmark VMs run (build/bench/).
bench-tools:
	@mkdir -p $(TOP)/build/bench
	$(MAKE) -C $(TOP)/bench/tools OUT=$(TOP)/build/bench

bench:
	$(TOP)/bench/run --kernel $(or $(KERNEL),deb612)

# The two-node workflow, narrated, in a throw-away VM (scripts/demo).
demo:
	$(TOP)/scripts/demo

# tests/run writes the figures of each run; this publishes the last one.
reliability-doc:
	@test -f $(TOP)/build/results/reliability.md || { echo "no build/results/reliability.md: run make check first" >&2; exit 1; }
	cp $(TOP)/build/results/reliability.md $(TOP)/Documentation/dm-colo-reliability.md

clean:
	rm -rf $(TOP)/build
	$(MAKE) -C $(TOP)/tools/dmcoloctl clean
