#!/bin/bash
# dmcoloctl with --tls-*: the NBD link runs over TLS with client
# certificates. nbd-server (force_tls, cacertfile) must refuse a plain client
# and a client whose certificate another CA signed; a client with a
# certificate of the pair's CA replicates over its TLS connection, and the
# data arrives exactly.
# Certificates are made here with certtool (gnutls-bin).
# Only on deb612: TLS is nbd-client's, and the kernel path is 030's.
# kernels: deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
T=/tmp/tls
ctl_test $T

# cert NAME CA TEMPLATE-LINES: NAME-key.pem and NAME.pem signed by CA
# (self-signed when CA is "self").
cert() {
	local name=$1 ca=$2
	printf '%s\n' "$3" 'expiration_days = 30' > $T/$name.tmpl
	certtool --generate-privkey --key-type=ecdsa --outfile $T/$name-key.pem 2> /dev/null &&
	if [ "$ca" = self ]; then
		certtool --generate-self-signed --load-privkey $T/$name-key.pem \
			--template $T/$name.tmpl --outfile $T/$name.pem 2> /dev/null
	else
		certtool --generate-certificate --load-privkey $T/$name-key.pem \
			--load-ca-certificate $T/$ca.pem --load-ca-privkey $T/$ca-key.pem \
			--template $T/$name.tmpl --outfile $T/$name.pem 2> /dev/null
	fi
}
make_certs() {
	cert ca self "$(printf '%s\n' 'cn = "colo CA"' ca cert_signing_key)" &&
	cert rogue-ca self "$(printf '%s\n' 'cn = "rogue CA"' ca cert_signing_key)" &&
	cert server ca "$(printf '%s\n' 'cn = "colo-sec"' 'dns_name = "colo-sec"' \
		'ip_address = "fe80::2"' tls_www_server signing_key encryption_key)" &&
	cert client ca "$(printf '%s\n' 'cn = "colo-pri"' tls_www_client signing_key encryption_key)" &&
	cert rogue rogue-ca "$(printf '%s\n' 'cn = "colo-pri"' tls_www_client signing_key encryption_key)"
}

rm -rf $T /run/dmcolo
mkdir -p $T
disk_setup 3 16
random_file $T/data $((2 * MiB))

ktap_plan 11
ktap_check "two namespaces, veth, IPv6 link-local" pair_net
ktap_check "CA, server and client certificates (and a rogue CA's client)" make_certs
ktap_check "secondary create --tls-*" sec secondary create s --disk $SDISK --buffer $SBUF \
	--listen "[fe80::2%veth-sec]:10809" --tls-cert $T/server.pem --tls-key $T/server-key.pem \
	--tls-ca $T/ca.pem
plain_refused() {
	modprobe nbd
	! ip netns exec col-pri nbd-client -t 5 -L -N s fe80::2%veth-pri 10809 /dev/nbd3 > $T/plain.log 2>&1 &&
		! grep -q . /sys/block/nbd3/pid 2>/dev/null
}
ktap_check "a plain (non-TLS) client is refused" plain_refused
rogue() {
	pri primary create p --disk $LOCAL --secondary "[fe80::2%veth-pri]:10809" --export s \
		--timeout 5 --tls-cert $T/rogue.pem --tls-key $T/rogue-key.pem --tls-ca $T/ca.pem
}
rogue_refused() {
	! rogue > $T/rogue.log 2>&1 && ! dmsetup info p > /dev/null 2>&1 &&
		! grep -q . /sys/block/nbd*/pid 2>/dev/null && [ ! -e /run/dmcolo/p ]
}
ktap_check "a client certificate from another CA is refused, nothing left" rogue_refused
sed 's/^/# /' $T/rogue.log
ktap_check "primary create with the CA's client certificate" \
	pri primary create p --disk $LOCAL --secondary "[fe80::2%veth-pri]:10809" --export s \
	--timeout 5 --tls-cert $T/client.pem --tls-key $T/client-key.pem --tls-ca $T/ca.pem
one_link() {
	[ "$(ip netns exec col-pri ss -Htn state established '( dport = :10809 )' | wc -l)" = 1 ]
}
ktap_check "... one TLS connection to the secondary" one_link
ktap_check "start over TLS: sync, secondary running" pri start p
write_checkpoint() {
	pwrite_direct /dev/mapper/p $((3 * MiB)) $T/data && pri checkpoint p
}
ktap_check "write 2 MiB, two-node checkpoint" write_checkpoint
ktap_check "the secondary disk has exactly the data" same_bytes $SDISK $((3 * MiB)) $T/data
teardown() { pri remove p > /dev/null && sec remove s > /dev/null && ! pgrep -x nbd-server > /dev/null; }
ktap_check "remove both; no nbd-server left" teardown
ktap_finish
