#!/bin/bash
# The test bed loads dm-colo; it unloads and loads again; its targets show in
# `dmsetup targets` (every target the source registers).
# timeout: 120
. "$(dirname "$0")/../lib/ktap.sh"

targets=$(sed -n 's/^[[:space:]]*\.name[[:space:]]*=[[:space:]]*"\(colo-[a-z]*\)".*/\1/p' \
	"$DMCOLO_TOP"/drivers/md/dm-colo*.c | sort -u)

ktap_plan $((5 + $(echo "$targets" | grep -c .)))
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
ktap_check "loads again" insmod "$DMCOLO_MODULE"
ktap_finish
