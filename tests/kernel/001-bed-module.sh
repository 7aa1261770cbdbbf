#!/bin/bash
# The test bed loads dm-colo; it unloads and loads again; its targets show in
# `dmsetup targets` (every target the source registers).
# timeout: 120
. "$(dirname "$0")/../lib/vm-test.sh"

targets=$(sed -n 's/^[[:space:]]*\.name[[:space:]]*=[[:space:]]*"\(colo-[a-z]*\)".*/\1/p' \
	"$DMCOLO_TOP"/drivers/md/dm-colo*.c | sort -u)

ktap_plan $((6 + $(echo "$targets" | grep -c .)))
ktap_check "loaded" grep -q '^dm_colo ' /proc/modules
for t in $targets; do
	ktap_check "target $t listed" bash -c "dmsetup targets | grep -q '^$t '"
done
# dmcoloctl reads the same versions through libdevmapper.
tool_versions() {
	local want got
	want=$(dmsetup targets | awk '$1 ~ /^colo-/ { print "target " $1 " " $2 }' | sort)
	got=$("$DMCOLO_TOP/tools/dmcoloctl/dmcoloctl" version | grep '^target ' | sort)
	[ -n "$want" ] && [ "$got" = "$want" ] || { echo "want: $want"; echo "got: $got"; return 1; }
}
ktap_check "dmcoloctl version lists the loaded targets" tool_versions
# ... and names the module file that is loaded: its release and srcversion.
tool_module() {
	local want got
	want="module dm-colo $(modinfo -F version "$DMCOLO_MODULE"), srcversion $(modinfo -F srcversion "$DMCOLO_MODULE")"
	got=$("$DMCOLO_TOP/tools/dmcoloctl/dmcoloctl" --version | grep '^module ')
	[ "$got" = "$want" ] || { echo "want: $want"; echo "got: $got"; return 1; }
}
ktap_check "dmcoloctl --version names the loaded module" tool_module
ktap_check "unloads" rmmod dm_colo
# Device-mapper loads a target's module by the alias dm-<target> when a
# table names it: install the module in a scratch module tree, point the
# kernel's modprobe at that tree, and create a colo-secondary (with an
# argument count it refuses: the constructor ran, so the module is found).
autoload() {
	local root saved r
	root=$(mktemp -d)
	mkdir -p "$root/lib/modules/$(uname -r)/updates"
	cp "$DMCOLO_MODULE" "$root/lib/modules/$(uname -r)/updates/dm-colo.ko"
	depmod -b "$root" "$(uname -r)" 2>/dev/null
	printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$root" > "$root/modprobe"
	chmod +x "$root/modprobe"
	saved=$(cat /proc/sys/kernel/modprobe)
	echo "$root/modprobe" > /proc/sys/kernel/modprobe
	dmsetup create colo-autoload --table "0 8 colo-secondary /dev/null" 2>&1
	echo "$saved" > /proc/sys/kernel/modprobe
	r=1
	grep -q '^dm_colo ' /proc/modules && r=0
	dmesg | tail -n 5 | grep -E 'colo|target' || true
	dmsetup remove colo-autoload 2>/dev/null
	rm -rf "$root"
	[ $r -eq 0 ] && rmmod dm_colo
}
ktap_check "dmsetup create loads the module by its target's alias" autoload
ktap_check "loads again" insmod "$DMCOLO_MODULE"
ktap_finish
