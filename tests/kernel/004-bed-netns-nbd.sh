#!/bin/bash
# Two "hosts" in one VM: network namespaces joined by veth, IPv6 link-local
# addresses only. The secondary serves a ramdisk, the primary's kernel NBD
# client writes a pattern across the link; exact bytes on both sides.
# Not on the debug kernel: no dm-colo code runs here.
# kernels: deb61 deb612
# timeout: 180
. "$(dirname "$0")/../lib/vm-test.sh"

test_stop() {
	nbd_disconnect /dev/nbd1
	nbd_stop bednet
	ip netns del bed-pri 2>/dev/null
	ip netns del bed-sec 2>/dev/null
	rmmod nbd 2>/dev/null
}
vm_test_on_exit /tmp/bed-pat

netns_pair() {
	ip netns add bed-pri && ip netns add bed-sec &&
	ip link add veth-pri netns bed-pri type veth peer name veth-sec netns bed-sec &&
	ip -n bed-pri addr add fe80::1/64 dev veth-pri nodad &&
	ip -n bed-sec addr add fe80::2/64 dev veth-sec nodad &&
	ip -n bed-pri link set lo up && ip -n bed-sec link set lo up &&
	ip -n bed-pri link set veth-pri up && ip -n bed-sec link set veth-sec up &&
	ip netns exec bed-pri ping -6 -c 1 -W 5 fe80::2%veth-pri > /dev/null
}

ktap_plan 6
disk_setup 1 32
ktap_check "veth pair between two namespaces" netns_pair
ktap_check "secondary serves /dev/testdisk0" nbd_serve bednet /dev/testdisk0 fe80::2%veth-sec 10809 bed-sec
ktap_check "primary connects /dev/nbd1" nbd_connect bednet fe80::2%veth-pri 10809 /dev/nbd1 bed-pri
random_file /tmp/bed-pat $((2 << 20))
ktap_check "write 2 MiB across the link" write_direct /dev/nbd1 $((1 << 20)) /tmp/bed-pat
ktap_check "bytes on the secondary's ramdisk" same_bytes /dev/testdisk0 $((1 << 20)) /tmp/bed-pat
ktap_check "read back across the link" same_bytes /dev/nbd1 $((1 << 20)) /tmp/bed-pat
ktap_finish
