# shellcheck shell=bash
# NBD helpers: Debian's nbd-server exporting a block device, the kernel
# client attached with nbd-client, always with a timeout (-t): without one a
# stalled server leaves the client in D state for ever.

NBD_TIMEOUT=${NBD_TIMEOUT:-10}

# nbd_serve NAME DEV ADDR PORT [NETNS]: export DEV as NAME; flush and FUA
# on, so a flush from the client reaches DEV before it completes.
nbd_serve() {
	local name=$1 dev=$2 addr=$3 port=$4 ns=${5:-} conf=/tmp/nbd-$1.conf i
	cat > "$conf" <<-CONF
	[generic]
	user = root
	group = root
	listenaddr = $addr
	port = $port
	allowlist = true
	[$name]
	exportname = $dev
	flush = true
	fua = true
	trim = true
	CONF
	${ns:+ip netns exec "$ns"} nbd-server -C "$conf" -p "/tmp/nbd-$name.pid" || return 1
	for i in $(seq 50); do
		${ns:+ip netns exec "$ns"} ss -Hltn "sport = :$port" | grep -q . && return 0
		sleep 0.2
	done
	echo "nbd-server for $name does not listen on $addr port $port" >&2
	return 1
}

nbd_stop() {
	local pidfile=/tmp/nbd-$1.pid
	[ -f "$pidfile" ] || return 0
	kill "$(cat "$pidfile")" 2>/dev/null
	rm -f "$pidfile" "/tmp/nbd-$1.conf"
}

# nbd_connect NAME ADDR PORT NBDDEV [NETNS]
# Inside a network namespace the ioctl interface (-L) is used: before 6.2
# nbd's generic netlink family exists in the initial namespace only.
nbd_connect() {
	modprobe nbd nbds_max=4 || return 1
	${5:+ip netns exec "$5"} nbd-client -t "$NBD_TIMEOUT" ${5:+-L} -N "$1" "$2" "$3" "$4"
}

nbd_disconnect() {
	[ -b "$1" ] || return 0
	nbd-client -d "$1" > /dev/null 2>&1
}
