# Batch issuance: hostile requests, crash safety, revocation, the audit log.

# expect_rejected FILE REASON: the batch's report names FILE with REASON.
expect_rejected() {
	grep -F -- "$1: rejected: " "$T/report" | grep -qF -- "$2" ||
		{ grep -F -- "$1" "$T/report" >&2; fail "$1 not rejected with '$2'"; }
}

test_hostile_batch_rejects_each_defect_and_issues_the_rest() {
	ca_setup
	# Registered devices (a manifest registers its devices).
	echo "device_id,model,version,csr" >"$T/good.csv"
	for i in 1 2 3 4 5; do
		mkcsr --cn 300000000000000$i --der --out "$T/g$i.der"
		echo "300000000000000$i,SParkometer,1.1,$(base64 -w0 "$T/g$i.der")" >>"$T/good.csv"
	done
	kri device --out "$T/certs" "$T/good.csv" >/dev/null
	cd "$T/in"
	echo hello >01-not-der.csr
	printf -- '-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n' >02-bad-pem.csr
	: >03-empty.csr
	mkcsr --cn 3000000000000001 --der --truncate 10 --out 04-truncated.der
	mkcsr --cn 3000000000000001 --der --trailing --out 05-trailing.der
	cp "$T/ca/root.pem" 06-certificate.pem
	{ mkcsr --cn 3000000000000002; mkcsr --cn 3000000000000003; } >07-two-csrs.pem
	mkcsr --cn 3000000000000001 --corrupt-sig --out 08-bad-signature.pem
	mkcsr --cn 3000000000000001 --md sha1 --out 09-sha1.pem
	mkcsr --cn 3000000000000001 --key rsa-1024 --out 10-rsa-1024.pem
	mkcsr --cn 3000000000000001 --key rsa-e3 --out 11-rsa-e3.pem
	mkcsr --cn 3000000000000001 --key ec-p521 --out 12-p521.pem
	mkcsr --cn 3000000000000001 --key secp256k1 --out 13-secp256k1.pem
	mkcsr --cn 3000000000000001 --key ec-explicit --out 14-explicit.pem
	mkcsr --cn 3000000000000001 --key rsa-2048 --out 15-rsa-2048.pem
	mkcsr --cn 3000000000000001 --key ed25519 --out 16-ed25519.pem
	mkcsr --cn 3000000000000001 --version 1 --out 17-version.pem
	mkcsr --cn 3000000000000001 --ca --out 18-ca-true.pem
	mkcsr --cn 3000000000000001 --keycertsign --out 19-keycertsign.pem
	mkcsr --cn 3000000000000001 --critical-unknown --out 20-critical.pem
	mkcsr --cn 3000000000000001 --ip 192.0.2.1 --out 21-ip-san.pem
	mkcsr --cn 3000000000000001 --email a@example.com --out 22-email-san.pem
	mkcsr --cn 9999999999999999 --out 23-unknown-device.pem
	mkcsr --out 24-no-cn.pem
	mkcsr --cn 'bad id!' --out 25-bad-device-id.pem
	head -c 70000 /dev/zero | tr '\0' 'A' >26-too-large.csr
	mkcsr --cn 3000000000000002 --out 28-good.pem
	cp 28-good.pem 27-duplicate.pem
	mkcsr --cn $'30000\x01' --out 29-control.pem
	mkcsr --cn "$(printf '3%.0s' $(seq 70))" --out 30-long-cn.pem
	openssl req -inform DER -in "$T/g1.der" -out 31-already.pem
	mkcsr --cn 3000000000000003 --key ec-p384 --out 32-good-p384.pem
	mkcsr --cn 3000000000000004 --dns www.bank.example --out 33-dns-san.pem
	cd "$T"
	{
		echo "device_id,model,version,csr"
		echo "3000000000000004,SParkometer,1.1"
		echo "3000000000000004,SParkometer,1.1,"
		echo "3000000000000004,SParkometer,1.1,not*base64"
		echo "3000000000000009,SParkometer,1.1,$(mkcsr --cn 3000000000000008 --der | base64 -w0)"
		echo '3000000000000004,"SPark,1.1,x'
		echo "3000000000000010,SParkometer,1.1,$(mkcsr --cn 3000000000000010 --der | base64 -w0)"
	} >"$T/bad.csv"
	rc=0
	kri device --out "$T/certs" --json "$T/in" "$T/bad.csv" >"$T/json" 2>"$T/report" || rc=$?
	cat "$T/report"
	[ $rc -eq 1 ] || fail "exit status $rc, want 1 (some rejected)"
	expect_rejected 01-not-der.csr "malformed DER"
	expect_rejected 02-bad-pem.csr "malformed PEM"
	expect_rejected 03-empty.csr "empty file"
	expect_rejected 04-truncated.der "malformed DER"
	expect_rejected 05-trailing.der "trailing data"
	expect_rejected 06-certificate.pem "not a CERTIFICATE REQUEST"
	expect_rejected 07-two-csrs.pem "more than one PEM block"
	expect_rejected 08-bad-signature.pem "bad signature"
	expect_rejected 09-sha1.pem "SHA-2 only"
	expect_rejected 10-rsa-1024.pem "key too weak"
	expect_rejected 11-rsa-e3.pem "exponent is not 65537"
	expect_rejected 12-p521.pem "curve secp521r1 is not allowed"
	expect_rejected 13-secp256k1.pem "curve secp256k1 is not allowed"
	expect_rejected 14-explicit.pem "explicit"
	expect_rejected 15-rsa-2048.pem "key type rsa-2048 is not allowed by profile device"
	expect_rejected 16-ed25519.pem "key type ed25519 is not allowed"
	expect_rejected 17-version.pem "CSR version is not 1"
	expect_rejected 18-ca-true.pem "CA:TRUE requested"
	expect_rejected 19-keycertsign.pem "keyCertSign or cRLSign requested"
	expect_rejected 20-critical.pem "critical extension"
	expect_rejected 21-ip-san.pem "SAN not permitted: IP Address:192.0.2.1"
	expect_rejected 22-email-san.pem "SAN not permitted: email:a@example.com"
	expect_rejected 33-dns-san.pem "SAN not permitted: DNS:www.bank.example (profile device names the device itself)"
	expect_rejected 23-unknown-device.pem "unknown device"
	expect_rejected 24-no-cn.pem "no device id"
	expect_rejected 25-bad-device-id.pem "may hold only letters, digits and hyphens"
	expect_rejected 26-too-large.csr "file too large"
	expect_rejected 28-good.pem "duplicate"
	expect_rejected 29-control.pem "control character"
	expect_rejected 30-long-cn.pem "longer than 64"
	expect_rejected bad.csv:2 "expected 4 columns"
	expect_rejected bad.csv:3 "csr column is empty"
	expect_rejected bad.csv:4 "not base64"
	expect_rejected bad.csv:5 "identity mismatch"
	expect_rejected bad.csv:6 "malformed quoting"
	# The good ones were issued, the already-issued one reported as such.
	grep -q '"input":"[^"]*27-duplicate.pem".*"status":"issued"' "$T/json"
	grep -q '"input":"[^"]*31-already.pem".*"status":"already-issued"' "$T/json"
	grep -q '"input":"[^"]*32-good-p384.pem".*"status":"issued"' "$T/json"
	grep -q '"input":"[^"]*bad.csv:7".*"status":"issued"' "$T/json"
	[ "$(grep -c '"status":"rejected"' "$T/json")" -eq 35 ] || fail "want 35 rejected"
	grep -q "keyrite: 3 issued, 1 already issued, 35 rejected" "$T/report"
	[ "$(verify_all "$T/certs")" -eq 8 ] || fail "want 8 verified certificates"
	# Server profile: names from the CSR, within the providers' domains.
	mkcsr --dns evil.example --out "$T/s1.pem"
	mkcsr --dns '*.parkoserv.ca' --out "$T/s2.pem"
	mkcsr --dns 'b_d.parkoserv.ca' --out "$T/s3.pem"
	mkcsr --cn nosan --out "$T/s4.pem"
	mkcsr --dns api.parkoserv.ca --dns www.carparkserv.ca --out "$T/s5.pem"
	mkdir "$T/server"
	rc=0
	kri server --out "$T/server" "$T/s1.pem" "$T/s2.pem" "$T/s3.pem" "$T/s4.pem" "$T/s5.pem" \
		2>"$T/report" || rc=$?
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	expect_rejected s1.pem "SAN not permitted: DNS:evil.example (not within profile server's permitted domains)"
	expect_rejected s2.pem "SAN not permitted: DNS:*.parkoserv.ca (wildcards are not issued)"
	expect_rejected s3.pem "SAN not permitted: DNS:b_d.parkoserv.ca (DNS name 'b_d.parkoserv.ca': character '_' is not allowed)"
	expect_rejected s4.pem "no DNS names requested"
	[ "$(verify_all "$T/server")" -eq 1 ]
	has "DNS:api.parkoserv.ca, DNS:www.carparkserv.ca" openssl x509 -in "$(ls "$T"/server/[0-9A-F]*.pem)" -noout -ext subjectAltName
}

test_every_request_rejected_exits_9() {
	ca_setup
	mkcsr --cn 1 --corrupt-sig --out "$T/in/a.pem"
	rc=0
	kri device "$T/in/a.pem" 2>"$T/report" || rc=$?
	[ $rc -eq 9 ] || fail "exit status $rc, want 9"
}

test_stdin_stream_and_device_profile_ids() {
	ca_setup
	mkcsr --manifest 3 --start 4000000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	# The same devices again, from a PEM stream: already issued.
	# The same devices with new keys, from a PEM stream: new certificates
	# under new profile ids (as in a transfer), the devices already known.
	mkcsr --stream 3 --start 4000000000000001 >"$T/stream.pem"
	kri device --json - <"$T/stream.pem" >"$T/json" 2>/dev/null
	[ "$(grep -c '"status":"issued"' "$T/json")" -eq 3 ] || fail "want 3 issued from stdin"
	grep -q '"input":"-:2","id":"4000000000000002","name":"15.4000000000000002._device.iotregistry.ca"' "$T/json"
	# Profile ids number registrations in order, from 11 (as in the registry).
	[ "$(krc --status valid --json | sed -n 's/.*"profile_id":\([0-9]*\).*/\1/p' | paste -sd,)" = "11,12,13,14,15,16" ]
	# The same stream again: every request already issued.
	kri device --json - <"$T/stream.pem" >"$T/json" 2>/dev/null
	[ "$(grep -c '"status":"already-issued"' "$T/json")" -eq 3 ] || fail "want 3 already issued"
	# A damaged block in the stream is rejected; the requests after it are not lost.
	{ mkcsr --cn 4000000000000001; printf -- '-----BEGIN CERTIFICATE REQUEST-----\n@@@\n-----END CERTIFICATE REQUEST-----\n'; mkcsr --cn 4000000000000002; } >"$T/mixed.pem"
	rc=0
	kri device --json - <"$T/mixed.pem" >"$T/json" 2>"$T/report" || rc=$?
	[ $rc -eq 1 ] || fail "exit status $rc, want 1"
	grep -q '"input":"-:2".*"status":"rejected","reason":"malformed PEM"' "$T/json"
	grep -q '"input":"-:3","id":"4000000000000002".*"status":"issued"' "$T/json"
}

# One chunk of 1502 requests: a CSR repeated 1500 rows later is the
# duplicate (the earliest is issued), and a device named again with a new
# key in the same chunk is added once and certified twice.
test_one_large_chunk_finds_repeats_wherever_they_are() {
	ca_setup
	mkcsr --manifest 1500 --start 4100000000000001 >"$T/m.csv"
	{ cat "$T/m.csv"; sed -n 2p "$T/m.csv"; mkcsr --manifest 1 --start 4100000000001500 | tail -n 1; } >"$T/all.csv"
	local rc=0
	kri device --chunk 5000 --json "$T/all.csv" >"$T/json" 2>"$T/report" || rc=$?
	[ $rc -eq 1 ] || fail "exit status $rc, want 1 (a request rejected)"
	[ "$(grep -c '"status":"issued"' "$T/json")" -eq 1501 ] || fail "want 1501 issued"
	expect_rejected "$T/all.csv:1502" "duplicate: the same CSR appears earlier in this batch"
	grep -q "\"input\":\"$T/all.csv:2\".*\"status\":\"issued\"" "$T/json" || fail "the first of the two not issued"
	grep -q "\"input\":\"$T/all.csv:1503\",\"id\":\"4100000000001500\".*\"status\":\"issued\"" "$T/json" ||
		fail "the device's second key not issued"
	[ "$(krc --status valid --json | grep -c '"device":"4100000000001500"')" -eq 2 ] || fail "want two certificates of device 1500"
}

test_killed_batch_rerun_completes_without_double_signing() {
	ca_setup
	mkcsr --manifest 6000 --start 5000000000000001 >"$T/m.csv"
	# keyrite itself in the background (not a shell function), so that the
	# SIGKILL reaches it.
	"$KEYRITE" issue --config "$T/ca/keyrite.cnf" --ca devices --profile device \
		--pin-file "$T/pin" --chunk 200 --out "$T/certs" "$T/m.csv" 2>/dev/null &
	pid=$!
	for _ in $(seq 400); do
		n=$(db_poll "select count(*) from cert where status='valid'")
		[ "${n:-0}" -ge 400 ] && break
		sleep 0.02
	done
	kill -9 $pid
	wait $pid || true
	before=$(ncerts --status valid)
	[ "$before" -lt 6000 ] || fail "the batch finished before it was killed"
	kri device --chunk 200 --out "$T/certs" "$T/m.csv" 2>"$T/report"
	grep -q "already issued" "$T/report"
	[ "$(ncerts --status valid)" -eq 6000 ]
	# rows no command lists (pending, abandoned): no serial twice, no CSR signed twice
	[ "$(db "select count(distinct serial) from cert")" -eq "$(db "select count(*) from cert")" ]
	[ "$(db "select count(*) from (select csr_sha256 from cert where status <> 'abandoned' group by csr_sha256 having count(*) > 1) as twice")" -eq 0 ]
	store_sound
	[ "$(ls "$T/certs" | grep -c '_device')" -eq 6000 ] || fail "want 6000 files, nothing else"
	# Every file that reached the output directory is in the store.
	krc --status valid >"$T/valid.txt"
	for f in $(ls "$T"/certs/*_device*.pem | shuf -n 50); do
		s=$(openssl x509 -in "$f" -noout -serial | cut -d= -f2)
		[ "$(grep -c "^$s " "$T/valid.txt")" -eq 1 ] || fail "$f not in store"
	done
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null
}

# stopped_batch_sound WHEN: after a batch of 200 into $T/certs was stopped
# (WHEN says how, for the messages), the store is sound and every file in
# $T/certs is one of its valid certificates.
stopped_batch_sound() {
	local when=$1 files=("$T"/certs/*_device*.pem)
	store_sound || fail "$when: the store is damaged"
	: >"$T/recorded" # stopped while the store was being made: no table yet
	[ "$(db "$(points "select count(*) from sqlite_master where name = 'cert'" \
		"select count(*) from pg_tables where tablename = 'cert'")")" -eq 0 ] ||
		db "select $(sql_hex serial) from cert where status = 'valid'" | sort >"$T/recorded"
	[ -e "${files[0]}" ] || return 0
	pem_serials "${files[@]}" | sort >"$T/named"
	[ "$(wc -l <"$T/named")" -eq "${#files[@]}" ] || fail "$when: unreadable outputs"
	comm -23 "$T/named" "$T/recorded" >"$T/unrecorded"
	[ ! -s "$T/unrecorded" ] || fail "$when: outputs without a record: $(head -3 "$T/unrecorded")"
}

# completes_again WHEN ARGS...: keyrite ARGS... run again completes the
# batch of 200: every request valid once, no serial twice, every file there,
# the audit chain whole.
completes_again() {
	local when=$1
	shift
	kr "$@" 2>"$T/report" || { tail -3 "$T/report"; fail "$when: the run again"; }
	[ "$(ncerts --status valid)" -eq 200 ] || fail "$when: want 200 valid"
	[ "$(db "select count(distinct serial) from cert")" -eq "$(db "select count(*) from cert")" ] ||
		fail "$when: a serial used twice"
	[ "$(ls "$T/certs" | grep -c _device)" -eq 200 ] || fail "$when: want 200 files"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# The same, killed at exact points instead of a random instant: while the
# store is being made and in the middle of a transaction, before a commit is
# made durable, before an output directory is synced, and before the chain,
# the first, a middle and the next chunk's first certificate file is named.
# Each time every file that appeared is a recorded certificate, the store is
# sound, and the run again completes without signing a CSR twice or reusing
# a serial. On PostgreSQL the store's points are statements sent, spread
# over those a first run sends (connecting, making the store, the first
# chunk's reservations and records, later chunks, near the end).
test_batch_killed_at_each_durable_step_completes() {
	ca_setup
	mkcsr --manifest 200 --start 5000000000000001 >"$T/m.csv"
	local args=(issue --config "$T/ca/keyrite.cnf" --ca devices --profile device
		--pin-file "$T/pin" --chunk 40 --out "$T/certs" "$T/m.csv")
	local store_points="pwrite64:1 pwrite64:250 fdatasync:2 fdatasync:3 fdatasync:4 fdatasync:12"
	if [ -n "${PG_DB:-}" ]; then # statements sent: spread over a whole run's
		mkdir -p "$T/certs"
		KR_CRASH_COUNT=$T/count LD_PRELOAD=$CRASHAT kr "${args[@]}" >/dev/null 2>&1 || fail "the probe run"
		local n
		n=$(awk '$1 == "send" {print $2}' "$T/count")
		store_points="send:1 send:4 send:$((n / 20)) send:$((n / 6)) send:$((n / 3)) send:$((2 * n / 3)) send:$((n - 3))"
	fi
	for at in $store_points syncfs:1 linkat:1 linkat:2 linkat:22 linkat:42; do
		rm -rf "$T/certs" && store_reset && mkdir "$T/certs"
		killed_at "$at" "${args[@]}"
		stopped_batch_sound "$at"
		completes_again "$at" "${args[@]}"
	done
}

# A disk that fills up in the middle of a batch (every write from then on
# failing), under the store twice, as the outputs are synced, and as the
# 30th file is named: the batch stops with one message naming the file and
# the reason and exit status 7, what was committed stays, no file without
# its record, and the run again, with room, completes.
test_full_disk_mid_batch_stops_cleanly() {
	ca_setup
	mkcsr --manifest 200 --start 5000000000000001 >"$T/m.csv"
	local args=(issue --config "$T/ca/keyrite.cnf" --ca devices --profile device
		--pin-file "$T/pin" --chunk 40 --out "$T/certs" "$T/m.csv")
	local case at want valid
	for case in "pwrite64:200|$T/ca/registry.db: database or disk is full" \
		"pwrite64:350|$T/ca/registry.db: database or disk is full" \
		"syncfs:1|$T/certs: sync failed: No space left on device" \
		"linkat:30|$T/certs/39.5000000000000029._device.iotregistry.ca.pem: cannot create: No space left on device"; do
		IFS='|' read -r at want <<<"$case"
		rm -rf "$T/certs" "$T"/ca/registry.db* && mkdir "$T/certs"
		full_at "$at" "${args[@]}"
		[ $rc -eq 7 ] || { cat "$T/full.err"; fail "$at: exit status $rc, want 7"; }
		[ "$(tail -1 "$T/full.err")" = "keyrite: $want" ] || { cat "$T/full.err"; fail "$at: message"; }
		stopped_batch_sound "$at"
		valid=$(ncerts --status valid)
		[ "$valid" -gt 0 ] && [ "$valid" -lt 200 ] || fail "$at: $valid committed, want some"
		[ "$(head -1 "$T/full.err")" = "keyrite: $valid issued, 0 already issued, 0 rejected" ] ||
			{ cat "$T/full.err"; fail "$at: the summary does not say $valid"; }
		[ "$(wc -l <"$T/full.err")" -eq 2 ] || { cat "$T/full.err"; fail "$at: want one message"; }
		completes_again "$at" "${args[@]}"
		grep -q "$((200 - valid)) issued, $valid already issued" "$T/report" ||
			{ cat "$T/report"; fail "$at: the run again"; }
	done
}

# A re-run finds a certificate's file name taken by other content: it is
# left as it is, the run stops there with the file and reason (exit 6), and
# the report does not name that file as the certificate's.
test_rerun_never_overwrites_or_claims_a_foreign_file() {
	ca_setup
	mkcsr --manifest 5 --start 5000000000000001 >"$T/m.csv"
	kri device --out "$T/certs" "$T/m.csv" 2>/dev/null
	local f
	f=$(ls "$T"/certs/*.5000000000000003.*)
	echo "not keyrite's" >"$f"
	rc=0
	kri device --json --out "$T/certs" "$T/m.csv" >"$T/json" 2>"$T/err" || rc=$?
	[ $rc -eq 6 ] || { cat "$T/err"; fail "exit status $rc, want 6"; }
	grep -qx "keyrite: $f: exists with other content; keyrite never overwrites an output (the certificate is in the store)" "$T/err" ||
		{ cat "$T/err"; fail "message"; }
	[ "$(cat "$f")" = "not keyrite's" ] || fail "the foreign file was changed"
	grep -q '"id":"5000000000000003".*"file":null' "$T/json" || { cat "$T/json"; fail "the report names the foreign file"; }
	grep -q '"id":"5000000000000002".*"file":"'"$T"'/certs/' "$T/json" || fail "the file before it is not reported"
}

test_full_disk_stops_cleanly_with_work_committed() {
	ca_setup
	mkdir "$T/small"
	mount -t tmpfs -o size=48k tmpfs "$T/small"
	trap 'umount "$T/small" 2>/dev/null || true; teardown' EXIT
	mkcsr --manifest 300 --start 6000000000000001 >"$T/m.csv"
	rc=0
	kri device --json --chunk 50 --out "$T/small" "$T/m.csv" >"$T/json" 2>"$T/report" || rc=$?
	[ $rc -eq 7 ] || { cat "$T/report"; fail "exit status $rc, want 7"; }
	grep -q "No space left on device" "$T/report"
	[ "$(db "pragma integrity_check")" = ok ]
	# Every recorded certificate is reported, and no report names a file
	# that is not there.
	valid=$(ncerts --status valid)
	grep -q "keyrite: $valid issued" "$T/report" || { cat "$T/report"; fail "report: want $valid issued"; }
	[ "$(grep -c '"status":"issued"' "$T/json")" -eq "$valid" ] || fail "want $valid JSON lines issued"
	for f in $(grep -o '"file":"[^"]*"' "$T/json" | cut -d'"' -f4); do
		[ -f "$f" ] || fail "reported file $f does not exist"
	done
	grep -q '"file":null' "$T/json" || fail "the certificates without a file are not reported"
	krc >"$T/recorded.txt"
	for f in "$T"/small/*_device*.pem; do
		s=$(openssl x509 -in "$f" -noout -serial | cut -d= -f2)
		[ "$(grep -c "^$s " "$T/recorded.txt")" -eq 1 ] || fail "$f not in store"
	done
	umount "$T/small"
	kri device --chunk 50 --out "$T/certs" "$T/m.csv" 2>/dev/null
	[ "$(ls "$T/certs" | grep -c _device)" -eq 300 ]
	[ "$(ncerts --status valid)" -eq 300 ]
}

test_read_only_output_directory_refused_before_signing() {
	ca_setup
	mkdir "$T/ro"
	mount --bind "$T/ro" "$T/ro"
	mount -o remount,ro,bind "$T/ro"
	trap 'umount "$T/ro" 2>/dev/null || true; teardown' EXIT
	mkcsr --manifest 5 >"$T/m.csv"
	expect 7 "Read-only file system" kri device --out "$T/ro" "$T/m.csv"
	[ "$(db "select count(*) from cert")" -eq 0 ] # not even a reserved row
}

test_foreign_or_damaged_store_refused_untouched() {
	ca_setup
	mkcsr --manifest 1 >"$T/m.csv"
	sqlite3 "$T/ca/registry.db" "create table t(x); insert into t values (1)"
	sum=$(sha256sum "$T/ca/registry.db")
	expect 3 "not a keyrite store" kri device "$T/m.csv"
	[ "$(sha256sum "$T/ca/registry.db")" = "$sum" ] || fail "foreign store modified"
	head -c 8192 /dev/urandom >"$T/ca/registry.db"
	sum=$(sha256sum "$T/ca/registry.db")
	expect 3 "registry.db" kri device "$T/m.csv"
	[ "$(sha256sum "$T/ca/registry.db")" = "$sum" ] || fail "damaged store modified"
}

# A sound store that cannot be written (its WAL index on a full disk) is
# an I/O failure (7), not a foreign file (3), and the CRL is not made.
test_store_on_full_disk_is_an_io_failure() {
	ca_setup
	mkcsr --manifest 3 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	full_at pwrite64:1 crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" --out "$T/1.crl"
	[ $rc -eq 7 ] || { cat "$T/full.err"; fail "exit status $rc, want 7"; }
	grep -qx "keyrite: $T/ca/registry.db: cannot read: disk I/O error" "$T/full.err" ||
		{ cat "$T/full.err"; fail "message"; }
	assert_absent "$T/1.crl"
	[ "$(db "pragma integrity_check")" = ok ] || fail "integrity_check"
}

# keyrite crl killed at each step (before the store is written, in the
# middle of the transaction, before its commit is durable, before the file
# is named): a CRL file exists only if the store recorded its number, and
# the next CRL's number is higher than every recorded one.
test_crl_killed_at_each_step_keeps_its_numbers() {
	ca_setup
	mkcsr --manifest 3 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	local k=0 at n points="pwrite64:1 pwrite64:2 fdatasync:1"
	if [ -n "${PG_DB:-}" ]; then
		# the statements a CRL sends, counted (its last is the Terminate)
		LD_PRELOAD="$CRASHAT" KR_CRASH_COUNT="$T/sends" kr crl --config "$T/ca/keyrite.cnf" \
			--ca devices --pin-file "$T/pin" --out "$T/0.crl" >/dev/null
		n=$(awk '$1 == "send" {print $2}' "$T/sends")
		points="send:2 send:$((n / 2)) send:$((n - 2)) send:$((n - 1))"
	fi
	for at in $points linkat:1; do
		killed_at "$at" crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" \
			--out "$T/$((k += 1)).crl"
		[ ! -e "$T/$k.crl" ] || fail "$at: a CRL file after the kill"
		store_sound || fail "$at: the store is damaged"
	done
	kr crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" --out "$T/last.crl" >/dev/null
	n=$(db "select max(number) from crl")
	[ "$(db "select count(*) from crl")" -eq "$n" ] || fail "CRL numbers are not 1..$n"
	[ "$(openssl crl -in "$T/last.crl" -noout -crlnumber)" = "crlNumber=0x$(printf %02X "$n")" ] ||
		fail "the last CRL is not number $n"
	has "verify OK" openssl crl -in "$T/last.crl" -CAfile "$T/ca/subca-devices.pem" -noout -verify
}

test_revoke_then_crl_checked_by_openssl() {
	ca_setup
	mkcsr --manifest 3 --start 7000000000000001 >"$T/m.csv"
	kri device --out "$T/certs" "$T/m.csv" 2>/dev/null
	serial=$(serial_of 7000000000000001)
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --reason keyCompromise "$serial" >/dev/null
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --device 7000000000000002 >/dev/null
	expect 3 "no valid certificate" kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices "$serial"
	kr crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" --out "$T/1.crl" >/dev/null
	kr crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" --out "$T/2.crl" >/dev/null
	has "verify OK" openssl crl -in "$T/2.crl" -CAfile "$T/ca/subca-devices.pem" -noout -verify
	has "Key Compromise" openssl crl -in "$T/2.crl" -noout -text
	has "X509v3 CRL Number: *$" openssl crl -in "$T/2.crl" -noout -text
	[ "$(openssl crl -in "$T/2.crl" -noout -crlnumber)" = "crlNumber=0x02" ] || fail "CRL number"
	c1=$(ls "$T"/certs/*.7000000000000001.*)
	c3=$(ls "$T"/certs/*.7000000000000003.*)
	! openssl verify -crl_check -CAfile "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
		-CRLfile "$T/2.crl" "$c1" >"$T/v" 2>&1 || fail "revoked certificate verifies"
	grep -q "certificate revoked" "$T/v"
	openssl verify -crl_check -CAfile "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
		-CRLfile "$T/2.crl" "$c3"
	has "revoked" kr certs --config "$T/ca/keyrite.cnf" --status revoked --json
	has "status:     revoked" kr show --config "$T/ca/keyrite.cnf" "$serial"
	kr show --config "$T/ca/keyrite.cnf" "$serial" >"$T/show"
	grep -q "issue   audit entry [0-9]*: ca=1 serial=$serial profile=device" "$T/show"
	# The entry names the request by its hash.
	csr=$(sed -n 2p "$T/m.csv" | cut -d, -f4 | base64 -d | sha256sum | cut -d' ' -f1)
	grep -q "serial=$serial profile=device csr-sha256=$csr tbs-sha256=" "$T/show"
	grep -q "revoke  audit entry [0-9]*: ca=1 serial=$serial reason=1" "$T/show"
	expect 6 "already exists" kr crl --config "$T/ca/keyrite.cnf" --ca devices --pin-file "$T/pin" --out "$T/2.crl"
	# The PIN is in no file keyrite wrote: store, journal, outputs.
	! grep -rqaF -- "$KR_TEST_PIN" "$T/ca" "$T/certs" "$T"/*.crl || fail "the PIN is in a file"
}

test_revoke_many_serials_at_once() {
	ca_setup
	mkcsr --manifest 300 --start 7100000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices $(krc | cut -d' ' -f1) >"$T/out.txt"
	[ "$(grep -c '^revoked ' "$T/out.txt")" -eq 300 ] || fail "every serial named is revoked"
	[ "$(ncerts --status revoked)" -eq 300 ]
	expect 2 "'zz' is not a hexadecimal serial" kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices 0A zz
}

# Recomputes the audit chain's hashes as keyrite does (SHA-256 of the previous
# hash and "seq<TAB>time<TAB>kind<TAB>detail"), as a forger would.
rehash_audit() {
	local prev seq time kind detail hash
	prev=$(printf '0%.0s' $(seq 64))
	db -separator $'\t' "select seq, time, kind, detail from audit order by seq" >"$T/audit.tsv"
	while IFS=$'\t' read -r seq time kind detail; do
		hash=$({ printf "$(sed 's/../\\x&/g' <<<"$prev")"; printf '%s\t%s\t%s\t%s' "$seq" "$time" "$kind" "$detail"; } |
			openssl dgst -sha256 -r | cut -c1-64)
		db "update audit set prev = X'$prev', hash = X'$hash' where seq = $seq"
		prev=$hash
	done <"$T/audit.tsv"
}

test_audit_log_detects_tampering() {
	ca_setup
	mkcsr --manifest 4 --start 8000000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --device 8000000000000001 >/dev/null
	kri device "$T/m.csv" 2>/dev/null # a second checkpoint
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	cp "$T/ca/registry.db" "$T/clean.db"
	restore() { cp "$T/clean.db" "$T/ca/registry.db"; }
	db "update audit set detail = detail || ' ' where seq = 2"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "entry 2 (issue): its content does not match its hash (edited)" "$T/expect.out"
	restore
	db "delete from audit where seq = 3"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "expected entry 3 here" "$T/expect.out"
	restore
	db "update audit set seq = -2 where seq = 2; update audit set seq = 2 where seq = 3; update audit set seq = 3 where seq = -2"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "chain broken" "$T/expect.out"
	restore
	db "update audit set seq = seq + 100 where seq >= 3; update audit set seq = seq - 99 where seq >= 103; insert into audit (seq, time, kind, detail, prev, hash) values (3, '2026-01-01T00:00:00Z', 'issue', 'ca=1 serial=00', zeroblob(32), zeroblob(32))"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "chain broken" "$T/expect.out"
	restore
	db "update checkpoint set signature = zeroblob(72) where seq = (select max(seq) from checkpoint)"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "bad signature by CA 'devices'" "$T/expect.out"
	restore
	# An edit whose author then recomputes every hash after it: the chain is
	# whole again, and only the checkpoints the CA key signed tell.
	db "update audit set detail = replace(detail, 'reason=0', 'reason=1') where kind = 'revoke'"
	rehash_audit
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "the chain's head there is not the one the CA signed" "$T/expect.out"
	! grep -q "edited\|chain broken" "$T/expect.out" || fail "the rehash left the chain broken"
	restore
	db "delete from audit where seq = (select max(seq) from audit where kind = 'issue')"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
}

test_profile_lint_refuses_before_any_signature() {
	ca_setup
	sed -i 's/^keyUsage         = critical, digitalSignature$/keyUsage = critical, digitalSignature, keyCertSign/' "$T/ca/keyrite.cnf"
	mkcsr --manifest 2 >"$T/m.csv"
	expect 5 "keyCertSign without basicConstraints CA:TRUE" kri device "$T/m.csv"
	[ "$(db "select count(*) from cert")" -eq 0 ] # not even a reserved row
}

test_config_errors_are_located() {
	ca_setup
	sed -i 's/^validity_days = 730/validity_days = 730\nflavour = mint/' "$T/ca/keyrite.cnf"
	line=$(grep -n '^flavour' "$T/ca/keyrite.cnf" | cut -d: -f1)
	mkcsr --manifest 1 >"$T/m.csv"
	expect 3 "keyrite.cnf:$line: [profile_device] flavour: unknown key" kri device "$T/m.csv"
	cp "$EX/keyrite.cnf" "$T/ca/keyrite.cnf"
	sed -i 's/{profile_id}.{device_id}/{profile_id}.{imei}/' "$T/ca/keyrite.cnf"
	expect 3 "unknown placeholder" kri device "$T/m.csv"
	cp "$EX/keyrite.cnf" "$T/ca/keyrite.cnf"
	expect 2 "does not issue profile 'cheese'" kri cheese "$T/m.csv"
	# keyrite-ca(5) node: 1 to 16383, the 14 bits a serial gives it; a
	# store string that names no database
	local n want
	for n in 0:5 16384:5 two:3; do
		want=${n#*:} n=${n%:*}
		sed "s/^store *=.*/&\nnode = $n/" "$EX/keyrite.cnf" >"$T/ca/keyrite.cnf"
		line=$(grep -n '^node' "$T/ca/keyrite.cnf" | cut -d: -f1)
		expect "$want" "keyrite.cnf:$line: [keyrite] node: " kri device "$T/m.csv"
	done
	grep -q "expected a whole number, got 'two'" "$T/expect.err" || fail "node = two: $(cat "$T/expect.err")"
	sed "s/^store *=.*/store = postgresql:/" "$EX/keyrite.cnf" >"$T/ca/keyrite.cnf"
	expect 3 "[keyrite] store: no connection string after postgresql:" kri device "$T/m.csv"
	assert_absent "$T/ca/postgresql:"
}

# A manifest row for a device the store knows: another version updates the
# record (audited, also for a request issued before); another model refuses
# the row (a device does not change model); the csr column names a file
# beside the manifest, never a path.
test_manifest_rows_for_known_devices_and_csr_paths() {
	ca_setup
	local id=9000000000000001
	mkcsr --cn $id --out "$T/a.pem"
	mkcsr --cn $id --out "$T/b.pem"
	row() { echo "device_id,model,version,csr"; echo "$id,$1,$2,$3"; }
	row SParkometer 1.1 a.pem >"$T/m1.csv"
	kri device "$T/m1.csv" 2>/dev/null
	[ "$(db "select model || ' ' || version from device where id = '$id'")" = "SParkometer 1.1" ]
	row SParkometer 1.2 b.pem >"$T/m2.csv"
	kri device --json "$T/m2.csv" >"$T/json" 2>/dev/null
	grep -q '"status":"issued"' "$T/json" || fail "the new CSR was not issued"
	[ "$(db "select version from device where id = '$id'")" = 1.2 ] || fail "version not updated"
	row SParkometer 1.3 a.pem >"$T/m3.csv"
	kri device --json "$T/m3.csv" >"$T/json" 2>/dev/null
	grep -q '"status":"already-issued"' "$T/json" || fail "the first CSR is not already issued"
	[ "$(db "select version from device where id = '$id'")" = 1.3 ] || fail "version of an issued request not updated"
	[ "$(audit_list --kind device | cut -d' ' -f4- | paste -sd'|')" = \
		"device=$id version=1.1->1.2|device=$id version=1.2->1.3" ] || fail "the updates are not audited"
	row Gasometer 1.3 a.pem >"$T/m4.csv"
	rc=0
	kri device "$T/m4.csv" 2>"$T/report" || rc=$?
	[ $rc -eq 9 ] || fail "exit status $rc, want 9"
	expect_rejected m4.csv:2 "device $id is recorded as model 'SParkometer', the manifest says 'Gasometer'"
	[ "$(db "select model from device where id = '$id'")" = SParkometer ] || fail "model changed"
	mkdir "$T/sub"
	mkcsr --cn 9000000000000002 --out "$T/c.pem"
	{ echo "device_id,model,version,csr"; echo "9000000000000002,SParkometer,1.1,../c.pem"
	  echo "9000000000000002,SParkometer,1.1,$T/c.pem"; } >"$T/sub/m5.csv"
	rc=0
	kri device "$T/sub/m5.csv" 2>"$T/report" || rc=$?
	[ $rc -eq 9 ] || fail "exit status $rc, want 9"
	expect_rejected m5.csv:2 "csr column '../c.pem': a file beside the manifest is named without '/'"
	expect_rejected m5.csv:3 "csr column '$T/c.pem': a file beside the manifest is named without '/'"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# keyrite(1): every command that appends to the log ends with a signed
# checkpoint, and audit verify checks the store's state against the log.
# Before, revoke and crl wrote no checkpoint, so their entries could be cut
# off the end unseen, and a revocation undone in the store (its entry still
# in the log) passed, and the next CRL left it out.
test_audit_tail_and_state_tampering_detected() {
	ca_setup
	mkcsr --manifest 4 --start 8100000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	krevoke() { kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices "$@" >/dev/null; }
	krcrl() { kr crl --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --out "$1"; }
	krevoke --reason keyCompromise --device 8100000000000001
	krcrl "$T/1.crl" >/dev/null
	krevoke --reason superseded --device 8100000000000002
	krcrl "$T/2.crl" >/dev/null
	# issue, both revokes and both CRLs each end with a checkpoint
	has "5 checkpoint(s) (0 by firmware signers), 0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	cp "$T/ca/registry.db" "$T/clean.db"
	restore() { cp "$T/clean.db" "$T/ca/registry.db"; }
	tampered() { # WANT: audit verify fails, its report holds WANT
		expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
		grep -qF -- "$1" "$T/expect.out" || { cat "$T/expect.out"; fail "audit verify does not say: $1"; }
		restore
	}
	local s1 s2 s3 last
	s1=$(serial_of 8100000000000001)
	s2=$(serial_of 8100000000000002)
	s3=$(serial_of 8100000000000003)
	last=$(audit_list | tail -1 | cut -d' ' -f1)
	# the tail: the last entries cut off ...
	db "delete from audit where seq > $((last - 2))"
	tampered "checkpoint at entry $last: the chain's head there is not the one the CA signed"
	# ... and their checkpoints with them: the state still tells
	db "delete from audit where seq > $((last - 2)); delete from checkpoint where seq > $((last - 2))"
	tampered "certificate $s2 of CA 1: the store says revoked, the log says valid"
	db "delete from audit where kind = 'crl'; delete from checkpoint where seq > (select max(seq) from audit)"
	tampered "CRL 2 of CA 1 has no audit entry"
	# entries no signature covers
	db "delete from checkpoint where seq = $last"
	tampered "entries $last to $last come after the last checkpoint: no signature covers them"
	# a revocation undone
	db "update cert set status = 'valid', revoked_at = NULL, reason = NULL where device_id = '8100000000000002'"
	cp "$T/ca/registry.db" "$T/undone.db"
	tampered "certificate $s2 of CA 1: the log revoked it (entry"
	cp "$T/undone.db" "$T/ca/registry.db"
	expect 8 "the store's state and its audit log disagree (1 problem(s); keyrite audit verify lists them): refusing to issue a CRL from it" \
		krcrl "$T/3.crl"
	assert_absent "$T/3.crl"
	[ "$(db "select count(*) from crl")" -eq 2 ] || fail "a CRL was recorded"
	restore
	# a revocation's time or reason, a certificate, a CRL changed
	db "update cert set reason = 0 where device_id = '8100000000000001'"
	tampered "certificate $s1 of CA 1: revoked at"
	db "update cert set revoked_at = revoked_at - 86400 where device_id = '8100000000000001'"
	tampered "certificate $s1 of CA 1: revoked at"
	db "update cert set der = (select der from cert where device_id = '8100000000000004') where device_id = '8100000000000003'"
	tampered "certificate $s3 of CA 1: the store's certificate is not the one issued"
	db "update crl set der = (select der from crl where number = 1) where number = 2"
	tampered "CRL 2 of CA 1 omits serial $s2, which the log had revoked"
	db "update crl set der = (select der from crl where number = 1) where number = 2"
	tampered "CRL 2 of CA 1 is not the one entry"
	db "delete from crl where number = 1"
	tampered "CRL 1 of CA 1: the log records it (entry"
	db "delete from cert where device_id = '8100000000000004'"
	tampered "the store has no row for it (a row was deleted)"
	# the columns a lookup uses are held to the text the hash covers
	db "update audit set serial = X'01' where kind = 'revoke'"
	tampered "its ca, serial or device column does not say what its detail says (edited)"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	krcrl "$T/3.crl" >/dev/null
	has "$s1" openssl crl -in "$T/3.crl" -noout -text
}

# What formats 8 (a chain per node), 7 (a reservation's node), 5 (the
# service) and 4 (the device registry) added, undone: with it a store is
# format 3.
undo_format_4="drop table api_client; drop table poll; drop table cmp_seen;
	drop table registration; drop index cert_profile_id; alter table cert drop column asp;
	drop index cert_request;
	create unique index cert_request on cert (ca_id, profile, csr_sha256) where status <> 'abandoned';
	alter table device drop column owner; alter table device drop column mno;
	alter table device drop column listed; alter table device drop column deleted;
	alter table device drop column purge_after; alter table device drop column locks;
	alter table device drop column code_salt; alter table device drop column code_hash;
	alter table device drop column code_expires;
	alter table device drop column code_failures; alter table device drop column csr;
	alter table device drop column updated; alter table device drop column enroll_gen;
	alter table cert drop column node;
	drop index audit_node; alter table audit drop column node; alter table audit drop column node_seq;
	alter table checkpoint drop column node;"

# A format-2 store (the format before the audit log's lookup columns) is
# migrated when it is opened: the columns are filled from every entry's
# text, a certificate's history is found by them, and audit verify passes.
# A store of a format this keyrite does not know is refused, untouched.
test_store_formats_migrated_or_refused() {
	ca_setup
	mkcsr --manifest 3 --start 8200000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices --device 8200000000000001 >/dev/null
	local serial
	serial=$(serial_of 8200000000000001)
	db "$undo_format_4; drop index audit_serial; drop index audit_device; alter table audit drop column ca;
	    alter table audit drop column serial; alter table audit drop column device; pragma user_version = 2"
	[ "$(db "pragma user_version")" -eq 2 ]
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	[ "$(db "pragma user_version")" -eq 9 ] || fail "not migrated"
	[ "$(db "select count(*) from registration")" -eq 0 ] || fail "no registry tables"
	[ "$(db "select count(*) from api_client") $(db "select count(*) from cmp_seen")" = "0 0" ] ||
		fail "no service tables"
	[ "$(db "select count(*) from device where enroll_gen = 0")" -eq 3 ] || fail "no enrollment generations"
	[ "$(db "select count(*) from audit where serial is not null")" -eq 4 ] || fail "columns not filled"
	kr show --config "$T/ca/keyrite.cnf" "$serial" >"$T/show"
	grep -q "issue   audit entry" "$T/show" && grep -q "revoke  audit entry" "$T/show" ||
		fail "the history is not found by the new column"
	db "pragma user_version = 10"
	sum=$(sha256sum "$T/ca/registry.db")
	expect 3 "store format 10, and this keyrite reads formats 1 to 9 on SQLite" kr audit verify --config "$T/ca/keyrite.cnf"
	[ "$(sha256sum "$T/ca/registry.db")" = "$sum" ] || fail "the unknown format was changed"
}
