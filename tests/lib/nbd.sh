# shellcheck shell=bash
# NBD helpers: Debian's nbd-server exporting a block device, the kernel
# client attached with nbd-client, always with a timeout (-t): without one a
# stalled server leaves the client in D state for ever.

NBD_TIMEOUT=${NBD_TIMEOUT:-10}

# nbd_serve NAME DEV ADDR PORT [NETNS]: export DEV as NAME; flush and FUA
# on, so a flush from the client reaches DEV before it completes; TRIM off
# as dmcoloctl has it (nbd-server 3.24 computes its length wrongly:
# dm-colo.rst, "What the NBD export must do"), so the client takes no
# discards; NBD_TRIM=true turns it on.
# NBD_EXPORT_EXTRA: more lines for the export's section (e.g. "sync = true":
# an fsync after every write, so each write reaches DEV before its reply).
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
	trim = ${NBD_TRIM:-false}
	${NBD_EXPORT_EXTRA:-}
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

# nbd_server_pids NAME: the server's pid, then its children's (one per
# client connection); nothing when it is not running.
nbd_server_pids() {
	local pid
	pid=$(cat "/tmp/nbd-$1.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	echo "$pid"
	pgrep -P "$pid"
	return 0
}

# nbd_alive PID: the process exists and is not a zombie (a killed child
# stays one until a stopped parent reaps it).
nbd_alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# nbd_wait_gone PID...: until those processes are gone (10 s at most).
nbd_wait_gone() {
	local p i alive
	for i in $(seq 50); do
		alive=""
		for p in "$@"; do nbd_alive "$p" && alive="$alive $p"; done
		[ -n "$alive" ] || return 0
		[ "$i" -lt 50 ] && sleep 0.2
	done
	echo "nbd-server processes$alive still there" >&2
	return 1
}

# nbd_signal NAME SIGNAL: SIGNAL to the server and its connections.
nbd_signal() {
	local p
	for p in $(nbd_server_pids "$1"); do kill "-$2" "$p" 2>/dev/null; done
	return 0
}

# nbd_kill NAME: SIGKILL to the server and its connections (a crash, also
# of a stopped server), and wait until they are gone.
nbd_kill() {
	local pids
	pids=$(nbd_server_pids "$1")
	[ -n "$pids" ] || return 0
	nbd_signal "$1" KILL
	# shellcheck disable=SC2086 # one pid per word
	nbd_wait_gone $pids
}

# nbd_kill_conns NAME: SIGKILL to the server's connections only (the
# server keeps listening), and wait until they are gone.
nbd_kill_conns() {
	local pid conns c
	pid=$(nbd_server_pids "$1" | head -n 1)
	[ -n "$pid" ] || return 0
	conns=$(pgrep -P "$pid")
	[ -n "$conns" ] || return 0
	for c in $conns; do kill -KILL "$c" 2>/dev/null; done
	# shellcheck disable=SC2086 # one pid per word
	nbd_wait_gone $conns
}
