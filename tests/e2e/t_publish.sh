# Publication: zones checked by named-checkzone, kzonecheck, ldns-verify-zone,
# dnssec-verify; TLSA records by ldns-dane and hash-slinger's tlsa; the
# .well-known chain walk; a real DNS server (NSD) for publish check.

# The CA, N devices (certificates in $T/certs), a server certificate for
# www.parkoserv.ca, and a second zone for it.
pub_setup() {
	ca_setup
	mkcsr --manifest "${1:-20}" --start 4000000000000001 >"$T/m.csv"
	kri device --out "$T/certs" "$T/m.csv" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/www.key" \
		-subj /CN=www.parkoserv.ca -addext subjectAltName=DNS:www.parkoserv.ca \
		-out "$T/www.csr" 2>/dev/null
	mkdir -p "$T/srv"
	kri server --out "$T/srv" "$T/www.csr" 2>/dev/null
	sed -i 's/^zones *=.*/zones   = registry, parko/' "$T/ca/keyrite.cnf"
	printf '\n[zone_parko]\nzone = parkoserv.ca\nrootcert = no\n' >>"$T/ca/keyrite.cnf"
}


krp() { kr publish --config "$T/ca/keyrite.cnf" "$@"; }

hexof() { od -An -tx1 -v | tr -d ' \n'; }

test_publish_zone_accepted_by_bind_knot_ldns_dane_and_tlsa() {
	pub_setup 20
	sed -i 's/^\[zone_registry\]/&\ncert_records = yes/' "$T/ca/keyrite.cnf"
	has "20 devices, 20 CERT" krp --zone iotregistry.ca --out "$T/pub" --soa
	local zone=$T/pub/iotregistry.ca.zone
	has "loaded serial" named-checkzone iotregistry.ca "$zone"
	kzonecheck -o iotregistry.ca "$zone" >/dev/null
	ldns-read-zone "$zone" >/dev/null
	# every device certificate matches its TLSA record (ldns-dane wants a
	# _port._proto owner: the record's data is what it checks)
	local n=0
	for c in "$T"/certs/*._device.*.pem; do
		local name
		name=$(basename "$c" .pem)
		grep "^$name\.[[:space:]].*TLSA" "$zone" | sed 's/^/_443._tcp./' >"$T/one.tlsa"
		[ "$(wc -l <"$T/one.tlsa")" -eq 1 ] || fail "$name: not one TLSA record"
		grep -q 'TLSA	3 1 1 [0-9a-f]\{64\}$' "$T/one.tlsa" || fail "$name: not 3 1 1, lowercase"
		has "dane-validated successfully" ldns-dane -n -t "$T/one.tlsa" -c "$c" verify
		n=$((n + 1))
	done
	[ $n -eq 20 ]
	# and not another's
	sed 's/3 1 1 [0-9a-f]\{8\}/3 1 1 00000000/' "$T/one.tlsa" >"$T/bad.tlsa"
	! ldns-dane -n -t "$T/bad.tlsa" -c "$c" verify >/dev/null 2>&1 || fail "a wrong digest validated"
	# CERT at <profile id>.<device id>.<zone>: PKIX, P-256 as DNSSEC algorithm 13, the DER
	local id=4000000000000003 pid
	pid=$(openssl x509 -in "$T"/certs/*.$id.*.pem -noout -subject | sed 's/.*CN = \([0-9]*\)\..*/\1/')
	grep "^$pid\.$id\.iotregistry\.ca\.[[:space:]].*CERT	PKIX [1-9][0-9]* 13 " "$zone" >"$T/cert.rr"
	awk '{print $NF}' "$T/cert.rr" | base64 -d | cmp - <(openssl x509 -in "$T"/certs/*.$id.*.pem -outform DER)
	# its key tag, by RFC 4034 appendix B over the DNSKEY RDATA (flags 0,
	# protocol 3, algorithm 13, x || y: the SPKI's last 64 bytes)
	local tag
	tag=$( { printf '\000\000\003\015'; openssl x509 -in "$T"/certs/*.$id.*.pem -noout -pubkey |
		openssl pkey -pubin -outform DER | tail -c 64; } | od -An -tu1 -v |
		awk '{ for (f = 1; f <= NF; f++) { ac += (i++ % 2) ? $f : $f * 256 } }
			END { ac += int(ac / 65536) % 65536; print ac % 65536 }')
	awk '{print $6}' "$T/cert.rr" | grep -qx "$tag" || fail "CERT key tag $(awk '{print $6}' "$T/cert.rr"), RFC 4034 gives $tag"
	# the root as _rootcert.device.<zone> TLSA 2 0 0 <DER>
	grep -q "^_rootcert\.device\.iotregistry\.ca\.[[:space:]].*TLSA	2 0 0 $(openssl x509 -in "$T/ca/root.pem" -outform DER | hexof)$" "$zone"
	# the server: hash-slinger's tlsa gives the same 3 1 1 digest
	has "1 records (0 devices, 0 CERT, 1 servers" krp --zone parkoserv.ca --out "$T/pub"
	local srv want
	srv=$(ls "$T"/srv/*.pem | grep -v chain.pem)
	want=$(tlsa --create --usage 3 --selector 1 --mtype 1 --certificate "$srv" --port 443 \
		--output generic www.parkoserv.ca 2>/dev/null | awk '/TYPE52/ {print $NF}' | sed 's/^030101//')
	[ ${#want} -eq 64 ] || fail "tlsa gave '$want'"
	grep -q "^_443\._tcp\.www\.parkoserv\.ca\.[[:space:]].*TLSA	3 1 1 $want$" "$T/pub/parkoserv.ca.zone"
	# .well-known/ca: from a device certificate's AKI to the root
	local cur=$c aki ski steps=0
	while :; do
		aki=$(openssl x509 -in "$cur" -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' ' | tr 'A-F:' 'a-f-')
		ski=$(openssl x509 -in "$cur" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' ' | tr 'A-F:' 'a-f-')
		[ "$aki" = "$ski" ] && break
		cur=$T/pub/.well-known/ca/$aki.pem
		assert_exists "$cur"
		steps=$((steps + 1))
		[ $steps -lt 5 ] || fail "no root after 5 steps"
	done
	[ $steps -eq 2 ] || fail "$steps steps to the root, expected 2"
	cmp <(openssl x509 -in "$cur" -outform DER) <(openssl x509 -in "$T/ca/root.pem" -outform DER)
	# publishing again replaces the zone atomically and keeps the same CA files
	krp --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	[ "$(ls "$T/pub/.well-known/ca" | wc -l)" -eq 3 ] # the root and the two sub-CAs
	! ls -a "$T/pub" "$T/pub/.well-known/ca" | grep -q keyrite-tmp || fail "temporary file left"
}

test_publish_signed_zone_verifies_and_gives_the_ds() {
	pub_setup 10
	dnssec_keys ec-p256
	krp --zone iotregistry.ca --out "$T/pub" --sign --pin-file "$T/pin" >"$T/out.txt"
	local zone=$T/pub/iotregistry.ca.zone
	has "Zone is verified and complete" ldns-verify-zone "$zone"
	has "Zone fully signed" dnssec-verify -o iotregistry.ca "$zone"
	named-checkzone iotregistry.ca "$zone" >/dev/null
	kzonecheck -o iotregistry.ca "$zone" >/dev/null
	grep -q 'NSEC3PARAM	1 0 0 -' "$zone" || fail "NSEC3 not with 0 iterations and no salt"
	grep -q 'DNSKEY	257 3 13 ' "$zone" || fail "no KSK"
	grep -q 'DNSKEY	256 3 13 ' "$zone" || fail "no ZSK"
	# the DS printed is the KSK's, as dnssec-dsfromkey computes it
	grep -q "DS for the parent: iotregistry.ca.	3600	IN	DS	[0-9]* 13 2 " "$T/out.txt"
	grep 'DNSKEY	257' "$zone" >"$T/ksk.key"
	local ds
	ds=$(dnssec-dsfromkey -2 -f "$T/ksk.key" iotregistry.ca | awk '{print $NF}' | tr 'A-F' 'a-f')
	grep -q "13 2 $ds$" "$T/out.txt" || fail "DS differs from dnssec-dsfromkey's $ds"
	# the DNSSEC keys never left the token
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-devices --login --pin env:KR_TEST_PIN \
		--list-objects --type privkey 2>/dev/null | grep -A3 'iotregistry-ksk' | grep -q 'never extractable'
}

# NSEC instead of NSEC3, P-384 keys (algorithm 14), and enough devices that
# the zone is printed in several slices on several workers.
test_publish_signed_nsec_p384_zone_of_many_slices_verifies() {
	pub_setup 2500
	dnssec_keys ec-p384
	sed -i 's/^\[zone_registry\]/&\nnsec3 = no/' "$T/ca/keyrite.cnf"
	krp --zone iotregistry.ca --out "$T/pub" --sign --pin-file "$T/pin" >/dev/null
	local zone=$T/pub/iotregistry.ca.zone
	has "Zone is verified and complete" ldns-verify-zone "$zone"
	has "Zone fully signed" dnssec-verify -o iotregistry.ca "$zone"
	named-checkzone iotregistry.ca "$zone" >/dev/null
	kzonecheck -o iotregistry.ca "$zone" >/dev/null
	! grep -q NSEC3 "$zone" || fail "NSEC3 records with nsec3 = no"
	[ "$(grep -c 'IN	TLSA	3 1 1 ' "$zone")" -eq 2500 ] || fail "not 2500 TLSA records"
	# one signature per TLSA RRset: the devices' and the _rootcert's
	local n
	n=$(grep -c "IN	RRSIG	TLSA 14 " "$zone" || true)
	[ "$n" -eq 2501 ] || fail "$n P-384 signatures of TLSA sets, want 2501"
	[ "$(grep -c 'IN	SOA	' "$zone")" -eq 1 ] || fail "the SOA is not printed once"
	sed -n 2p "$zone" | grep -q 'IN	SOA	' || fail "the SOA does not come first"
}

# nsd_start ZONEFILE: NSD serving iotregistry.ca from ZONEFILE on 127.0.0.1,
# on a random free port ($PORT); ready when drill gets the SOA.
nsd_start() {
	local try
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$(shuf -i 20000-60000 -n 1)
		cat >"$T/nsd.conf" <<EOC
server:
  ip-address: 127.0.0.1@$PORT
  zonesdir: "$T"
  pidfile: "$T/nsd.pid"
  database: ""
  username: ""
  xfrdfile: "$T/xfrd.state"
  zonelistfile: "$T/zone.list"
  logfile: "$T/nsd.log"
  chroot: ""
remote-control:
  control-enable: no
zone:
  name: iotregistry.ca
  zonefile: "$1"
EOC
		rm -f "$T/nsd.pid"
		nsd -c "$T/nsd.conf" || continue
		for _ in $(seq 30); do
			# on UDP and on TCP (the port's TCP side may be another's)
			drill -p "$PORT" @127.0.0.1 SOA iotregistry.ca 2>/dev/null | grep -q 'rcode: NOERROR' &&
				drill -t -p "$PORT" @127.0.0.1 SOA iotregistry.ca 2>/dev/null |
				grep -q 'rcode: NOERROR' && return
			sleep 0.1
		done
		nsd_stop # the port was taken, or it is slow: another port
	done
	cat "$T/nsd.log" >&2
	fail "nsd did not start"
}

nsd_stop() {
	[ -f "$T/nsd.pid" ] && kill "$(cat "$T/nsd.pid")" 2>/dev/null || true
	for _ in $(seq 50); do [ -f "$T/nsd.pid" ] && kill -0 "$(cat "$T/nsd.pid")" 2>/dev/null || return 0; sleep 0.1; done
}

test_publish_check_against_nsd_then_stale_after_revocation() {
	pub_setup 10
	trap 'nsd_stop; teardown' EXIT
	krp --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	mkdir "$T/served"
	cp "$T/pub/iotregistry.ca.zone" "$T/served/iotregistry.ca.zone"
	nsd_start "$T/served/iotregistry.ca.zone"
	has "11 expected, 11 match, 0 missing, 0 mismatched, 0 stale" \
		kr publish check --config "$T/ca/keyrite.cnf" --server "127.0.0.1:$PORT" --zone iotregistry.ca
	# a device is revoked: the server still publishes it
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --device 4000000000000004 >/dev/null
	local owner
	owner=$(basename "$T"/certs/*.4000000000000004.*.pem .pem)
	expect 8 "1 problem(s)" kr publish check --config "$T/ca/keyrite.cnf" \
		--server "127.0.0.1:$PORT" --zone iotregistry.ca
	grep -q "^stale $owner\. TLSA 3 1 1 [0-9a-f]*: certificate revoked (device 4000000000000004 serial " "$T/expect.out"
	grep -q "10 expected, 10 match, 0 missing, 0 mismatched, 1 stale" "$T/expect.out"
	# the same from the zone file
	expect 8 "1 problem(s)" kr publish check --config "$T/ca/keyrite.cnf" --zone "$T/served/iotregistry.ca.zone"
	# the incremental update deletes exactly that record
	krp --zone iotregistry.ca --out "$T/pub" --soa --changes "$T/changes.txt" >/dev/null
	[ "$(grep -c '^update' "$T/changes.txt")" -eq 1 ]
	grep -q "^update delete $owner\. TLSA 3 1 1 " "$T/changes.txt"
	[ "$(head -1 "$T/changes.txt")" = "zone iotregistry.ca." ] || fail "changes: no zone line"
	[ "$(tail -1 "$T/changes.txt")" = send ] || fail "changes: no send"
	expect 6 "already exists" krp --zone iotregistry.ca --out "$T/pub" --changes "$T/changes.txt"
	# a record the store does not know, and a mismatch, are reported too
	cp "$T/pub/iotregistry.ca.zone" "$T/edited.zone"
	echo "ghost._device.iotregistry.ca. 3600 IN TLSA 3 1 1 $(head -c 32 /dev/urandom | hexof)" >>"$T/edited.zone"
	sed -i "0,/_device.iotregistry.ca.*TLSA	3 1 1 /s/\(TLSA	3 1 1 \)[0-9a-f]\{4\}/\1ffff/" "$T/edited.zone"
	mv "$T/edited.zone" "$T/iotregistry.ca.zone"
	expect 8 "2 problem(s)" kr publish check --config "$T/ca/keyrite.cnf" --zone "$T/iotregistry.ca.zone"
	grep -q "^stale ghost._device.iotregistry.ca. TLSA .*: no valid certificate in the store" "$T/expect.out"
	grep -q "^mismatch .*: published 3 1 1 ffff" "$T/expect.out"
	# the server, restarted with the new zone, matches again
	nsd_stop
	nsd_start "$T/pub/iotregistry.ca.zone"
	has "10 expected, 10 match, 0 missing, 0 mismatched, 0 stale" \
		kr publish check --config "$T/ca/keyrite.cnf" --server "127.0.0.1:$PORT" --zone iotregistry.ca
	nsd_stop
	expect 7 "does not answer" kr publish check --config "$T/ca/keyrite.cnf" \
		--server "127.0.0.1:$PORT" --zone iotregistry.ca
}

# A disk that fills up while the zone is written: one message naming the
# zone file, exit status 7, the zone published before left whole, and the
# failed publication not recorded (the next one reports every change).
test_publish_full_disk_keeps_the_last_zone() {
	pub_setup 3
	mkdir "$T/small"
	mount -t tmpfs -o size=48k tmpfs "$T/small"
	trap 'umount "$T/small" 2>/dev/null || true; teardown' EXIT
	krp --zone iotregistry.ca --out "$T/small" >/dev/null
	sha256sum "$T/small/iotregistry.ca.zone" >"$T/zone.sum"
	mkcsr --manifest 300 --start 4100000000000001 >"$T/m2.csv"
	kri device --out "$T/certs" "$T/m2.csv" 2>/dev/null
	expect 7 "$T/small/iotregistry.ca.zone: write failed: No space left on device" \
		krp --zone iotregistry.ca --out "$T/small"
	sha256sum -c --quiet "$T/zone.sum" || fail "the last zone was changed"
	! ls -a "$T/small" | grep -q keyrite-tmp || fail "temporary file left"
	has "since the last publication: 300 added, 0 removed" krp --zone iotregistry.ca --out "$T/pub"
}

test_publish_bad_input_one_message_and_no_half_zone() {
	pub_setup 3
	expect 2 "no zone 'example.org'" krp --zone example.org --out "$T/pub"
	expect 7 "cannot create" krp --zone iotregistry.ca --out "$T/nonexistent/dir"
	expect 2 "needs soa_mname, soa_rname and ns" krp --zone parkoserv.ca --out "$T/pub" --soa
	expect 2 "--sign needs ksk_uri and zsk_uri" krp --zone parkoserv.ca --out "$T/pub" --sign
	expect 4 "no such private key" krp --zone iotregistry.ca --out "$T/pub" --sign --pin-file "$T/pin"
	assert_absent "$T/pub/iotregistry.ca.zone"
	! ls -a "$T/pub" 2>/dev/null | grep -q keyrite-tmp || fail "temporary file left"
	cp "$T/ca/keyrite.cnf" "$T/good.cnf"
	sed -i 's/^zone      = iotregistry.ca/zone      = bad..name/' "$T/ca/keyrite.cnf"
	expect 3 "keyrite.cnf:" krp --zone iotregistry.ca --out "$T/pub"
	grep -q "\[zone_registry\] zone" "$T/expect.err"
	cp "$T/good.cnf" "$T/ca/keyrite.cnf"
	sed -i 's/^ns        = ns1.iotregistry.ca=192.0.2.53/ns = ns1.iotregistry.ca/' "$T/ca/keyrite.cnf"
	expect 3 "is inside the zone: give its address" krp --zone iotregistry.ca --out "$T/pub"
	cp "$T/good.cnf" "$T/ca/keyrite.cnf"
	expect 2 "expected a file named ZONE.zone" kr publish check --config "$T/ca/keyrite.cnf" --zone "$T/m.csv"
	# a store in which no CA was ever registered
	sed -e "s|^store *=.*|store = $T/empty.db|" -e "s|^certificate *= subca-devices.pem|certificate = missing.pem|" \
		"$T/good.cnf" >"$T/ca/empty.cnf"
	expect 7 "missing.pem: cannot open" kri device --config "$T/ca/empty.cnf" "$T/m.csv"
	expect 3 "the store has no CA yet" kr publish --config "$T/ca/empty.cnf" --zone iotregistry.ca --out "$T/pub"
	# a certificate in the chain without a subjectKeyIdentifier is named
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/x.key" \
		-subj "/CN=No SKI Cross" -addext subjectKeyIdentifier=none \
		-addext authorityKeyIdentifier=none -out "$T/noski.pem" 2>/dev/null
	cat "$T/ca/root.pem" "$T/noski.pem" >"$T/ca/chain.pem"
	sed -i 's/^chain *= root.pem/chain = chain.pem/' "$T/ca/keyrite.cnf"
	expect 3 "CA certificate /CN=No SKI Cross: no usable subjectKeyIdentifier" \
		krp --zone iotregistry.ca --out "$T/pub2"
	assert_absent "$T/pub2/iotregistry.ca.zone"
}

# keyrite(1): publish check asks "without recursion". BIND's query log marks
# each query's RD flag (+ set, - clear); before, every query had RD set.
test_publish_check_asks_the_server_without_recursion() {
	pub_setup 3
	trap 'named_stop; teardown' EXIT
	krp --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	named_start "$T/pub/iotregistry.ca.zone"
	has "4 expected, 4 match, 0 missing, 0 mismatched, 0 stale" \
		kr publish check --config "$T/ca/keyrite.cnf" --server "127.0.0.1:$PORT" --zone iotregistry.ca
	# one per name, and the _rootcert one again with EDNS (its answer, a
	# whole certificate, does not fit 512 octets)
	[ "$(grep -c ' IN TLSA ' "$T/named/query.log")" -ge 4 ] || fail "want 4 TLSA queries logged"
	! grep ' IN TLSA +' "$T/named/query.log" || fail "a query asked for recursion (RD set)"
}

# 10,000 devices move (each gets a new profile id and certificate, the old
# one revoked): 40,000 updates (TLSA and CERT, deleted and added), 2.7 MB on
# the wire. A DNS message holds at most 65,535 octets (RFC 1035 4.2.2), so
# the changes file is cut into messages; nsupdate applies all of them to a
# real BIND (one server line before them, as keyrite(1) shows), and publish
# check against it then finds every device's records and nothing stale.
# 10,000 devices (KR_E2E_BULK under the sanitizers, see the Makefile) move
# to new certificates: 4 updates each, in messages nsupdate and BIND take.
test_publish_changes_of_10000_moved_devices_applied_to_bind() {
	local n=${KR_E2E_BULK:-10000}
	pub_setup "$n"
	trap 'named_stop; teardown' EXIT
	sed -i 's/^\[zone_registry\]/&\ncert_records = yes/' "$T/ca/keyrite.cnf"
	krp --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	named_start "$T/pub/iotregistry.ca.zone"
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --reason affiliationChanged \
		$(krc | awk '$6 == "device" {print $1}') >/dev/null
	mkcsr --manifest "$n" --start 4000000000000001 >"$T/moved.csv"
	kri device "$T/moved.csv" 2>/dev/null
	has "$((2 * n)) added, $((2 * n)) removed; nsupdate script of [0-9]* message(s)" \
		krp --zone iotregistry.ca --out "$T/pub" --soa --changes "$T/changes.txt"
	local sends
	sends=$(grep -c '^send$' "$T/changes.txt")
	[ "$sends" -ge $((4 * n / 500 + 1)) ] || fail "$sends messages for $((4 * n)) updates"
	# each message under the limit: its updates' wire length, as ldns gives it
	awk '/^update/ {n++} /^send$/ { if (n > 500) bad = 1; n = 0 } END { exit bad }' "$T/changes.txt" ||
		fail "a message of more than 500 updates"
	[ "$(grep -c '^zone iotregistry.ca.$' "$T/changes.txt")" -eq "$sends" ] || fail "a message without its zone"
	{ echo "server 127.0.0.1 $PORT"; cat "$T/changes.txt"; } |
		nsupdate -k "$T/named/update.key" >"$T/nsupdate.out" 2>&1 ||
		{ grep -m5 -v 'operation canceled' "$T/nsupdate.out"; tail -5 "$T/named/named.log"
		  fail "nsupdate refused the changes"; }
	has "$((2 * n + 1)) expected, $((2 * n + 1)) match, 0 missing, 0 mismatched, 0 stale" \
		kr publish check --config "$T/ca/keyrite.cnf" --server "127.0.0.1:$PORT" --zone iotregistry.ca
}
