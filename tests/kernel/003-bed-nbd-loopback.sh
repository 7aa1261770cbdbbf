#!/bin/bash
# nbd-server and the kernel NBD client (nbd-client -t) over loopback inside
# the VM round-trip a random pattern, byte for byte.
# Not on the debug kernel: no dm-colo code runs here.
# kernels: deb61 deb612
# timeout: 180
. "$(dirname "$0")/../lib/vm-test.sh"

test_stop() { nbd_disconnect /dev/nbd0; nbd_stop bed; rmmod nbd 2>/dev/null; }
vm_test_on_exit /tmp/bed-pat

ktap_plan 5
disk_setup 1 32
ktap_check "nbd-server exports /dev/testdisk0" nbd_serve bed /dev/testdisk0 127.0.0.1 10809
ktap_check "nbd-client -t connects /dev/nbd0" nbd_connect bed 127.0.0.1 10809 /dev/nbd0
random_file /tmp/bed-pat $((3 << 20))
ktap_check "write 3 MiB through NBD" write_direct /dev/nbd0 $((5 << 20)) /tmp/bed-pat
ktap_check "bytes on the exported ramdisk" same_bytes /dev/testdisk0 $((5 << 20)) /tmp/bed-pat
ktap_check "read back through NBD" same_bytes /dev/nbd0 $((5 << 20)) /tmp/bed-pat
ktap_finish
