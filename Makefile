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
#   make install [DESTDIR=] [PREFIX=/usr/local] [DKMS=1] [MODULE_SIGN=1]
#                           module (unless DKMS=1), dmcoloctl, its manual,
#                           bash completion, systemd unit, docs
#   make uninstall          what make install installed (same variables)
#   make dkms-install       the module through DKMS, rebuilt on kernel
#                           upgrades (with DESTDIR: only its source tree)
#   make dkms-uninstall
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
	reliability-doc install install-module install-tools uninstall dkms-src \
	dkms-install dkms-uninstall

VERSION := $(shell cat $(TOP)/VERSION)
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dm-colo
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
# Out-of-tree modules go to updates/, which depmod prefers over the
# kernel's own directories (DKMS uses updates/dkms).
MODDIR ?= updates
DKMS_SRC = $(DESTDIR)/usr/src/dm-colo-$(VERSION)

all: module tools

# Kbuild builds external modules in the source directory; copy the sources
# to one directory per kernel so several kernels can be built side by side.
module:
	@test -f $(KDIR)/Makefile || { echo "no kernel build tree at '$(KDIR)' (install your kernel's headers, or set KERNEL=deb61|deb612|debug after scripts/kernels ensure, or KDIR)" >&2; exit 1; }
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

install: $(if $(DKMS),,install-module) install-tools

# Kbuild signs at install time when the kernel has CONFIG_MODULE_SIG_ALL,
# with the kernel's own key, which distribution headers never ship:
# MODULE_SIGN=1 lets it try (your own kernel tree); for Secure Boot with a
# distribution kernel use DKMS, which signs with its MOK key. Kbuild skips
# depmod for an external module's tree without System.map: run it here
# when installing into the live system.
install-module: module
	$(MAKE) -C $(KDIR) M=$(MODBUILD)/module INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=$(MODDIR) $(if $(MODULE_SIGN),,CONFIG_MODULE_SIG_ALL=) \
		modules_install
	$(if $(DESTDIR),,depmod -a $(KRELEASE))

SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

install-tools: tools
	install -D -m 0755 $(TOP)/tools/dmcoloctl/dmcoloctl $(DESTDIR)$(SBINDIR)/dmcoloctl
	install -D -m 0644 $(TOP)/tools/dmcoloctl/dmcoloctl.8 $(DESTDIR)$(MANDIR)/man8/dmcoloctl.8
	install -D -m 0644 $(TOP)/tools/dmcoloctl/dmcoloctl.bash-completion \
		$(DESTDIR)$(BASHCOMPDIR)/dmcoloctl
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	$(SUBST) $(TOP)/tools/dmcoloctl/systemd/dmcolo-secondary@.service.in \
		> $(DESTDIR)$(UNITDIR)/dmcolo-secondary@.service
	$(SUBST) $(TOP)/tools/dmcoloctl/systemd/dmcolo-secondary.conf.example.in \
		> $(DESTDIR)$(DOCDIR)/dmcolo-secondary.conf.example
	install -m 0644 $(TOP)/README.md $(TOP)/CHANGELOG.md \
		$(TOP)/Documentation/admin-guide/device-mapper/dm-colo.rst $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dmcoloctl $(DESTDIR)$(MANDIR)/man8/dmcoloctl.8 \
		$(DESTDIR)$(BASHCOMPDIR)/dmcoloctl $(DESTDIR)$(UNITDIR)/dmcolo-secondary@.service
	rm -rf $(DESTDIR)$(DOCDIR)
	$(if $(DKMS),,rm -f $(DESTDIR)/lib/modules/$(KRELEASE)/$(MODDIR)/dm-colo.ko*)
	$(if $(DKMS)$(DESTDIR),,depmod -a $(KRELEASE))

# What DKMS builds from: the module's sources and dkms.conf, nothing else.
dkms-src:
	install -d $(DKMS_SRC)/drivers/md
	install -m 0644 $(TOP)/dkms.conf $(TOP)/VERSION $(DKMS_SRC)/
	install -m 0644 $(MOD_SOURCES) $(TOP)/drivers/md/Kconfig $(DKMS_SRC)/drivers/md/

# --force: a second run after the sources changed rebuilds and reinstalls.
dkms-install: dkms-src
ifeq ($(DESTDIR),)
	dkms status -m dm-colo -v $(VERSION) | grep -q . || dkms add -m dm-colo -v $(VERSION)
	dkms build --force -m dm-colo -v $(VERSION) $(if $(KVER),-k $(KVER))
	dkms install --force -m dm-colo -v $(VERSION) $(if $(KVER),-k $(KVER))
endif

dkms-uninstall:
	-dkms remove -m dm-colo -v $(VERSION) --all
	rm -rf $(DKMS_SRC)

clean:
	rm -rf $(TOP)/build
	$(MAKE) -C $(TOP)/tools/dmcoloctl clean
