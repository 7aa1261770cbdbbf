#!/bin/bash
# Runner self-test: passes, but leaves an NBD connection (to a loopback
# nbd-server) behind.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/nbd.sh"
ktap_plan 1
connect() {
	truncate -s 1M /tmp/selftest-nbd.img &&
	nbd_serve selftest /tmp/selftest-nbd.img 127.0.0.1 10899 &&
	nbd_connect selftest 127.0.0.1 10899 /dev/nbd0 &&
	[ -e /sys/block/nbd0/pid ]
}
ktap_check "an NBD connection made (and left)" connect
ktap_finish
