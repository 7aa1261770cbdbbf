#!/bin/bash
# Hostile input, generated: malformed constructor lines for the three
# targets (wrong counts, huge, negative and non-numeric numbers, missing,
# wrong and repeated devices, chunk and region sizes that are not powers of
# two or do not fit the devices, bad options) and messages in every state
# the bed can reach (secondary idle, running, standalone; primary idle,
# replicating, degraded). Every one must be refused, log why (a kernel log
# line per refusal), leave no device behind and change no state; the
# devices must work afterwards; the suite's kmemleak scan covers leaks.
# Seeded: HOSTILE_SEED=N HOSTILE_COUNT=N for other or longer runs.
# Only on the debug kernel (6.12 with memory and lock checks): the
# refusals are parsing, the same on every disk and CPU; what matters is
# that each error path frees what it took.
# kernels: debug
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

SEED=${HOSTILE_SEED:-4242} COUNT=${HOSTILE_COUNT:-125}
T=/tmp/hostile
vm_test_on_exit $T bad pri rem sec-in sec tiny
rm -rf $T
mkdir -p $T
disk_setup 5 16
SZ=$((16 * 2048))
dmsetup create tiny --table "0 8 linear /dev/testdisk4 0"
echo "# seed $SEED, $COUNT cases per group"

# gen KIND [STATE]: the cases of one group, from one awk process (a
# subshell per random pick costs seconds under TCG). KIND is secondary,
# ingress, primary or message (with STATE s-idle, p-degraded, ...). Every
# case is invalid: generated messages that STATE allows are dropped.
gen() {
	awk -v kind="$1" -v state="${2:-}" -v dev="${3:-}" -v count="$COUNT" -v sz="$SZ" \
		-v seed="$SEED-$1-${2:-}" '
	function pick(list,   a, n) { n = split(list, a, "|"); return a[1 + int(rand() * n)] }
	function ram() { return "/dev/testdisk" int(rand() * 3) }
	function next_ram(d) { return "/dev/testdisk" ((substr(d, 14) + 1) % 3) }
	# A chunk size (sectors) the constructor must refuse.
	function bad_number() {
		return pick("-1|-4096|0x400|1e3|8.0||abc|18446744073709551616|99999999999999999999999|" \
			    "4294967296|2147483648|-9223372036854775808|3|7|12|100|1000|4095|08x|0|4|131072")
	}
	function bad_dev() { return pick("/dev/nonexistent|/dev/null|/tmp|/dev/testdisk9||0:0|999:999|/dev/mapper/tiny") }
	# An optional-argument list colo-primary must refuse.
	function opt(   k) {
		k = int(rand() * 6)
		if (k == 0) return "mode " pick("x||1|syncx|-")
		if (k == 1) return "max_inflight_kb " pick("-1|abc|0|1|3|4194305|99999999999|1e3|0x10|")
		if (k == 2) return "region_sectors " pick("0|4|1000|4096x|4194304|abc|-8|" sz * 2 "|18446744073709551616")
		if (k == 3) return "region_sectors " bad_number()
		if (k == 4) return "nosync " pick("1|x|mode")
		return pick("bogus|sync|region|max_inflight|-|NOSYNCX")
	}
	function words(s,   a) { return split(s, a, " ") }
	function secondary(   d, b, k) {
		d = ram(); b = next_ram(d); k = int(rand() * 9)
		if (k == 0) return "0 " sz " colo-secondary"
		if (k == 1) return "0 " sz " colo-secondary " d
		if (k == 2) return "0 " sz " colo-secondary " d " " b
		if (k == 3) return "0 " sz " colo-secondary " d " " b " " bad_number()
		if (k == 4) return "0 " sz " colo-secondary " d " " d " 128"
		if (k == 5) return "0 " sz " colo-secondary " bad_dev() " " b " 128"
		if (k == 6) return "0 " sz " colo-secondary " d " " bad_dev() " 128"
		if (k == 7) return "0 " sz " colo-secondary " d " " b " 128 " pick("1|2|-1|7|x|99999999999") " " pick("foo|0|sync|")
		return "0 " (sz + 8 * (1 + int(rand() * 64))) " colo-secondary " d " " b " 128"
	}
	function ingress(   k) {
		k = int(rand() * 4)
		if (k == 0) return "0 " sz " colo-ingress"
		if (k == 1) return "0 " sz " colo-ingress " ram()	# no colo-secondary on it
		if (k == 2) return "0 " sz " colo-ingress " bad_dev()
		return "0 " sz " colo-ingress " ram() " " pick("0|1|extra")
	}
	function primary(   l, r, k, o) {
		l = ram(); r = next_ram(l); k = int(rand() * 8)
		if (k == 0) return "0 " sz " colo-primary"
		if (k == 1) return "0 " sz " colo-primary " l
		if (k == 2) return "0 " sz " colo-primary " l " " l
		if (k == 3) return "0 " sz " colo-primary " bad_dev() " " r
		if (k == 4) return "0 " sz " colo-primary " l " " bad_dev()
		o = opt()
		if (k == 5) return "0 " sz " colo-primary " l " " r " " words(o) " " o
		if (k == 6) return "0 " sz " colo-primary " l " " r " " (words(o) + 1 + int(rand() * 3)) " " o
		return "0 " (sz + 8 * (1 + int(rand() * 64))) " colo-primary " l " " r
	}
	function word() {
		return pick("start|stop|checkpoint|failover|resync|full|merge|status|0|1|-1|" \
			    "18446744073709551616||x|start start|START|Checkpoint|" \
			    sprintf("w%08x", int(rand() * 2147483647)))
	}
	# Messages each state allows (the targets compare case-insensitively).
	BEGIN {
		valid["s-idle:start"]; valid["s-running:checkpoint"]; valid["s-running:stop"]
		valid["s-running:failover"]; valid["p-idle:start"]; valid["p-idle:start full"]
		valid["p-replicating:checkpoint"]; valid["p-replicating:stop"]
		valid["p-degraded:resync"]; valid["p-degraded:resync full"]; valid["p-degraded:stop"]
		n = kind == "ingress" || kind == "message" ? int(count / 2) : count
		# One seed per group, from the run seed and the group name.
		chars = "-0123456789abcdefghijklmnopqrstuvwxyz"
		for (i = 1; i <= length(seed); i++)
			h = (h * 31 + index(chars, substr(seed, i, 1))) % 2147483647
		srand(h)
		for (i = 0; i < n; i++) {
			if (kind == "secondary") print "table bad " secondary()
			else if (kind == "ingress") print "table bad " ingress()
			else if (kind == "primary") print "table bad " primary()
			else {
				m = word()
				if (rand() < 0.5) m = m " " word()
				if (rand() < 0.25) m = m " " word() " " word()
				gsub(/  +/, " ", m); sub(/^ /, "", m); sub(/ $/, "", m)
				if (m == "" || (state ":" tolower(m)) in valid) continue
				split(state, st, "-")
				print "message " dev " " st[2] " " m
			}
		}
	}'
}

# mark: a fresh marker in the kernel log; logged: colo lines after it (the
# ring buffer may drop older lines while a group runs, never newer ones).
mark() { MARK="hostile-$RANDOM-$SECONDS"; echo "dmcolo-hostile: $MARK" > /dev/kmsg; }
logged() { dmesg | sed -n "/dmcolo-hostile: $MARK/,\$p" | grep -c 'device-mapper: .*colo'; }

HOSTILE=$DMCOLO_TOP/build/tests/colo-hostile
# refuse_all GROUP FILE: every case of FILE (colo-hostile's input: tables
# must be refused and leave no device, messages refused and the state kept)
# misbehaves in no way, and each refusal logged a kernel line; one result.
refuse_all() {
	local group=$1 file=$2 n out after bad=""
	n=$(grep -c . "$file")
	mark
	out=$("$HOSTILE" < "$file" 2>&1) || bad=$(echo "$out" | head -n 20)
	after=$(logged)
	[ "$after" -ge "$n" ] || bad="$bad
only $after kernel log lines for $n refusals"
	if [ -z "$bad" ]; then
		ktap_ok "$group: $n refused, each logged (${out##*$'\n'})"
	else
		ktap_fail "$group: $n refused, each logged" "$bad"
	fi
	TOTAL=$((TOTAL + n))
}
TOTAL=0

ktap_plan 12
gen secondary > $T/secondary
refuse_all "colo-secondary tables" $T/secondary
gen ingress > $T/ingress
refuse_all "colo-ingress tables" $T/ingress
gen primary > $T/primary
refuse_all "colo-primary tables" $T/primary

# refuse_msgs DEV KIND STATE: generated messages STATE does not allow.
refuse_msgs() {
	gen message "$2-$3" "$1" > "$T/msg-$1-$3"
	refuse_all "$1 $3: messages" "$T/msg-$1-$3"
}

secondary_setup /dev/testdisk0 /dev/testdisk1 128 sec
refuse_msgs sec s idle
dmsetup message sec 0 start
refuse_msgs sec s running
# The primary's remote: a ramdisk behind dm-linear (no NBD needed here).
dmsetup create rem --table "0 $SZ linear /dev/testdisk2 0"
dmsetup create pri --table "0 $SZ colo-primary /dev/testdisk3 /dev/mapper/rem"
refuse_msgs pri p idle
dmsetup message pri 0 start
colo_wait_state pri replicating 60 > /dev/null
refuse_msgs pri p replicating
dmsetup load rem --table "0 $SZ error" && dmsetup suspend rem && dmsetup resume rem
random_file $T/w 4096
write_direct /dev/mapper/pri 0 $T/w	# the forward fails: degraded
colo_wait_state pri degraded 60 > /dev/null
refuse_msgs pri p degraded
dmsetup message sec 0 failover
colo_wait_state sec standalone 60 > /dev/null
refuse_msgs sec s standalone

# --- the devices still work
random_file $T/data $((256 << 10))
works() {
	write_direct /dev/mapper/sec $((1 << 20)) $T/data && same_bytes /dev/mapper/sec $((1 << 20)) $T/data &&
		write_direct /dev/mapper/pri $((2 << 20)) $T/data && same_bytes /dev/mapper/pri $((2 << 20)) $T/data &&
		same_bytes /dev/testdisk3 $((2 << 20)) $T/data
}
ktap_check "afterwards the secondary and the primary read back what is written" works
ktap_check "at least $((COUNT * 4)) hostile inputs in all ($TOTAL)" test $TOTAL -ge $((COUNT * 4))
no_leftover() { [ "$(dmsetup ls | awk '{ print $1 }' | sort | tr '\n' ' ')" = "pri rem sec sec-in tiny " ]; }
ktap_check "no device left behind but the bed's" no_leftover
echo "# hostile inputs refused: $TOTAL (seed $SEED)"
echo "# figure: hostile_inputs=$TOTAL"
ktap_finish
