# The device registry (docs/registry.md): the source documents' Ottawa story
# end to end, checked by tools nobody here wrote (named-checkzone,
# ldns-verify-zone, ldns-dane, openssl s_server/s_client/verify, nsupdate
# against BIND), and the refusals: auth codes, accounts acting beyond their
# rights, locked and pending devices, bad rows, two racing transfers, kills.

# shellcheck source=registry_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"

# tls_server PORTFILE ARGS...: openssl s_server on 127.0.0.1 and a free port,
# one connection; the port into PORTFILE once it listens. Its standard input
# is a FIFO held open on descriptor 9 (at its end s_server would close the
# connection); tls_server_stop closes it and waits for the server.
tls_server() {
	local portfile=$1 try port
	shift
	for try in 1 2 3 4 5 6 7 8; do
		port=$(shuf -i 20000-60000 -n 1)
		rm -f "$T/s_server.in" && mkfifo "$T/s_server.in"
		openssl s_server -accept "127.0.0.1:$port" -naccept 1 "$@" <"$T/s_server.in" \
			>"$T/s_server.out" 2>&1 &
		SERVER=$!
		exec 9>"$T/s_server.in"
		for _ in $(seq 50); do
			if ss -ltn "sport = :$port" | grep -q LISTEN; then
				echo "$port" >"$portfile"
				return
			fi
			kill -0 "$SERVER" 2>/dev/null || break
			sleep 0.1
		done
		tls_server_stop
	done
	cat "$T/s_server.out" >&2
	fail "s_server did not start"
}

tls_server_stop() {
	[ -n "${SERVER:-}" ] || return 0
	exec 9>&-
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
	SERVER=
}

# The source documents' story (seed 001): the City of Ottawa's meters, a tenth
# of them with their keys on a token playing their eSIMs, registered with
# ParkoServ, activated (profiles 11, 12, ...), published and signed; a meter
# connects to ParkoServ with mutual TLS, the server checked by DANE from the
# zone; the city moves every meter to CarParkServ with its codes; the old
# certificates are revoked, their names leave the DNS server, the new ones
# are there, and the audit log holds.
test_registry_ottawa_story_end_to_end() {
	local n=$((${KR_E2E_BULK:-10000} / 10)) esim=$((${KR_E2E_BULK:-10000} / 100)) id
	ca_setup
	trap 'named_stop; tls_server_stop; teardown' EXIT
	init_token esim
	mkdir -p "$T/mno"
	# 1 - procurement: the first meters' keys are made on their eSIMs (a
	# token: SoftHSM's file store slows with every object, so a tenth of
	# them), the others' by mkcsr; their MNO relays the CSRs
	{ "$ESIM" esim 1000000000000001 "$esim" || fail "esim"
	  mkcsr --manifest $((n - esim)) --start $((1000000000000001 + esim)) | tail -n +2
	} >"$T/mno/relay.csv"
	[ "$(kr hsm keys "pkcs11:token=esim" --pin-file "$T/pin" | grep -c 'CKA_EXTRACTABLE=false')" -eq "$esim" ] ||
		fail "not $esim unextractable eSIM keys"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/relay.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	# 2, 3 - the city imports and registers its meters with ParkoServ
	has "registry import: $n done, 0 unchanged, 0 refused" krr import --as Ottawa --mno Telus "$T/ottawa.csv"
	has "registry register: $n done" krr register --as Ottawa --asp ParkoServ "$T/ottawa.csv"
	# 4 - provisioning from the CSRs Telus relays: profiles 11 to 10 + n
	has "registry activate: $n done, 0 unchanged, 0 refused" \
		krr activate --as ParkoServ --csr "$T/mno/relay.csv"
	reg_list ParkoServ >"$T/list1"
	[ "$(grep -c '"state":"active".*"profile_id":[0-9]*,"profile_status":"generated"' "$T/list1")" -eq "$n" ] ||
		fail "not every meter active with a generated profile"
	grep -q '"id":"1000000000000001".*"profile_id":11,' "$T/list1" || fail "the first profile is not 11"
	grep -q "\"id\":\"$((1000000000000000 + n))\".*\"profile_id\":$((10 + n))," "$T/list1" ||
		fail "the last profile is not $((10 + n))"
	# ParkoServ's server, its TLSA in its own zone
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/parko.key" \
		-subj /CN=iot.parkoserv.ca -addext subjectAltName=DNS:iot.parkoserv.ca -out "$T/parko.csr" 2>/dev/null
	mkdir -p "$T/srv"
	kri server --out "$T/srv" "$T/parko.csr" >/dev/null 2>&1
	local srvcert
	srvcert=$(ls "$T"/srv/*.pem | grep -v chain.pem)
	sed -i 's/^zones *=.*/zones   = registry, parko/' "$T/ca/keyrite.cnf"
	printf '\n[zone_parko]\nzone = parkoserv.ca\nserver_port = 8883\nrootcert = no\n' >>"$T/ca/keyrite.cnf"
	dnssec_keys ec-p256
	# signed for the world; unsigned for BIND, which takes dynamic updates
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/signed" --soa --sign \
		--pin-file "$T/pin" >/dev/null
	has "Zone is verified and complete" ldns-verify-zone "$T/signed/iotregistry.ca.zone"
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	kr publish --config "$T/ca/keyrite.cnf" --zone parkoserv.ca --out "$T/pub" >/dev/null
	local zone=$T/pub/iotregistry.ca.zone
	has "loaded serial" named-checkzone iotregistry.ca "$zone"
	[ "$(awk '$1 ~ /^[0-9]+\.[0-9]+\._device\.iotregistry\.ca\.$/ && $4 == "TLSA"' "$zone" | wc -l)" -eq "$n" ] ||
		fail "not $n device TLSA records"
	# a sample of meters' certificates match their records (ldns-dane)
	for id in 1000000000000001 1000000000000003 $((1000000000000000 + n)); do
		valid_cert "$id" "$T/$id.pem"
		local name
		name=$(openssl x509 -in "$T/$id.pem" -noout -subject | sed 's/.*CN = //')
		awk -v o="$name." '$1 == o && $4 == "TLSA"' "$zone" | sed 's/^/_443._tcp./' >"$T/one.tlsa"
		has "dane-validated successfully" ldns-dane -n -t "$T/one.tlsa" -c "$T/$id.pem" verify
	done
	# 5 - a meter connects to ParkoServ: its key on the eSIM, the server
	# checked by the TLSA record in parkoserv.ca, the meter by the CA chain
	local tlsa
	tlsa=$(awk '$1 == "_8883._tcp.iot.parkoserv.ca." && $4 == "TLSA" {print $5, $6, $7, $8}' \
		"$T/pub/parkoserv.ca.zone")
	[ -n "$tlsa" ] || fail "no TLSA for ParkoServ's server"
	cat "$T/ca/subca-devices.pem" "$T/ca/root.pem" >"$T/devices-chain.pem"
	tls_server "$T/port" -tls1_3 -cert "$srvcert" -key "$T/parko.key" -Verify 2 \
		-verify_return_error -CAfile "$T/devices-chain.pem"
	echo bye | openssl s_client -connect "127.0.0.1:$(cat "$T/port")" -tls1_3 \
		-servername iot.parkoserv.ca -dane_tlsa_domain iot.parkoserv.ca -dane_tlsa_rrdata "$tlsa" \
		-verify_return_error -engine pkcs11 -keyform engine \
		-key "pkcs11:token=esim;object=1000000000000001;type=private?pin-source=file:$T/pin" \
		-cert "$T/1000000000000001.pem" -cert_chain "$T/ca/subca-devices.pem" \
		>"$T/s_client.out" 2>&1 || { cat "$T/s_client.out" "$T/s_server.out"; fail "the meter could not connect"; }
	tls_server_stop
	grep -q "Verification: OK" "$T/s_client.out" || fail "ParkoServ's server not verified"
	grep -q "DANE TLSA 3 1 1 .* matched EE certificate" "$T/s_client.out" || fail "not by DANE"
	grep -q "subject=.*CN = 11.1000000000000001._device.iotregistry.ca" "$T/s_server.out" ||
		{ cat "$T/s_server.out"; fail "ParkoServ did not see the meter's certificate"; }
	# BIND serves the zone and takes the changes that follow
	named_start "$zone"
	# 6, 7 - the city hands CarParkServ its codes; the transfer is at once
	codes_for Ottawa "$T/codes.csv" "$T/ottawa.csv"
	[ "$(grep -c '^[0-9]*,[0-9a-f]\{8\}-[0-9a-f]\{8\}-[0-9a-f]\{8\}-[0-9a-f]\{8\}$' "$T/codes.csv")" -eq "$n" ] ||
		fail "not $n codes of 128 bits"
	has "registry transfer request: $n done, 0 unchanged, 0 refused" \
		krr transfer request --as CarParkServ "$T/codes.csv"
	# 8 - CarParkServ provisions them, zero touch: the keys on record
	has "registry activate: $n done" krr activate --as CarParkServ "$T/ottawa.csv"
	reg_list CarParkServ >"$T/list2"
	grep -q '"id":"1000000000000001".*"asp":"CarParkServ".*"profile_id":'$((11 + n))',' "$T/list2" ||
		fail "the first new profile is not $((11 + n))"
	[ "$(grep -c '"state":"active".*"profile_status":"generated"' "$T/list2")" -eq "$n" ] ||
		fail "not every meter active under CarParkServ"
	[ "$(reg_list ParkoServ | wc -l)" -eq 0 ] || fail "ParkoServ still sees meters"
	# the same keys, new certificates; the old ones revoked, affiliationChanged
	valid_cert 1000000000000001 "$T/new1.pem"
	cmp <(openssl x509 -in "$T/new1.pem" -pubkey -noout) <(openssl x509 -in "$T/1000000000000001.pem" -pubkey -noout) ||
		fail "the transfer did not re-certify the meter's key"
	[ "$(ncerts --status revoked)" -eq "$n" ] || fail "not $n old certificates revoked"
	kr crl --config "$T/ca/keyrite.cnf" --ca devices --out "$T/devices.crl" --pin-file "$T/pin" >/dev/null
	openssl crl -in "$T/devices.crl" -noout -text | grep -q "Affiliation Changed" || fail "no reason"
	for id in 1000000000000001 1000000000000003; do
		! openssl verify -crl_check -CAfile "$T/devices-chain.pem" -CRLfile "$T/devices.crl" \
			"$T/$id.pem" >"$T/verify.out" 2>&1 || fail "$id's old certificate still verifies"
		grep -q "certificate revoked" "$T/verify.out" || { cat "$T/verify.out"; fail "not as revoked"; }
	done
	has ": OK" openssl verify -crl_check -CAfile "$T/devices-chain.pem" -CRLfile "$T/devices.crl" "$T/new1.pem"
	# the DNS follows: the old names go, the new ones come, at a live server
	has "$n added, $n removed" kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca \
		--out "$T/pub" --soa --changes "$T/changes.txt"
	{ echo "server 127.0.0.1 $PORT"; cat "$T/changes.txt"; } |
		nsupdate -k "$T/named/update.key" >"$T/nsupdate.out" 2>&1 ||
		{ tail -5 "$T/nsupdate.out"; fail "nsupdate refused the changes"; }
	has "$((n + 1)) expected, $((n + 1)) match, 0 missing, 0 mismatched, 0 stale" \
		kr publish check --config "$T/ca/keyrite.cnf" --server "127.0.0.1:$PORT" --zone iotregistry.ca
	dig +norec -p "$PORT" @127.0.0.1 TLSA 11.1000000000000001._device.iotregistry.ca >"$T/dig.out"
	grep -q "status: NXDOMAIN" "$T/dig.out" || fail "the old profile's name still answers"
	# signed again: the new names, none of the old, the NSEC3 chain whole
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/signed" --soa --sign \
		--pin-file "$T/pin" >/dev/null
	has "Zone is verified and complete" ldns-verify-zone "$T/signed/iotregistry.ca.zone"
	! grep -q "^11\.1000000000000001\._device" "$T/signed/iotregistry.ca.zone" || fail "an old name is signed"
	grep -q "^$((11 + n))\.1000000000000001\._device" "$T/signed/iotregistry.ca.zone" || fail "a new name is missing"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# What the registry holds, to compare before and after a refusal: every
# device as the operator sees it, every certificate, the audit log's length.
reg_state() {
	reg_list operator
	krc --json
	audit_list | wc -l
}

# unchanged_by STATUS TEXT CMD...: CMD exits STATUS with TEXT in its one
# error line, and the registry is as it was.
unchanged_by() {
	local want=$1 text=$2
	shift 2
	reg_state >"$T/before"
	expect "$want" "$text" "$@"
	reg_state >"$T/after"
	cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" >&2; fail "'$*' changed the registry"; }
}

# RFC 9154 practice: a wrong, guessed, expired or spent code is refused
# (exit 12) and recorded; five wrong ones lock the device against transfer
# and void its code until its owner makes a new one and unlocks it.
test_registry_auth_codes_wrong_guessed_expired_spent_and_locking() {
	registry_setup 4
	more_accounts
	codes_for Ottawa "$T/codes.csv" 1000000000000001 1000000000000002 1000000000000003 1000000000000004
	# keyrite(1): stored only hashed; nor in the audit log (in any spelling)
	store_dump >"$T/dump.sql"
	audit_list >>"$T/dump.sql"
	local code
	for code in $(cut -d, -f2 "$T/codes.csv" | tail -n +2); do
		! grep -qiF -e "$code" -e "${code//-/}" "$T/dump.sql" || fail "an auth code is in the store"
	done
	grep 1000000000000001 "$T/codes.csv" | sed 's/,\(.\)/,\1X/; s/X.\{8\}/00000000/' >"$T/row1"
	{ echo device,code; sed 's/,[0-9a-f]/,f/' "$T/row1"; } >"$T/wrong.csv"
	expect 12 "wrong auth code (1 of 5)" krr transfer request --as CarParkServ "$T/wrong.csv"
	printf 'device,code\n1000000000000001,1234\n' >"$T/guess.csv"
	expect 12 "wrong auth code (2 of 5)" krr transfer request --as CarParkServ "$T/guess.csv"
	printf 'device,code\n1000000000000001,\n' >"$T/none.csv"
	expect 12 "no auth code given" krr transfer request --as CarParkServ "$T/none.csv"
	[ "$(audit_list --kind registry | grep -c 'note=wrong%20auth%20code')" -eq 2 ] ||
		fail "the wrong codes are not in the audit log"
	reg_list operator | grep -q '"id":"1000000000000001".*"asp":"ParkoServ"' || fail "a wrong code moved the device"
	# expired: the clock moved past it (set in the store, the one way to age it)
	db "update device set code_expires = 1 where id = '1000000000000004'"
	{ echo device,code; grep 1000000000000004 "$T/codes.csv"; } >"$T/old.csv"
	expect 12 "auth code expired" krr transfer request --as CarParkServ "$T/old.csv"
	# spent: one transfer per code
	{ echo device,code; grep 1000000000000002 "$T/codes.csv"; } >"$T/two.csv"
	has "1 done" krr transfer request --as CarParkServ "$T/two.csv"
	expect 12 "the device has no auth code (used" krr transfer request --as ThirdServ "$T/two.csv"
	# five wrong codes lock the device and void its code
	{ echo device,code; grep 1000000000000003 "$T/codes.csv" | sed 's/,[0-9a-f]\{8\}/,00000000/'; } >"$T/bad3.csv"
	for i in 1 2 3 4; do
		expect 12 "wrong auth code ($i of 5)" krr transfer request --as CarParkServ "$T/bad3.csv"
	done
	expect 12 "wrong auth code (5 of 5): locked against transfer" \
		krr transfer request --as CarParkServ "$T/bad3.csv"
	{ echo device,code; grep 1000000000000003 "$T/codes.csv"; } >"$T/right3.csv"
	expect 11 "locked against transfer (transferProhibited)" krr transfer request --as CarParkServ "$T/right3.csv"
	codes_for Ottawa "$T/new3.csv" 1000000000000003
	expect 11 "locked against transfer" krr transfer request --as CarParkServ "$T/new3.csv"
	has "unlocked" krr unlock --as Ottawa --lock transfer 1000000000000003
	has "1 done" krr transfer request --as CarParkServ "$T/new3.csv"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# An account acting beyond its rights is refused (exit 11) and changes
# nothing; an ASP learns nothing of a device it does not sponsor.
test_registry_accounts_beyond_their_rights_change_nothing() {
	registry_setup 2
	more_accounts
	local dev=1000000000000001
	unchanged_by 11 "deactivate: the account does not sponsor this device (as CarParkServ)" \
		krr deactivate --as CarParkServ $dev
	unchanged_by 11 "the account does not sponsor this device (as CarParkServ)" \
		krr deactivate --as CarParkServ 1000000000009999
	unchanged_by 11 "hold: the account does not sponsor this device" krr hold --as ThirdServ $dev
	unchanged_by 11 "authcode: the account is not this device's owner or MNO (as Gatineau)" \
		krr authcode --as Gatineau $dev
	unchanged_by 11 "delete: the device's MNO may not do this (as Telus)" krr delete --as Telus $dev
	unchanged_by 11 "delete: the sponsoring ASP may not do this (as ParkoServ)" krr delete --as ParkoServ $dev
	unchanged_by 11 "activate: the device's owner may not do this (as Ottawa)" krr activate --as Ottawa $dev
	unchanged_by 11 "an owner imports its own devices only" krr import --as Ottawa \
		<(printf 'Device ID,Model,Version,Owner\n1000000000000007,SParkometer,1.1,Gatineau\n')
	unchanged_by 3 "no registry account 'Nobody'" krr list --as Nobody
	unchanged_by 11 "list: ParkoServ may list only its own devices" krr list --as ParkoServ --asp CarParkServ
	[ "$(reg_list ThirdServ | wc -l)" -eq 0 ] || fail "ThirdServ sees devices it does not sponsor"
	[ "$(reg_list Gatineau | wc -l)" -eq 0 ] || fail "Gatineau sees another owner's devices"
	[ "$(reg_list Telus | wc -l)" -eq 2 ] || fail "Telus does not see its devices"
	unchanged_by 11 "show: the account does not sponsor this device" krr show --as ThirdServ $dev
	# a device with two ASPs: each sees its own registration of it, not the other's
	has registered krr register --as Ottawa --asp ThirdServ $dev
	reg_list ParkoServ | grep "\"id\":\"$dev\"" >"$T/parko.rows"
	[ "$(wc -l <"$T/parko.rows")" -eq 1 ] && grep -q '"asp":"ParkoServ"' "$T/parko.rows" ||
		fail "ParkoServ sees another ASP's registration"
	! krr show --as ThirdServ $dev | grep -q "ParkoServ:" || fail "ThirdServ's show names ParkoServ's"
	[ "$(reg_list operator | grep -c "\"id\":\"$dev\"")" -eq 2 ] || fail "the operator sees both"
}

# A locked, held, pending or deleted device is not transferred; while a
# transfer is pending other changes wait; the losing ASP may reject it and
# the requester cancel it (transfer_auto_approve_days 5).
test_registry_transfer_of_locked_held_pending_deleted_refused() {
	registry_setup 5
	more_accounts 5
	codes_for Ottawa "$T/codes.csv" 1000000000000001 1000000000000002 1000000000000003 1000000000000004 \
		1000000000000005
	row() { { echo device,code; grep "^$1," "$T/codes.csv"; } >"$T/$1.csv"; echo "$T/$1.csv"; }
	has locked krr lock --as Ottawa --lock transfer 1000000000000001
	unchanged_by 11 "locked against transfer (transferProhibited)" \
		krr transfer request --as CarParkServ "$(row 1000000000000001)"
	has held krr hold --as ParkoServ 1000000000000002
	unchanged_by 11 "the device is on hold" krr transfer request --as CarParkServ "$(row 1000000000000002)"
	has deleted krr delete --as Ottawa 1000000000000004
	unchanged_by 11 "the device is pending deletion" krr transfer request --as CarParkServ "$(row 1000000000000004)"
	# keyrite(1): restorable for delete_grace_days (30), purged only after
	unchanged_by 11 "purge: in its grace period until" krr purge 1000000000000004
	[ "$(krc --device 1000000000000004 --status revoked --json | grep -c '"reason":5}')" -eq 1 ] ||
		fail "the deleted device's certificate is not revoked as cessationOfOperation"
	# pending: other changes refused, a second request too
	has "transfer pending" krr transfer request --as CarParkServ "$(row 1000000000000003)"
	has "transfer already pending" krr transfer request --as CarParkServ "$T/1000000000000003.csv"
	unchanged_by 11 "a transfer is pending" krr transfer request --as ThirdServ "$T/1000000000000003.csv"
	unchanged_by 11 "deactivate: a transfer is pending" krr deactivate --as ParkoServ 1000000000000003
	unchanged_by 11 "delete: a transfer is pending" krr delete --as Ottawa 1000000000000003
	has "pending: CarParkServ asked" krr transfer query --as Ottawa 1000000000000003
	unchanged_by 11 "transfer approve: the gaining ASP may not do this" \
		krr transfer approve --as CarParkServ 1000000000000003
	has "transfer rejected" krr transfer reject --as ParkoServ 1000000000000003
	unchanged_by 11 "transfer cancel: no transfer is pending (as operator)" krr transfer cancel 1000000000000003
	# the code was not spent by a rejected request
	has "transfer pending" krr transfer request --as CarParkServ "$T/1000000000000003.csv"
	has "transfer cancelled" krr transfer cancel --as CarParkServ 1000000000000003
	has "transfer pending" krr transfer request --as ThirdServ "$T/1000000000000003.csv"
	has transferred krr transfer approve --as ParkoServ 1000000000000003
	reg_list ThirdServ | grep -q '"id":"1000000000000003".*"state":"registered"' || fail "not ThirdServ's"
	# a transfer the losing ASP lets wait past its 5 days: the registry
	# approves it when the gaining ASP next acts (the store aged, the one
	# way to pass the days)
	has "transfer pending" krr transfer request --as CarParkServ "$(row 1000000000000005)"
	unchanged_by 11 "activate: the gaining ASP may not do this (as CarParkServ)" \
		krr activate --as CarParkServ 1000000000000005
	db "update registration set requested_at = requested_at - 6 * 86400 where device = '1000000000000005'"
	has "1000000000000005 activated" krr activate --as CarParkServ 1000000000000005
	audit_list --kind registry | grep 'device=1000000000000005 op=transfer-approve' |
		grep -q 'approved%20by%20the%20registry%20after%205%20day(s)' || fail "not approved by the registry"
	[ "$(krc --device 1000000000000005 --status revoked --json | grep -c '"reason":3}')" -eq 1 ] ||
		fail "ParkoServ's certificate is not revoked on the late approval"
	[ "$(krc --device 1000000000000003 --status revoked --json | grep -c '"reason":3}')" -eq 1 ] ||
		fail "the losing ASP's certificate is not revoked as affiliationChanged (3)"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# Two gaining ASPs with one device's code, at once, from two processes:
# exactly one gets the device.
test_registry_two_racing_transfers_exactly_one_wins() {
	registry_setup 1
	more_accounts
	codes_for Ottawa "$T/codes.csv" 1000000000000001
	local a b ra=0 rb=0
	krr transfer request --as CarParkServ "$T/codes.csv" >"$T/a.out" 2>&1 &
	a=$!
	krr transfer request --as ThirdServ "$T/codes.csv" >"$T/b.out" 2>&1 &
	b=$!
	wait $a || ra=$?
	wait $b || rb=$?
	[ $((ra == 0)) -ne $((rb == 0)) ] || { cat "$T/a.out" "$T/b.out"; fail "exits $ra and $rb: not exactly one winner"; }
	[ "$(audit_list --kind registry | grep -c 'op=transfer-approve')" -eq 1 ] || fail "not one transfer"
	grep -q "the device has no auth code (used\|sponsor" "$T/a.out" "$T/b.out" || { cat "$T/a.out" "$T/b.out"; fail "the loser was not told why"; }
}

# A file with bad rows: each reported by file:line with its reason, exit 1,
# the good rows imported; run again, the good rows are unchanged.
test_registry_bad_rows_each_reported_the_others_done() {
	ca_setup
	cat >"$T/in.csv" <<'EOC'
Device ID,Model,Version,MNO
1000000000000001,SParkometer,1.1,Telus
12345,SParkometer,1.1,Telus
89049032000000000000000000000066,eSIM tracker,2.0,Rogers
89049032000000000000000000000067,eSIM tracker,2.0,Rogers
1000000000000002,SParkometer,1.1,Nobody
1000000000000003,,1.1,Telus
1000000000000004,"SParkometer,1.1,Telus
1000000000000005,SParkometer
abc,SParkometer,1.1,Telus
1000000000000006,SParkometer,1.1,Telus
EOC
	local rc=0
	# a preview: every row's outcome, and nothing kept
	krr import --as Ottawa --preview "$T/in.csv" >"$T/pre.out" 2>"$T/pre.err" || rc=$?
	[ $rc -eq 1 ] || fail "preview: exit $rc, want 1"
	has "registry import (preview: nothing kept): 3 done, 0 unchanged, 7 refused" cat "$T/pre.out"
	[ "$(wc -l <"$T/pre.err")" -eq 7 ] || fail "the preview did not name every bad row"
	[ "$(reg_list operator | wc -l)" -eq 0 ] || fail "a preview kept devices"
	expect 2 "only an import can be previewed" krr delete --as Ottawa --preview 1000000000000001
	rc=0
	krr import --as Ottawa "$T/in.csv" >"$T/imp.out" 2>"$T/imp.err" || rc=$?
	[ $rc -eq 1 ] || fail "exit $rc, want 1"
	for want in "in.csv:3: '12345' is not an eID" "in.csv:5: 89049032000000000000000000000067: not an eID: its check digits" \
		"in.csv:6: no registry account 'Nobody'" "in.csv:7: 1000000000000003: no model" \
		"in.csv:8: malformed CSV: bad quoting" "in.csv:9: 2 columns, the header names 4" \
		"in.csv:10: 'abc' is not an eID"; do
		grep -qF "$want" "$T/imp.err" || { cat "$T/imp.err"; fail "no '$want'"; }
	done
	[ "$(wc -l <"$T/imp.err")" -eq 7 ] || { cat "$T/imp.err"; fail "not one line per bad row"; }
	has "registry import: 3 done, 0 unchanged, 7 refused" cat "$T/imp.out"
	[ "$(reg_list operator | wc -l)" -eq 3 ] || fail "not the three good rows"
	krr import --as Ottawa "$T/in.csv" >"$T/imp2.out" 2>/dev/null || true
	has "registry import: 0 done, 3 unchanged, 7 refused" cat "$T/imp2.out"
}

# A bulk transfer killed at any instant and run again completes: every
# device transferred once, none twice, none lost; the audit log holds.
test_registry_killed_bulk_transfer_completes() {
	local n=300
	registry_setup $n
	codes_for Ottawa "$T/codes.csv" "$T/ottawa.csv"
	local at
	for at in $(points "pwrite64:3 fdatasync:1 pwrite64:40 fdatasync:2 pwrite64:200" \
		"send:3 send:40 send:200 send:500 send:800"); do
		killed_at "$at" registry transfer request --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" \
			--as CarParkServ --chunk 100 "$T/codes.csv"
		store_sound || fail "the store is damaged after a kill at $at"
	done
	krr transfer request --as CarParkServ --chunk 100 "$T/codes.csv" >"$T/tr.out"
	grep -q "registry transfer request: [0-9]* done, [0-9]* unchanged, 0 refused" "$T/tr.out" ||
		fail "not completed"
	[ "$(audit_list --kind registry | grep -c 'op=transfer-approve')" -eq $n ] || fail "not $n transfers, once each"
	[ "$(reg_list CarParkServ | grep -c '"state":"registered"')" -eq $n ] || fail "not $n devices moved"
	[ "$(ncerts --status revoked)" -eq $n ] || fail "not $n old certificates revoked"
	killed_at "$(points fdatasync:2 send:300)" registry activate --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" \
		--as CarParkServ --chunk 100 "$T/ottawa.csv"
	krr activate --as CarParkServ --chunk 100 "$T/ottawa.csv" >/dev/null
	[ "$(reg_list CarParkServ | grep -c '"state":"active".*"generated"')" -eq $n ] || fail "not $n active"
	[ "$(ncerts --status valid)" -eq $n ] || fail "not one valid certificate per device"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# rekey: the MNO relays new CSRs (new keys made on the eSIMs); each meter
# gets a new profile and certificate of its new key, the old one revoked as
# superseded in the same transaction. Killed at any instant and run again it
# completes, once per meter; run again it is unchanged; the zone follows.
test_registry_rekey_supersedes_killed_and_again_completes() {
	local n=100 at
	registry_setup $n
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	mkcsr --manifest "$n" --start 1000000000000001 >"$T/mno/new.csv"
	for at in $(points "pwrite64:3 fdatasync:1 pwrite64:60 fdatasync:2" "send:3 send:60 send:200 send:350"); do
		killed_at "$at" registry rekey --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" \
			--as Telus --chunk 40 --csr "$T/mno/new.csv"
		store_sound || fail "the store is damaged after a kill at $at"
	done
	krr rekey --as Telus --chunk 40 --csr "$T/mno/new.csv" >"$T/rk.out" ||
		{ cat "$T/rk.out"; fail "the rekey did not complete"; }
	grep -q "registry rekey: [0-9]* done, [0-9]* unchanged, 0 refused" "$T/rk.out" || fail "not completed"
	[ "$(audit_list --kind registry | grep -c 'op=rekey .*state=active->active')" -eq $n ] ||
		fail "not $n rekeys, once each"
	[ "$(ncerts --status valid)" -eq $n ] || fail "not one valid certificate per meter"
	[ "$(krc --status revoked --json | grep -c '"reason":4}')" -eq $n ] || fail "not $n superseded"
	# each valid certificate is of the new CSR's key
	local id csr
	while IFS=, read -r id _ _ csr; do
		valid_cert "$id" "$T/now.pem"
		cmp <(openssl x509 -in "$T/now.pem" -noout -pubkey) \
			<(printf '%s' "$csr" | base64 -d | openssl req -inform DER -noout -pubkey) ||
			fail "$id: the valid certificate is not of its new key"
	done < <(tail -n +2 "$T/mno/new.csv" | head -5)
	has "registry rekey: 0 done, $n unchanged, 0 refused" krr rekey --as Telus --csr "$T/mno/new.csv"
	# a rekey needs new CSRs; devices alone are a usage error
	local rc=0
	krr rekey --as Telus 1000000000000001 >/dev/null 2>&1 || rc=$?
	[ $rc -eq 2 ] || fail "rekey without --csr: exit $rc, want 2"
	has "$n added, $n removed" kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca \
		--out "$T/pub" --soa --changes "$T/changes.txt"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# ---- the state machine, every command x account x state ------------------------

# The table of docs/registry.md, one line per command:
# "command|who|states|to|refused by|needs" (words separated by spaces).
spec_rows() {
	awk -F'|' 'NF == 10 && /^\| [a-z]/ && $2 !~ /^ command/ {
		for (i = 2; i <= 7; i++) { gsub(/^ +| +$/, "", $i) }
		print $2 "|" $3 "|" $4 "|" $5 "|" $6 "|" $7 }' "$REPO/docs/registry.md"
}

# The devices' states the matrix meets: name, state, flags.
MATRIX_VARIANTS=(
	"none none -" "listed listed -" "registered registered -" "active active -"
	"held active hold" "pending active pendingTransfer" "deactivated deactivated -"
	"pdelete pendingDelete -" "tlock active transferProhibited"
	"dlock active deleteProhibited" "ulock active updateProhibited"
)
MATRIX_ACCOUNTS=(operator Ottawa Gatineau Telus Rogers ParkoServ CarParkServ ThirdServ)

# matrix_id VARIANT GROUP: the device of that variant in that group.
matrix_id() { echo $((300000000000000 + $1 * 1000 + $2)); }

# matrix_role ACCOUNT VARIANT CMD: the account's letter for that device, in
# $role.
matrix_role() {
	local acct=$1 name=${MATRIX_VARIANTS[$2]%% *} cmd=$3
	case $acct in
	operator) role=O ;;
	Ottawa) [ "$name" = none ] && [ "$cmd" != import ] && role=X || role=W ;;
	Gatineau) [ "$name" = none ] && [ "$cmd" = import ] && role=W || role=X ;;
	Telus) [ "$name" = none ] && role=X || role=M ;;
	Rogers) role=X ;;
	ParkoServ) case $name in none | listed | pdelete) role=A ;; *) role=S ;; esac ;;
	CarParkServ) [ "$name" = pending ] && role=G || role=A ;;
	*) role=A ;;
	esac
}

# The devices of every variant for every group: imported by Ottawa (MNO
# Telus), registered with and activated by ParkoServ, then brought to their
# variant; auth codes for all in $T/matrix/codes.csv.
matrix_setup() {
	local groups=$1 v g d=$T/matrix
	mkdir -p "$d"
	ca_setup
	payload_signer
	kr hsm keygen "pkcs11:token=keyrite-devices;object=registry-enrollment-2026" --type aes-256 \
		--pin-file "$T/pin" >/dev/null
	more_accounts 5
	sed -i 's/^delete_grace_days *=.*/delete_grace_days = 0/' "$T/ca/keyrite.cnf"
	ids() { for g in $(seq 0 $((groups - 1))); do matrix_id "$1" "$g"; done; }
	echo "Device ID,Model,Version" >"$d/import.csv"
	: >"$d/registered"
	for v in $(seq 1 $((${#MATRIX_VARIANTS[@]} - 1))); do
		ids "$v" >"$d/v$v"
		sed 's/$/,SParkometer,1.1/' "$d/v$v" >>"$d/import.csv"
		[ "$v" = 1 ] || [ "$v" = 7 ] || cat "$d/v$v" >>"$d/registered"
	done
	krr import --as Ottawa --mno Telus "$d/import.csv" >/dev/null
	krr register --as Ottawa --asp ParkoServ "$d/registered" >/dev/null
	echo "device_id,model,version,csr" >"$d/relay.csv"
	for v in 2 3 4 5 6 8 9 10; do
		mkcsr --manifest "$groups" --start "$(matrix_id "$v" 0)" | tail -n +2 >>"$d/relay.csv"
	done
	krr activate --as ParkoServ --csr "$d/relay.csv" >/dev/null
	codes_for Ottawa "$d/codes.csv" "$d/import.csv"
	krr reset --as Ottawa "$d/v2" >/dev/null
	krr hold --as ParkoServ "$d/v4" >/dev/null
	{ echo device,code; grep -Ff "$d/v5" "$d/codes.csv"; } >"$d/pending.csv"
	krr transfer request --as CarParkServ "$d/pending.csv" >/dev/null
	krr deactivate --as ParkoServ "$d/v6" >/dev/null
	krr delete --as Ottawa "$d/v7" >/dev/null
	krr lock --as Ottawa --lock transfer "$d/v8" >/dev/null
	krr lock --as Ottawa --lock delete "$d/v9" >/dev/null
	krr lock --as Ottawa --lock update "$d/v10" >/dev/null
}

# matrix_expect CMD ROLE STATE FLAGS SPEC: in $want, "done TO", "unchanged"
# or "refused", as the table says (and docs/registry.md's notes: a repeated
# import, an activation or reactivation of an active device, a repeated
# transfer request, a query, a lock already set are unchanged).
matrix_expect() {
	local cmd=$1 role=$2 state=$3 flags=$4 who states to refused needs f
	IFS='|' read -r _ who states to refused needs <<<"$5"
	want=unchanged
	case "$cmd $role" in
	"import O" | "import W") [ "$state" != none ] && return ;;
	"transfer request S" | "transfer request G") return ;;
	"activate O" | "activate S" | "activate M" | "reactivate O" | "reactivate S")
		[ "$state" = active ] && [[ $flags != *pendingTransfer* && $flags != *updateProhibited* ]] &&
			return ;;
	esac
	want=refused
	[[ " $who " == *" $role "* ]] || return 0
	[[ " $states " == *" $state "* ]] || return 0
	for f in $refused; do [[ " $flags " != *" $f "* ]] || return 0; done
	for f in $needs; do [[ " $flags " == *" $f "* ]] || return 0; done
	want=unchanged
	case $cmd in
	"transfer query") return ;;
	lock) [[ $flags == *transferProhibited* ]] && return ;;
	unlock) [[ $flags != *transferProhibited* ]] && return ;;
	esac
	[ "$to" = same ] && to=$state
	[ "$cmd" = restore ] && to=listed
	want="done $to"
}

# by_id FILE ARRAY: ARRAY[id] = the lines of FILE naming "id":"<id>" (or
# "device":"<id>", or device=<id>), joined.
by_id() {
	local -n map=$2
	local line re='"(id|device)":"([0-9]+)"|device=([0-9]+) '
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		map[${BASH_REMATCH[2]}${BASH_REMATCH[3]}]+="$line"$'\n'
	done <"$1"
}

# Every command of the table, as every account, on a device in every state:
# what is allowed happens (its state after, its certificate issued or
# revoked as the table says); what is refused exits 11 and leaves the
# device's record, its certificates and its audit entries as they were.
test_registry_state_machine_matrix() {
	local rows=() row
	while IFS= read -r row; do
		[ "${row%%|*}" = show ] || rows+=("$row")
	done < <(spec_rows)
	[ ${#rows[@]} -ge 20 ] || fail "docs/registry.md's table has ${#rows[@]} commands"
	local groups=$((${#rows[@]} * ${#MATRIX_ACCOUNTS[@]})) d=$T/matrix
	matrix_setup $groups
	reg_list operator >"$d/before.json"
	krc --json >"$d/certs-before.json"
	audit_list --kind registry >"$d/audit-before"
	# every group: one command as one account on its devices of every variant
	local r g=0 cmd acct v extra id
	for r in "${!rows[@]}"; do
		cmd=${rows[$r]%%|*}
		for acct in "${MATRIX_ACCOUNTS[@]}"; do
			: >"$d/g$g"
			for v in "${!MATRIX_VARIANTS[@]}"; do matrix_id "$v" "$g" >>"$d/g$g"; done
			extra=()
			case $cmd in
			register) extra=(--asp ThirdServ) ;;
			lock | unlock) extra=(--lock transfer) ;;
			switch-mno) extra=(--mno Rogers) ;;
			payload) mkdir -p "$d/pl$g" && extra=(--out "$d/pl$g") ;;
			"transfer request")
				{ echo device,code; while read -r id; do
					grep "^$id," "$d/codes.csv" || echo "$id,00000000"
				done <"$d/g$g"; } >"$d/g$g.csv" ;;
			import) { echo "Device ID,Model,Version"; sed 's/$/,SParkometer,1.1/' "$d/g$g"; } >"$d/g$g.csv" ;;
			rekey) # a new CSR for each device
				{ echo device_id,model,version,csr; while read -r id; do
					mkcsr --manifest 1 --start "$id" </dev/null | tail -n +2
				done <"$d/g$g"; } >"$d/rekey$g.csv"
				extra=(--csr "$d/rekey$g.csv") ;;
			esac
			if [ "$cmd" != rekey ]; then
				[ -e "$d/g$g.csv" ] && extra+=("$d/g$g.csv") || extra+=("$d/g$g")
			fi
			# shellcheck disable=SC2086 # "transfer request" is two words
			krr $cmd --as "$acct" --json "${extra[@]}" >>"$d/out" 2>/dev/null || true
			g=$((g + 1))
		done
	done
	reg_list operator >"$d/after.json"
	krc --json >"$d/certs-after.json"
	audit_list --kind registry >"$d/audit-after"
	local -A out before after cb ca ab aa
	by_id "$d/out" out
	by_id "$d/before.json" before
	by_id "$d/after.json" after
	by_id "$d/certs-before.json" cb
	by_id "$d/certs-after.json" ca
	by_id "$d/audit-before" ab
	by_id "$d/audit-after" aa
	# and what each device came to, against the table
	local checked=0 name state flags role want line what meets mflags cert
	g=0
	for r in "${!rows[@]}"; do
		cmd=${rows[$r]%%|*}
		cert=$(sed -n "s/^| $cmd |\([^|]*|\)\{5\} \([a-z]*\) |.*/\2/p" "$REPO/docs/registry.md")
		for acct in "${MATRIX_ACCOUNTS[@]}"; do
			for v in "${!MATRIX_VARIANTS[@]}"; do
				read -r name state flags <<<"${MATRIX_VARIANTS[$v]}"
				id=$((300000000000000 + v * 1000 + g))
				matrix_role "$acct" "$v" "$cmd"
				meets=$state mflags=$flags
				# a registration of another ASP (or none): the device's locks only
				if [ "$cmd" = register ] || { [ "$role" = A ] && [ "$cmd" != "transfer request" ]; }; then
					case $state in none | pendingDelete) ;; *) meets=listed ;; esac
					case $flags in *Prohibited) ;; *) mflags=- ;; esac
				fi
				matrix_expect "$cmd" "$role" "$meets" "$mflags" "${rows[$r]}"
				line=${out[$id]:-}
				what="$cmd as $acct ($role) on $name"
				case $want in
				refused)
					[[ $line == *'"result":"refused"'*'"exit":11'* ]] || fail "$what: want refused with 11: $line" ;;
				unchanged)
					[[ $line == *'"result":"unchanged"'* ]] || fail "$what: want unchanged: $line" ;;
				*)
					[[ $line != *'"result":"refused"'* && $line != *'"result":"unchanged"'* && -n $line ]] ||
						fail "$what: want $want: $line"
					matrix_after "$cmd" "$id" "${want#done }" "$what" "$cert" ;;
				esac
				if [ "${want%% *}" != done ]; then
					[ "${before[$id]:-}" = "${after[$id]:-}" ] || fail "$what: $want, yet the device changed"
					[ "${cb[$id]:-}" = "${ca[$id]:-}" ] || fail "$what: $want, yet its certificates changed"
					[ "${ab[$id]:-}" = "${aa[$id]:-}" ] || fail "$what: $want, yet an audit entry was added"
				fi
				checked=$((checked + 1))
			done
			g=$((g + 1))
		done
	done
	[ $checked -eq $((groups * ${#MATRIX_VARIANTS[@]})) ] || fail "$checked cases checked"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# matrix_after CMD ID STATE WHAT CERT: an allowed command's effect on the
# device (after, ca, cb: its listing and certificates after and before).
matrix_after() {
	local cmd=$1 id=$2 to=$3 what=$4 rows=${after[$2]:-} nb na
	case $cmd in
	purge) [ -z "$rows" ] || fail "$what: the device is still listed"; return ;;
	register) rows=$(grep '"asp":"ThirdServ"' <<<"$rows") ;;
	"transfer approve") rows=$(grep '"asp":"CarParkServ"' <<<"$rows") ;;
	esac
	[[ $rows == *"\"state\":\"$to\""* ]] || fail "$what: not $to: $rows"
	nb=$(grep -c '"status":"valid"' <<<"${cb[$id]:-}" || true)
	na=$(grep -c '"status":"valid"' <<<"${ca[$id]:-}" || true)
	case $5 in
	issued) [ "$na" -eq 1 ] && [ "${#ca[$id]}" -gt "${#cb[$id]}" ] || fail "$what: no certificate issued" ;;
	revoked) [ "$nb" -eq 0 ] || [ "$na" -eq 0 ] || fail "$what: the certificate is still valid" ;;
	*) [ "${cb[$id]:-}" = "${ca[$id]:-}" ] || fail "$what: its certificates changed" ;;
	esac
}


# The registry payload (docs/registry.md): for an active meter, signed by the
# registry's key on the token and encrypted to the meter's certificate;
# openssl cms opens it with the meter's key and verifies the signature; it
# names the ASP's endpoint and the meter's identity; a byte changed anywhere
# and it no longer opens or verifies; a held meter gets none; only its
# sponsor, its MNO or the operator may make it.
test_registry_payload_opens_with_openssl_and_tampering_shows() {
	ca_setup
	payload_signer
	mkdir -p "$T/mno" "$T/out"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/meter.key" \
		-subj /CN=1000000000000001 -out "$T/mno/meter.csr" 2>/dev/null
	{ echo "device_id,model,version,csr"; echo "1000000000000001,SParkometer,1.1,meter.csr"
	  mkcsr --manifest 1 --start 1000000000000002 | tail -n +2; } >"$T/mno/relay.csv"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/relay.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	krr import --as Ottawa --mno Telus "$T/ottawa.csv" >/dev/null
	krr register --as Ottawa --asp ParkoServ "$T/ottawa.csv" >/dev/null
	krr activate --as ParkoServ --csr "$T/mno/relay.csv" >/dev/null
	# the zone's trust anchor, as publish --sign gives it
	dnssec_keys ec-p256
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/dns" --sign \
		--pin-file "$T/pin" | sed -n 's/^DS for the parent: //p' >"$T/ds"
	[ "$(wc -l <"$T/ds")" -eq 2 ] || fail "publish --sign gave no DS"
	sed -i "s|^delete_grace_days .*|&\ntrust_anchor = $(paste -sd';' "$T/ds" | tr '\t' ' ')|" "$T/ca/keyrite.cnf"
	has "1000000000000001 written" krr payload --as Telus --out "$T/out" 1000000000000001
	local p=$T/out/1000000000000001.p7m
	valid_cert 1000000000000001 "$T/meter.pem"
	openssl cms -decrypt -binary -inform DER -in "$p" -recip "$T/meter.pem" -inkey "$T/meter.key" \
		-out "$T/signed.der" || fail "openssl cms cannot decrypt the payload with the meter's key"
	openssl cms -verify -binary -inform DER -in "$T/signed.der" -CAfile "$T/ca/root.pem" \
		-purpose any -out "$T/payload.json" 2>"$T/verify.err" || { cat "$T/verify.err"; fail "signature"; }
	grep -q "Verification successful" "$T/verify.err" || fail "openssl cms did not verify"
	for want in '"format":"keyrite-registry-payload/1"' '"device":"1000000000000001"' \
		'"profile_id":11' '"identity":"11.1000000000000001._device.iotregistry.ca"' \
		'"endpoint":"iot.parkoserv.ca"' '"port":8883' '"protocol":"mqtts"' '"ca_chain":["-----BEGIN' \
		'"dnssec":{"zone":"iotregistry.ca","ds":["iotregistry.ca. 3600 IN DS '; do
		grep -qF "$want" "$T/payload.json" || { cat "$T/payload.json"; fail "the payload lacks $want"; }
	done
	kr registry payload verify --key "$T/meter.key" --cert "$T/meter.pem" --root "$T/ca/root.pem" "$p" \
		>"$T/kr.json" 2>"$T/kr.err" || { cat "$T/kr.err"; fail "keyrite registry payload verify"; }
	cmp "$T/kr.json" "$T/payload.json" || fail "keyrite and openssl read different payloads"
	grep -q "good registry payload, signed by .*IoT Registry payload 2026" "$T/kr.err" || fail "no signer"
	# another device's key does not open it
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
		-subj /CN=x -out /dev/null 2>/dev/null
	expect 8 "the device's key does not open it" kr registry payload verify --key "$T/other.key" \
		--cert "$T/meter.pem" --root "$T/ca/root.pem" "$p"
	# the signed content changed inside a payload re-encrypted to the meter
	sed 's/iot.parkoserv.ca/iot.parkoserw.ca/' "$T/signed.der" >"$T/forged.der"
	openssl cms -encrypt -binary -outform DER -aes256 -in "$T/forged.der" -out "$T/forged.p7m" "$T/meter.pem"
	expect 8 "the registry's signature does not verify" kr registry payload verify --key "$T/meter.key" \
		--cert "$T/meter.pem" --root "$T/ca/root.pem" "$T/forged.p7m"
	# a byte of the file changed (flip_byte: writing a fixed 0xff changed
	# nothing when the byte was 0xff already, one run in 256)
	cp "$p" "$T/flipped.p7m"
	flip_byte "$T/flipped.p7m" $(($(stat -c %s "$p") - 20))
	local rc=0
	kr registry payload verify --key "$T/meter.key" --cert "$T/meter.pem" --root "$T/ca/root.pem" \
		"$T/flipped.p7m" >/dev/null 2>&1 || rc=$?
	[ $rc -eq 8 ] || [ $rc -eq 3 ] || fail "a changed payload: exit $rc"
	# the file exists: unchanged, never overwritten; a held meter, a stranger: refused
	has "unchanged (its payload file exists already)" krr payload --as ParkoServ --out "$T/out" 1000000000000001
	krr hold --as ParkoServ 1000000000000002 >/dev/null
	unchanged_by 11 "payload: the device is on hold" krr payload --as ParkoServ --out "$T/out" 1000000000000002
	unchanged_by 11 "payload: the account does not sponsor this device" \
		krr payload --as CarParkServ --out "$T/out" 1000000000000001
	assert_absent "$T/out/1000000000000002.p7m"
	# after a transfer the old payload is not the meter's current one
	codes_for Ottawa "$T/codes.csv" 1000000000000001
	krr transfer request --as CarParkServ "$T/codes.csv" >/dev/null
	krr activate --as CarParkServ 1000000000000001 >/dev/null
	valid_cert 1000000000000001 "$T/meter-new.pem"
	expect 8 "1000000000000001.p7m" kr registry payload verify --key "$T/meter.key" \
		--cert "$T/meter-new.pem" --root "$T/ca/root.pem" "$p"
	# a trust anchor that is not a DS record is refused with the file
	sed -i 's|^trust_anchor = .*|trust_anchor = iotregistry.ca. 3600 IN A 192.0.2.1|' "$T/ca/keyrite.cnf"
	expect 3 "[registry] trust_anchor: 'iotregistry.ca. 3600 IN A 192.0.2.1': not a DS record" \
		krr payload --as CarParkServ --out "$T/out2" 1000000000000001
}
