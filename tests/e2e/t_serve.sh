# keyrite serve (docs/api.md): the registry online, started and stopped by
# each test on 127.0.0.1 and a free port, driven by clients nobody here
# wrote: curl (the JSON API, EST), openssl cmp (CMP), openssl s_client (TLS).

# shellcheck source=serve_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

# cmp AS ARGS...: openssl cmp to the service as account AS (its TLS client
# certificate and its CMP protection), trusting the service's certificate.
cmp_as() {
	local as=$1
	shift
	local c=$T/clients/$as
	openssl cmp -server "127.0.0.1:$PORT" -path /.well-known/cmp/p/device -tls_used \
		-tls_cert "$c.pem" -tls_key "$c.key" -tls_trusted "$T/ca/root.pem" -tls_host api.iotregistry.ca \
		-cert "$c.pem" -key "$c.key" -extracerts "$T/ca/subca-devices.pem" \
		-trusted "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" "$@"
}

# CMP (RFC 9483) with openssl cmp: the MNO enrolls its meter by p10cr,
# protected by its own certificate; the certificate verifies and is the
# store's; another by ir (a CRMF template), reactivated later from it; a
# retry in a new transaction gets the same certificate; a
# replayed message, wrong protection, another MNO's device and a CSR the
# profile refuses each get a CMP error; genm gives the CA certificates; rr
# revokes as the registry deactivates (the sponsoring ASP may, the MNO not).
test_serve_cmp_p10cr_ir_replay_protection_rr_genm() {
	serve_setup 4
	trap 'serve_stop; teardown' EXIT
	serve_start
	cmp_as Telus -cmd p10cr -csr "$T/mno/1000000000000001.csr" -certout "$T/m1.pem" \
		-reqout "$T/p10.der,$T/conf.der" >"$T/cmp.out" 2>&1 || { cat "$T/cmp.out"; fail "p10cr"; }
	strict_verify "$T/m1.pem"
	openssl x509 -in "$T/m1.pem" -noout -subject | grep -q 'CN = 11.1000000000000001._device.iotregistry.ca' ||
		fail "not the device's profile 11"
	valid_cert 1000000000000001 "$T/store1.pem"
	cmp <(openssl x509 -in "$T/m1.pem" -outform DER) <(openssl x509 -in "$T/store1.pem" -outform DER) ||
		fail "the store holds another certificate"
	# a retry (a new transaction) gets the same certificate, not a second
	cmp_as Telus -cmd p10cr -csr "$T/mno/1000000000000001.csr" -certout "$T/again.pem" >/dev/null 2>&1 ||
		fail "the retry failed"
	cmp "$T/m1.pem" "$T/again.pem" || fail "a retry got another certificate"
	[ "$(ncerts --device 1000000000000001)" -eq 1 ] || fail "the retry issued a second certificate"
	# the very message again: refused, nothing issued
	cmp_as Telus -cmd p10cr -csr "$T/mno/1000000000000001.csr" -reqin "$T/p10.der" -certout "$T/replay.pem" >"$T/replay.out" 2>&1 &&
		fail "a replayed p10cr was accepted"
	grep -qi 'badSenderNonce\|replayed' "$T/replay.out" || { cat "$T/replay.out"; fail "the replay's error"; }
	grep -q '"event":"cmp-replay"' "$T/serve.log" || fail "the replay is not logged"
	# Telus's TLS client, Rogers's protection: refused
	cmp_as Telus -cmd p10cr -csr "$T/mno/1000000000000002.csr" -cert "$T/clients/Rogers.pem" \
		-key "$T/clients/Rogers.key" -certout "$T/x.pem" >"$T/wrong.out" 2>&1 &&
		fail "a message protected by another account was accepted"
	grep -qi 'notAuthorized\|not protected by this client' "$T/wrong.out" || { cat "$T/wrong.out"; fail "wrong protection's error"; }
	# protection by a key the registry never certified: the library refuses it
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" \
		-subj /CN=Telus -days 2 -out "$T/rogue.pem" 2>/dev/null
	cmp_as Telus -cmd p10cr -csr "$T/mno/1000000000000002.csr" -cert "$T/rogue.pem" -key "$T/rogue.key" \
		-certout "$T/x.pem" >"$T/rogue.out" 2>&1 && fail "an untrusted protection was accepted"
	# Rogers is not these meters' MNO
	cmp_as Rogers -cmd p10cr -csr "$T/mno/1000000000000002.csr" -certout "$T/x.pem" >"$T/rogers.out" 2>&1 &&
		fail "another MNO enrolled Telus's meter"
	grep -qi 'notAuthorized' "$T/rogers.out" || { cat "$T/rogers.out"; fail "the other MNO's error"; }
	# a key the device profile does not take (RSA)
	openssl req -new -newkey rsa:2048 -nodes -keyout "$T/rsa.key" -subj /CN=1000000000000003 \
		-out "$T/rsa.csr" 2>/dev/null
	cmp_as Telus -cmd p10cr -csr "$T/rsa.csr" -certout "$T/x.pem" >"$T/rsa.out" 2>&1 &&
		fail "the profile's refusal was issued"
	grep -qi 'badCertTemplate' "$T/rsa.out" || { cat "$T/rsa.out"; fail "the refused CSR's error"; }
	[ "$(ncerts --device 1000000000000002)" -eq 0 ] && [ "$(ncerts --device 1000000000000003)" -eq 0 ] ||
		fail "a refused request left a certificate"
	assert_absent "$T/x.pem"
	# ir: the key in a CRMF template, its proof of possession checked by
	# OpenSSL's CMP server; reactivation later re-certifies it from the record
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/m2.key" 2>/dev/null
	cmp_as Telus -cmd ir -newkey "$T/m2.key" -subject /CN=1000000000000002 -certout "$T/m2.pem" \
		>"$T/ir.out" 2>&1 || { cat "$T/ir.out"; fail "ir"; }
	strict_verify "$T/m2.pem"
	cmp <(openssl x509 -in "$T/m2.pem" -noout -pubkey) <(openssl pkey -in "$T/m2.key" -pubout) ||
		fail "the ir certificate is not of the template's key"
	[ "$(ncerts --device 1000000000000002 --status valid)" -eq 1 ] || fail "ir: not in the store"
	ksr deactivate --as ParkoServ 1000000000000002 >/dev/null || fail "deactivate"
	ksr reactivate --as ParkoServ 1000000000000002 >/dev/null || fail "reactivate from the template on record"
	valid_cert 1000000000000002 "$T/m2b.pem"
	cmp <(openssl x509 -in "$T/m2b.pem" -noout -pubkey) <(openssl pkey -in "$T/m2.key" -pubout) ||
		fail "the reactivated certificate is not of the template's key"
	# kur (RFC 9483 section 4.1.3): a new key, the message protected by the
	# device's current certificate, relayed over Telus's TLS. Unconfirmed
	# (the answer lost): the old certificate stays valid, and a retry
	# protected by it gets the same new certificate; once confirmed the old
	# one is revoked as superseded, and protects nothing more.
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/m2n.key" 2>/dev/null
	cmp_as Telus -cmd kur -cert "$T/m2b.pem" -key "$T/m2.key" -newkey "$T/m2n.key" \
		-disable_confirm -certout "$T/m2c.pem" >"$T/kur.out" 2>&1 || { cat "$T/kur.out"; fail "kur"; }
	strict_verify "$T/m2c.pem"
	cmp <(openssl x509 -in "$T/m2c.pem" -noout -pubkey) <(openssl pkey -in "$T/m2n.key" -pubout) ||
		fail "the kur certificate is not of the new key"
	[ "$(ncerts --device 1000000000000002 --status valid)" -eq 2 ] || fail "unconfirmed, the old certificate went"
	cmp_as Telus -cmd kur -cert "$T/m2b.pem" -key "$T/m2.key" -newkey "$T/m2n.key" \
		-certout "$T/m2d.pem" >"$T/kur2.out" 2>&1 || { cat "$T/kur2.out"; fail "the kur's retry"; }
	cmp "$T/m2c.pem" "$T/m2d.pem" || fail "a kur's retry got another certificate"
	[ "$(ncerts --device 1000000000000002 --status valid)" -eq 1 ] || fail "confirmed, the old certificate is valid"
	valid_cert 1000000000000002 "$T/m2e.pem"
	cmp "$T/m2c.pem" "$T/m2e.pem" || fail "the store's valid certificate is not the kur's"
	local old
	old=$(openssl x509 -in "$T/m2b.pem" -noout -serial | cut -d= -f2)
	krc --device 1000000000000002 --json | grep -q "\"serial\":\"$old\",\"status\":\"revoked\".*\"reason\":4}" ||
		{ krc --device 1000000000000002 --json; fail "the old certificate is not revoked as superseded (4)"; }
	cmp_as Telus -cmd kur -cert "$T/m2b.pem" -key "$T/m2.key" -newkey "$T/m2.key" \
		-certout "$T/x.pem" >"$T/kur3.out" 2>&1 && fail "a kur protected by a superseded certificate"
	grep -qi 'notAuthorized' "$T/kur3.out" || { cat "$T/kur3.out"; fail "the superseded protection's error"; }
	# Rogers is not its MNO; the TLS client's own certificate is not the device's
	cmp_as Rogers -cmd kur -cert "$T/m2c.pem" -key "$T/m2n.key" -newkey "$T/m2.key" \
		-certout "$T/x.pem" >"$T/kur4.out" 2>&1 && fail "another MNO rekeyed Telus's meter"
	grep -qi 'notAuthorized' "$T/kur4.out" || { cat "$T/kur4.out"; fail "the other MNO's kur error"; }
	cmp_as Telus -cmd kur -oldcert "$T/m2c.pem" -newkey "$T/m2.key" -certout "$T/x.pem" >"$T/kur5.out" 2>&1 &&
		fail "a kur protected by the MNO's certificate"
	grep -qi 'notAuthorized' "$T/kur5.out" || { cat "$T/kur5.out"; fail "the MNO-protected kur's error"; }
	assert_absent "$T/x.pem"
	# with implicit confirmation the old certificate goes at once
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/m2f.key" 2>/dev/null
	cmp_as Telus -cmd kur -cert "$T/m2c.pem" -key "$T/m2n.key" -newkey "$T/m2f.key" -implicit_confirm \
		-certout "$T/m2f.pem" >"$T/kur6.out" 2>&1 || { cat "$T/kur6.out"; fail "kur, implicitly confirmed"; }
	[ "$(ncerts --device 1000000000000002 --status valid)" -eq 1 ] || fail "implicit: the old certificate is valid"
	valid_cert 1000000000000002 "$T/m2e.pem"
	cmp "$T/m2f.pem" "$T/m2e.pem" || fail "implicit: the store's valid certificate is not the kur's"
	grep -q '"event":"cmp-rekey-confirmed"' "$T/serve.log" || fail "the confirmation is not logged"
	# genm: the CA certificates
	cmp_as Telus -cmd genm -infotype caCerts >"$T/genm.out" 2>&1 || { cat "$T/genm.out"; fail "genm"; }
	grep -qi 'caCerts' "$T/genm.out" || { cat "$T/genm.out"; fail "genp without caCerts"; }
	# rr: the MNO may not deactivate; the sponsoring ASP may
	cmp_as Telus -cmd rr -oldcert "$T/m1.pem" >"$T/rr1.out" 2>&1 && fail "the MNO revoked"
	cmp_as ParkoServ -cmd rr -oldcert "$T/m1.pem" >"$T/rr2.out" 2>&1 || { cat "$T/rr2.out"; fail "rr"; }
	[ "$(ncerts --device 1000000000000001 --status revoked)" -eq 1 ] || fail "rr did not revoke"
	ksr show 1000000000000001 | grep -q 'deactivated' || fail "rr did not deactivate"
	serve_stop
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null || fail "audit verify"
}

# The JSON API as each kind of account, and what each may not do: a
# provider reading or transferring another's device, an MNO transferring,
# a wrong code; the owner's codes move a meter; the losing provider hears
# of it by poll; list pages; malformed requests; EST cacerts and
# simpleenroll with curl.
test_serve_json_api_rights_poll_est() {
	serve_setup 4
	trap 'serve_stop; teardown' EXIT
	serve_start
	expect_api 200 ParkoServ GET devices/1000000000000001
	grep -q '"state":"registered"' "$T/body" || fail "info: $(cat "$T/body")"
	expect_api 403 CarParkServ GET devices/1000000000000001
	expect_api 403 Rogers GET devices/1000000000000001
	expect_api 200 Telus GET devices/1000000000000001
	# activation by the MNO over JSON, its CSR in the request
	local pem
	pem=$(awk '{printf "%s\\n", $0}' "$T/mno/1000000000000002.csr")
	expect_api 200 Telus POST activate "{\"devices\":[{\"device\":\"1000000000000002\",\"csr\":\"$pem\"}]}"
	grep -q '"result":"activated"' "$T/body" && grep -q 'BEGIN CERTIFICATE' "$T/body" ||
		fail "activate: $(cat "$T/body")"
	# its rekey over JSON, a new CSR in the request: the old certificate
	# superseded; CarParkServ may not
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/m2r.key" \
		-subj /CN=1000000000000002 -out "$T/m2r.csr" 2>/dev/null
	pem=$(awk '{printf "%s\\n", $0}' "$T/m2r.csr")
	expect_api 403 CarParkServ POST rekey "{\"devices\":[{\"device\":\"1000000000000002\",\"csr\":\"$pem\"}]}"
	expect_api 200 Telus POST rekey "{\"devices\":[{\"device\":\"1000000000000002\",\"csr\":\"$pem\"}]}"
	grep -q '"result":"rekeyed"' "$T/body" && grep -q 'BEGIN CERTIFICATE' "$T/body" ||
		fail "rekey: $(cat "$T/body")"
	[ "$(ncerts --device 1000000000000002 --status valid)" -eq 1 ] &&
		[ "$(ncerts --device 1000000000000002 --status revoked)" -eq 1 ] || fail "rekey: the old certificate is valid"
	expect_api 400 Telus POST rekey '{"devices":["1000000000000002"]}'
	grep -q 'needs the device.s new CSR' "$T/body" || fail "rekey without a CSR: $(cat "$T/body")"
	# the registry payload of the activated meter, for its MNO
	payload_signer
	expect_api 200 Telus POST payload '{"devices":["1000000000000002"]}'
	sed -n 's/.*"payload":"\([^"]*\)".*/\1/p' "$T/body" | base64 -d >"$T/m2.p7m"
	openssl cms -cmsout -print -inform DER -in "$T/m2.p7m" | grep -q 'envelopedData' ||
		fail "payload: $(head -c 300 "$T/body")"
	# list: pages of two
	expect_api 200 ParkoServ GET 'devices?limit=2'
	grep -q '"next":"1000000000000002"' "$T/body" || fail "list page 1: $(cat "$T/body")"
	expect_api 200 ParkoServ GET 'devices?limit=2&after=1000000000000002'
	grep -q '"device":"1000000000000004"' "$T/body" || fail "list page 2: $(cat "$T/body")"
	expect_api 200 ParkoServ GET 'devices?limit=2&after=1000000000000004'
	grep -q '"devices":\[\]' "$T/body" && ! grep -q '"next"' "$T/body" ||
		fail "list's end: $(cat "$T/body")"
	expect_api 403 ParkoServ GET 'devices?asp=CarParkServ'
	expect_api 400 ParkoServ GET 'devices?limit=0'
	# codes: the owner makes them; the MNO and a wrong code cannot transfer
	expect_api 200 Ottawa POST authcode '{"devices":["1000000000000001"]}'
	local code
	code=$(sed -n 's/.*"auth_code":"\([^"]*\)".*/\1/p' "$T/body")
	[ -n "$code" ] || fail "no code: $(cat "$T/body")"
	! grep -rqF "$code" "$T/serve.log" || fail "the auth code is in the service's log"
	expect_api 403 Telus POST transfer/request "{\"devices\":[{\"device\":\"1000000000000001\",\"code\":\"$code\"}]}"
	expect_api 403 CarParkServ POST transfer/request '{"devices":[{"device":"1000000000000001","code":"WRONG-CODE-0000"}]}'
	grep -q '"code":2202' "$T/body" || fail "a wrong code's result: $(cat "$T/body")"
	expect_api 200 CarParkServ POST transfer/request "{\"devices\":[{\"device\":\"1000000000000001\",\"code\":\"$code\"}]}"
	grep -q '"result":"transferred"' "$T/body" || fail "transfer: $(cat "$T/body")"
	expect_api 200 CarParkServ GET devices/1000000000000001
	expect_api 403 ParkoServ GET devices/1000000000000001
	# guessing over the API is the registry's guessing: five wrong codes
	# void the code and lock the device against transfer
	expect_api 200 Ottawa POST authcode '{"devices":["1000000000000004"]}'
	code=$(sed -n 's/.*"auth_code":"\([^"]*\)".*/\1/p' "$T/body")
	for _ in 1 2 3 4 5; do
		expect_api 403 CarParkServ POST transfer/request '{"devices":[{"device":"1000000000000004","code":"WRONG-CODE-0000"}]}'
	done
	expect_api 403 CarParkServ POST transfer/request "{\"devices\":[{\"device\":\"1000000000000004\",\"code\":\"$code\"}]}"
	expect_api 200 ParkoServ GET devices/1000000000000004
	grep -q 'transferProhibited' "$T/body" || fail "five wrong codes did not lock: $(cat "$T/body")"
	# the losing provider and the owner hear of it
	local id events=
	for _ in $(seq 30); do
		expect_api 200 ParkoServ GET poll
		grep -q '"count":0' "$T/body" && break
		events+="$(sed -n 's/.*"event":"\([^"]*\)".*/\1/p' "$T/body");"
		id=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$T/body")
		expect_api 200 ParkoServ POST "poll/$id/ack"
		expect_api 404 ParkoServ POST "poll/$id/ack"
	done
	grep -q '"count":0' "$T/body" || fail "the acknowledged messages stay: $(cat "$T/body")"
	[[ $events == "rekey;"*"transfer request;"*"transfer approve;"* ]] || fail "ParkoServ heard: $events"
	# the owner heard first of its meter's new key (oldest first)
	expect_api 200 Ottawa GET poll
	grep -q '"device":"1000000000000002","event":"rekey","detail":"active->active by Telus"' "$T/body" ||
		fail "Ottawa's poll: $(cat "$T/body")"
	# what the registry's rules refuse, refused here too, and bad requests
	expect_api 403 Telus POST delete '{"devices":["1000000000000003"]}'
	expect_api 200 Ottawa POST check '{"devices":["1000000000000003","1000000000000099"]}'
	grep -q '"device":"1000000000000099","known":false' "$T/body" || fail "check: $(cat "$T/body")"
	expect_api 400 Ottawa POST delete '{"devices":["1000000000000003"'
	grep -q 'line 1 column' "$T/body" || fail "malformed JSON's error: $(cat "$T/body")"
	expect_api 400 Ottawa POST delete '{"devices":["1000000000000003"],"force":true}'
	grep -q "unknown member 'force'" "$T/body" || fail "unknown member: $(cat "$T/body")"
	# not an object (the fuzz target found this freed twice)
	expect_api 400 Ottawa POST delete '[]'
	grep -q 'not a JSON object' "$T/body" || fail "an array body: $(cat "$T/body")"
	expect_api 400 Ottawa POST check '"x"'
	expect_api 400 Ottawa POST import '{"devices":["../../etc/passwd"]}'
	expect_api 404 Ottawa POST frobnicate '{"devices":["1000000000000003"]}'
	# EST: the CA certificates, and the MNO's enrollment of a meter
	curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/Telus.pem" --key "$T/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" "https://api.iotregistry.ca:$PORT/.well-known/est/cacerts" |
		base64 -d | openssl pkcs7 -inform DER -print_certs >"$T/cacerts.pem" || fail "EST cacerts"
	[ "$(grep -c 'BEGIN CERT' "$T/cacerts.pem")" -eq 2 ] || fail "cacerts: not the CA and the root"
	openssl req -in "$T/mno/1000000000000003.csr" -outform DER | base64 >"$T/est.b64"
	curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/Telus.pem" --key "$T/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -H 'Content-Type: application/pkcs10' \
		--data-binary @"$T/est.b64" "https://api.iotregistry.ca:$PORT/.well-known/est/simpleenroll" |
		base64 -d | openssl pkcs7 -inform DER -print_certs >"$T/est.pem" || fail "EST simpleenroll"
	strict_verify "$T/est.pem"
	[ "$(ncerts --device 1000000000000003 --status valid)" -eq 1 ] || fail "EST enrolled nothing"
	# simplereenroll (RFC 7030 section 4.2.2): a new key for the meter, the
	# old certificate revoked as superseded; Rogers may not, nor may a
	# device that is not active
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/re.key" \
		-subj /CN=1000000000000003 -outform DER 2>/dev/null | base64 >"$T/re.b64"
	est_post() { # AS OP FILE: the HTTP status; the body in $T/est.out
		curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/$1.pem" --key "$T/clients/$1.key" \
			--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -H 'Content-Type: application/pkcs10' \
			-o "$T/est.out" -w '%{http_code}' --data-binary @"$3" \
			"https://api.iotregistry.ca:$PORT/.well-known/est/$2" || fail "curl EST $2"
	}
	[ "$(est_post Rogers simplereenroll "$T/re.b64")" = 403 ] || fail "another MNO re-enrolled: $(cat "$T/est.out")"
	[ "$(est_post Telus simplereenroll "$T/re.b64")" = 200 ] || fail "simplereenroll: $(cat "$T/est.out")"
	base64 -d "$T/est.out" | openssl pkcs7 -inform DER -print_certs >"$T/re.pem" || fail "simplereenroll's PKCS#7"
	strict_verify "$T/re.pem"
	cmp <(openssl x509 -in "$T/re.pem" -noout -pubkey) <(openssl pkey -in "$T/re.key" -pubout) ||
		fail "the re-enrolled certificate is not of the new key"
	local old
	old=$(openssl x509 -in "$T/est.pem" -noout -serial | cut -d= -f2)
	krc --device 1000000000000003 --json | grep -q "\"serial\":\"$old\",\"status\":\"revoked\".*\"reason\":4}" ||
		fail "simplereenroll: the old certificate is not revoked as superseded"
	[ "$(ncerts --device 1000000000000003 --status valid)" -eq 1 ] || fail "simplereenroll: two valid certificates"
	openssl req -in "$T/mno/1000000000000004.csr" -outform DER | base64 >"$T/re4.b64"
	[ "$(est_post Telus simplereenroll "$T/re4.b64")" = 403 ] || fail "a device not active was re-enrolled: $(cat "$T/est.out")"
	grep -q 'registered, not active' "$T/est.out" || fail "simplereenroll's refusal: $(cat "$T/est.out")"
	serve_stop
	openapi_check
}

# PBM (RFC 9483 section 4.1.5): a device's enrollment secret, made by its
# owner (keyrite registry secret) from the token's enrollment key, protects
# its ir relayed by its MNO; the answer is MAC-protected too. A wrong or
# another device's secret, another MNO, a voided secret and a kur by PBM are
# refused; the secret is in no log and no audit entry.
test_serve_cmp_pbm_enrollment_secret() {
	serve_setup 3
	kr hsm keygen "pkcs11:token=keyrite-devices;object=registry-enrollment-2026" --type aes-256 \
		--pin-file "$T/pin" | grep -q 'aes-256 id [0-9a-f]* CKA_SENSITIVE=true CKA_EXTRACTABLE=false' ||
		fail "the enrollment key"
	ksr secret --as Ottawa 1000000000000001 1000000000000002 >"$T/secrets" || fail "registry secret"
	local s1 s2
	s1=$(awk '$1 == 1000000000000001 {print $4}' "$T/secrets")
	s2=$(awk '$1 == 1000000000000002 {print $4}' "$T/secrets")
	[[ $s1 =~ ^[0-9a-f]{8}(-[0-9a-f]{8}){3}$ && $s2 =~ ^[0-9a-f]{8}(-[0-9a-f]{8}){3}$ && $s1 != "$s2" ]] ||
		{ cat "$T/secrets"; fail "not two secrets"; }
	trap 'serve_stop; teardown' EXIT
	serve_start
	pbm_ir() { # AS DEVICE SECRET KEY OUT [ARGS]: an ir protected by the secret
		local as=$1 dev=$2 c=$T/clients/$1
		KR_PBM=$3 openssl cmp -server "127.0.0.1:$PORT" -path /.well-known/cmp/p/device -tls_used \
			-tls_cert "$c.pem" -tls_key "$c.key" -tls_trusted "$T/ca/root.pem" -tls_host api.iotregistry.ca \
			-trusted "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
			-ref "$dev" -secret env:KR_PBM -cmd ir -newkey "$4" -subject "/CN=$dev" -certout "$5" "${@:6}"
	}
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/k1.key" 2>/dev/null
	# a wrong secret, and device 2's for device 1: the MAC does not verify
	pbm_ir Telus 1000000000000001 "0000${s1:4}" "$T/k1.key" "$T/x.pem" >"$T/p1.out" 2>&1 &&
		fail "a wrong secret was accepted"
	pbm_ir Telus 1000000000000001 "$s2" "$T/k1.key" "$T/x.pem" >"$T/p2.out" 2>&1 &&
		fail "another device's secret was accepted"
	# Rogers is not its MNO; device 3 has no secret
	pbm_ir Rogers 1000000000000001 "$s1" "$T/k1.key" "$T/x.pem" >"$T/p3.out" 2>&1 &&
		fail "another MNO used the device's secret"
	# the library cannot check a MAC without the secret: it rejects the
	# message; why is in the log, not in the answer
	grep -qi 'rejection' "$T/p3.out" || { cat "$T/p3.out"; fail "the other MNO's error"; }
	grep -q '"event":"cmp-protection-refused","account":"Rogers","reason":"device 1000000000000001 has no enrollment secret that Rogers may use"' \
		"$T/serve.log" || fail "the other MNO's refusal is not logged"
	pbm_ir Telus 1000000000000003 "$s1" "$T/k1.key" "$T/x.pem" >"$T/p4.out" 2>&1 &&
		fail "a device without a secret enrolled by PBM"
	# device 1's own secret, device 2 named in the request: refused
	pbm_ir Telus 1000000000000001 "$s1" "$T/k1.key" "$T/x.pem" -subject /CN=1000000000000002 \
		>"$T/p5.out" 2>&1 && fail "the secret of one device enrolled another"
	assert_absent "$T/x.pem"
	[ "$(ncerts --device 1000000000000001) $(ncerts --device 1000000000000002)" = "0 0" ] ||
		fail "a refused PBM request left a certificate"
	pbm_ir Telus 1000000000000001 "$s1" "$T/k1.key" "$T/m1.pem" >"$T/pbm.out" 2>&1 ||
		{ cat "$T/pbm.out"; fail "ir by PBM"; }
	strict_verify "$T/m1.pem"
	cmp <(openssl x509 -in "$T/m1.pem" -noout -pubkey) <(openssl pkey -in "$T/k1.key" -pubout) ||
		fail "the PBM certificate is not of the template's key"
	valid_cert 1000000000000001 "$T/store1.pem"
	cmp <(openssl x509 -in "$T/m1.pem" -outform DER) <(openssl x509 -in "$T/store1.pem" -outform DER) ||
		fail "the store holds another certificate"
	# a new secret voids the old one
	ksr secret --as Ottawa 1000000000000002 >/dev/null || fail "a second secret"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/k2.key" 2>/dev/null
	pbm_ir Telus 1000000000000002 "$s2" "$T/k2.key" "$T/x.pem" >"$T/p6.out" 2>&1 &&
		fail "a voided secret was accepted"
	# PBM is for initial enrollment: a kur by it is refused
	KR_PBM=$s1 openssl cmp -server "127.0.0.1:$PORT" -path /.well-known/cmp/p/device -tls_used \
		-tls_cert "$T/clients/Telus.pem" -tls_key "$T/clients/Telus.key" -tls_trusted "$T/ca/root.pem" \
		-tls_host api.iotregistry.ca -trusted "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
		-ref 1000000000000001 -secret env:KR_PBM -cmd kur \
		-oldcert "$T/m1.pem" -newkey "$T/k2.key" -certout "$T/x.pem" >"$T/p7.out" 2>&1 &&
		fail "a kur by PBM was accepted"
	grep -qi 'rejection' "$T/p7.out" || { cat "$T/p7.out"; fail "the PBM kur's error"; }
	grep -q '"reason":"PBM protects initial enrollments only"' "$T/serve.log" ||
		fail "the PBM kur's refusal is not logged"
	assert_absent "$T/x.pem"
	# over JSON: the owner makes one, an ASP may not
	expect_api 403 ParkoServ POST secret '{"devices":["1000000000000003"]}'
	expect_api 200 Ottawa POST secret '{"devices":["1000000000000003"]}'
	local s3
	s3=$(sed -n 's/.*"enrollment_secret":"\([^"]*\)".*/\1/p' "$T/body")
	[[ $s3 =~ ^[0-9a-f]{8}(-[0-9a-f]{8}){3}$ ]] || fail "secret over JSON: $(cat "$T/body")"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/k3.key" 2>/dev/null
	pbm_ir Telus 1000000000000003 "$s3" "$T/k3.key" "$T/m3.pem" >"$T/p8.out" 2>&1 ||
		{ cat "$T/p8.out"; fail "ir by the JSON-made secret"; }
	serve_stop
	openapi_check
	! grep -qF "${s3:0:17}" "$T/serve.log" "$T/serve.out" || fail "a secret is in the service's log"
	! grep -qF "${s1:0:17}" "$T/serve.log" "$T/serve.out" || fail "a secret is in the service's log"
	! audit_list | grep -qF "${s1:0:17}" || fail "a secret is in the audit log"
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null || fail "audit verify"
}

# Who may connect: a certificate of another CA fails the handshake; one of
# the registry's CA that no account holds, and a revoked one, are refused
# at the first request; each reason is in the log, not the response.
test_serve_unknown_unbound_revoked_clients_refused() {
	serve_setup 1
	trap 'serve_stop; teardown' EXIT
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/clients/stray.key" \
		-subj /CN=stray -out "$T/stray.csr" 2>/dev/null
	mkdir -p "$T/stray"
	kri api_client --out "$T/stray" "$T/stray.csr" >/dev/null 2>&1 || fail "an unbound client certificate"
	cp "$(ls "$T"/stray/*.pem | grep -v chain.pem)" "$T/clients/stray.pem"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/clients/self.key" \
		-subj /CN=Telus -days 2 -out "$T/clients/self.pem" 2>/dev/null
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca devices \
		"$(openssl x509 -in "$T/clients/Rogers.pem" -noout -serial | cut -d= -f2)" >/dev/null ||
		fail "revoking Rogers's client certificate"
	serve_start
	local got
	got=$(curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/self.pem" --key "$T/clients/self.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' \
		"https://api.iotregistry.ca:$PORT/api/v1/devices" 2>/dev/null) && fail "a stranger's certificate got HTTP $got"
	grep -q '"event":"handshake-refused","subject":"/CN=Telus","reason":"self-signed certificate"' "$T/serve.log" ||
		fail "the handshake's refusal is not logged"
	curl -sS --cacert "$T/ca/root.pem" --resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o /dev/null \
		"https://api.iotregistry.ca:$PORT/api/v1/devices" 2>/dev/null && fail "no certificate, and an answer"
	expect_api 403 stray GET devices
	grep -q 'forbidden' "$T/body" && ! grep -q 'bound' "$T/body" || fail "the reason reached the client"
	grep -q '"event":"client-refused".*"reason":"the certificate is bound to no account"' "$T/serve.log" ||
		fail "the unbound client's reason is not logged"
	expect_api 403 Rogers GET devices
	grep -q '"event":"client-refused".*CN=Rogers.*"reason":"the certificate is revoked"' "$T/serve.log" ||
		fail "the revoked client's reason is not logged"
	expect_api 200 Telus GET devices
	# TLS 1.3 alone unless the configuration allows 1.2 (keyrite-ca(5))
	! openssl s_client -tls1_2 -connect "127.0.0.1:$PORT" -CAfile "$T/ca/root.pem" \
		-cert "$T/clients/Telus.pem" -key "$T/clients/Telus.key" </dev/null >"$T/tls12.out" 2>&1 ||
		fail "a TLS 1.2 handshake succeeded"
	grep -qi 'alert\|no protocols\|unsupported' "$T/tls12.out" || { cat "$T/tls12.out"; fail "TLS 1.2's refusal"; }
	serve_stop
	# the token's PIN is in no log or output of the service
	! grep -qF "$(cat "$T/pin")" "$T/serve.log" "$T/serve.out" || fail "the PIN is in the service's log"
	openapi_check
}

# An account over its rate is refused (HTTP 429) while another is served.
test_serve_rate_limit_per_account() {
	serve_setup 1
	trap 'serve_stop; teardown' EXIT
	sed -i -e 's/^rate *= .*/rate        = 1/' -e 's/^burst *= .*/burst       = 3/' "$T/ca/keyrite.cnf"
	serve_start
	for _ in 1 2 3; do expect_api 200 Telus GET devices; done
	expect_api 429 Telus GET devices
	expect_api 200 Ottawa GET devices
	sleep 1.2
	expect_api 200 Telus GET devices
	serve_stop
	openapi_check
}

# SIGKILL during a load of enrollments, then a restart: every enrollment
# that was answered is in the store with the certificate its client got,
# none twice, and the audit log verifies; enrolling them all again gives
# the answered ones the same certificates and the others theirs.
test_serve_sigkill_under_load_loses_nothing() {
	local n=32 id pids=()
	serve_setup $n
	trap 'serve_stop; teardown' EXIT
	serve_start
	mkdir -p "$T/got"
	for i in $(seq $n); do
		id=$((1000000000000000 + i))
		cmp_as Telus -cmd p10cr -csr "$T/mno/$id.csr" -certout "$T/got/$id.pem" >/dev/null 2>&1 &
		pids+=($!)
	done
	# once a few are answered, the service dies
	for _ in $(seq 200); do
		[ "$(find "$T/got" -name '*.pem' | wc -l)" -ge 4 ] && break
		sleep 0.02
	done
	kill -KILL "$SERVE"
	wait "$SERVE" 2>/dev/null || true
	SERVE=
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	local answered
	answered=$(find "$T/got" -name '*.pem' -size +0 | wc -l)
	[ "$answered" -ge 4 ] && [ "$answered" -lt $n ] || fail "$answered of $n answered before the kill"
	for f in "$T"/got/*.pem; do
		[ -s "$f" ] || continue
		id=$(basename "$f" .pem)
		valid_cert "$id" "$T/store.pem"
		cmp <(openssl x509 -in "$f" -outform DER) <(openssl x509 -in "$T/store.pem" -outform DER) ||
			fail "$id: its answer is not the store's certificate"
	done
	# started again, the service first signs what the kill left uncovered
	serve_start
	kr audit verify --config "$T/ca/keyrite.cnf" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "audit verify after the kill and a restart"; }
	for i in $(seq $n); do
		id=$((1000000000000000 + i))
		cmp_as Telus -cmd p10cr -csr "$T/mno/$id.csr" -certout "$T/again-$id.pem" >/dev/null 2>&1 ||
			fail "$id: enrolling again after the restart"
		[ ! -s "$T/got/$id.pem" ] || cmp "$T/got/$id.pem" "$T/again-$id.pem" ||
			fail "$id: answered before the kill, another certificate after it"
		[ "$(ncerts --device "$id" --status valid)" -eq 1 ] || fail "$id: not exactly one valid certificate"
	done
	serve_stop
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null || fail "audit verify"
}

# SIGTERM during a load of enrollments: the service answers what it is
# handling and exits 0; every certificate it issued reached its client
# (none issued and lost), and the store verifies.
test_serve_sigterm_answers_what_is_in_flight() {
	local n=32 id pids=()
	serve_setup $n
	trap 'serve_stop; teardown' EXIT
	serve_start
	mkdir -p "$T/got"
	for i in $(seq $n); do
		id=$((1000000000000000 + i))
		cmp_as Telus -cmd p10cr -csr "$T/mno/$id.csr" -certout "$T/got/$id.pem" >/dev/null 2>&1 &
		pids+=($!)
	done
	for _ in $(seq 200); do
		[ "$(find "$T/got" -name '*.pem' | wc -l)" -ge 4 ] && break
		sleep 0.02
	done
	serve_stop # fails unless the service exits 0
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	local issued=0
	for i in $(seq $n); do
		id=$((1000000000000000 + i))
		[ "$(ncerts --device "$id" --status valid)" -eq 1 ] || continue
		issued=$((issued + 1))
		[ -s "$T/got/$id.pem" ] || fail "$id: issued while stopping, its answer lost"
		valid_cert "$id" "$T/store.pem"
		cmp <(openssl x509 -in "$T/got/$id.pem" -outform DER) <(openssl x509 -in "$T/store.pem" -outform DER) ||
			fail "$id: its answer is not the store's certificate"
	done
	[ "$issued" -ge 4 ] || fail "only $issued issued"
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null || fail "audit verify"
}

# tls_raw ARGS...: a raw TLS connection as Telus (openssl s_client), its
# standard input sent, what the service answers on standard output.
tls_raw() {
	openssl s_client -quiet -connect "127.0.0.1:$PORT" -servername api.iotregistry.ca \
		-CAfile "$T/ca/root.pem" -cert "$T/clients/Telus.pem" -key "$T/clients/Telus.key" "$@" 2>/dev/null
}

# A slow client is dropped after the timeout while others are served;
# malformed HTTP, an oversized body, too many header fields, a CMP body
# that is not DER and a client gone mid-request each get their answer (or
# the connection's end), and the service goes on.
test_serve_slow_malformed_and_vanishing_clients() {
	serve_setup 1
	trap 'serve_stop; teardown' EXIT
	sed -i 's/^timeout *= .*/timeout     = 2/' "$T/ca/keyrite.cnf"
	serve_start
	local start=$SECONDS
	(printf 'GET /api/v1/devices HTTP/1.1\r\nHost: api.iotregistry.ca\r\n'; sleep 8) | tls_raw >"$T/slow.out" &
	local slow=$!
	sleep 0.5
	expect_api 200 Telus GET devices
	# the service ends the connection (s_client itself waits for its input)
	for _ in $(seq 60); do
		[ "$(ss -tnH state established "sport = :$PORT" | wc -l)" -eq 0 ] && break
		sleep 0.1
	done
	[ "$(ss -tnH state established "sport = :$PORT" | wc -l)" -eq 0 ] && [ $((SECONDS - start)) -le 5 ] ||
		fail "the slow client held its connection $((SECONDS - start)) s"
	kill "$slow" 2>/dev/null || true
	printf 'BLAH\r\n\r\n' | tls_raw >"$T/bad.out" || true
	grep -q '^HTTP/1.1 400' "$T/bad.out" || { cat "$T/bad.out"; fail "malformed HTTP's answer"; }
	head -c 2000000 /dev/zero | tr '\0' 'a' >"$T/big"
	local got
	got=$(curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/Telus.pem" --key "$T/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' \
		--data-binary @"$T/big" "https://api.iotregistry.ca:$PORT/api/v1/check" 2>/dev/null) || true
	[ "$got" = 413 ] || fail "a 2 MB body: HTTP $got"
	local h=()
	for i in $(seq 70); do h+=(-H "X-Filler-$i: $i"); done
	got=$(curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/Telus.pem" --key "$T/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' "${h[@]}" \
		"https://api.iotregistry.ca:$PORT/api/v1/devices") || true
	[ "$got" = 431 ] || fail "70 header fields: HTTP $got"
	head -c 300 /dev/urandom >"$T/noise"
	got=$(curl -sS --cacert "$T/ca/root.pem" --cert "$T/clients/Telus.pem" --key "$T/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o "$T/body" -w '%{http_code}' \
		-H 'Content-Type: application/pkixcmp' --data-binary @"$T/noise" \
		"https://api.iotregistry.ca:$PORT/.well-known/cmp/p/device") || true
	[ "$got" = 400 ] && grep -q 'not a DER PKIMessage' "$T/body" || fail "CMP noise: HTTP $got"
	# a client gone in the middle of its body
	(printf 'POST /api/v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"devices":['; sleep 0.3) |
		tls_raw >/dev/null || true
	expect_api 200 Telus GET devices
	kill -0 "$SERVE" || fail "the service died"
	serve_stop
}

# docs/keyrite-serve.service: systemd reads it without a complaint, and its
# sandbox rates "OK" or better (exposure 2.0 at most) in systemd's own
# offline assessment (its --threshold is in tenths). No systemd runs as
# PID 1 here to start it.
test_serve_systemd_unit_verifies() {
	cp "$KEYRITE" "$T/keyrite"
	sed "s|/usr/local/bin/keyrite|$T/keyrite|" "$REPO/docs/keyrite-serve.service" >"$T/keyrite-serve.service"
	systemd-analyze verify --man=no "$T/keyrite-serve.service" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "systemd-analyze verify"; }
	systemd-analyze security --offline=true --threshold=20 "$T/keyrite-serve.service" >"$T/security.out" 2>&1 ||
		{ tail -3 "$T/security.out"; fail "the unit's exposure is above 2.0"; }
	grep -q 'NoNewPrivileges=yes' "$T/keyrite-serve.service" && grep -q 'ProtectSystem=strict' "$T/keyrite-serve.service" ||
		fail "the unit lacks NoNewPrivileges or ProtectSystem=strict"
}

# ottawa_steps RUNNER: the source documents' story on 12 meters, each step
# through RUNNER (api_story or cli_story below): the city imports and
# registers them with ParkoServ, Telus activates them, the city makes
# codes, CarParkServ takes eight of them, Telus activates those again
# under CarParkServ, ParkoServ deactivates one it kept, the city deletes
# one.
ottawa_steps() {
	local run=$1
	"$run" import
	"$run" register
	"$run" activate "$T/mno/relay.csv"
	"$run" authcode
	"$run" transfer
	"$run" activate "$T/mno/moved.csv"
	"$run" deactivate 1000000000000012
	"$run" delete 1000000000000011
}

# ids FILE: a manifest's device ids as a JSON list.
ids_json() { tail -n +2 "$1" | cut -d, -f1 | awk 'BEGIN { printf "[" } { printf "%s\"%s\"", (NR > 1 ? "," : ""), $1 } END { printf "]" }'; }

api_story() {
	case $1 in
	import)
		expect_api 200 Ottawa POST import "{\"mno\":\"Telus\",\"devices\":$(tail -n +2 "$T/mno/relay.csv" |
			awk -F, 'BEGIN { printf "[" } { printf "%s{\"device\":\"%s\",\"model\":\"%s\",\"version\":\"%s\"}", (NR > 1 ? "," : ""), $1, $2, $3 } END { printf "]" }')}" ;;
	register) expect_api 200 Ottawa POST register "{\"asp\":\"ParkoServ\",\"devices\":$(ids_json "$T/mno/relay.csv")}" ;;
	activate) # by CMP, through the MNO
		local id
		for id in $(tail -n +2 "$2" | cut -d, -f1); do
			cmp_as Telus -cmd p10cr -csr "$T/mno/$id.csr" -certout "$T/cmp-$id.pem" >/dev/null 2>&1 ||
				fail "CMP activation of $id"
			rm -f "$T/cmp-$id.pem"
		done ;;
	authcode)
		expect_api 200 Ottawa POST authcode "{\"devices\":$(ids_json "$T/mno/moved.csv")}"
		sed 's/},{/}\n{/g' "$T/body" | sed -n 's/.*"device":"\([0-9]*\)".*"auth_code":"\([^"]*\)".*/\1,\2/p' >"$T/codes.csv" ;;
	transfer)
		expect_api 200 CarParkServ POST transfer/request "{\"devices\":$(awk -F, 'BEGIN { printf "[" } { printf "%s{\"device\":\"%s\",\"code\":\"%s\"}", (NR > 1 ? "," : ""), $1, $2 } END { printf "]" }' "$T/codes.csv")}"
		grep -q '"transferred":\|"done":8' "$T/body" || fail "transfer: $(cat "$T/body")" ;;
	deactivate) expect_api 200 ParkoServ POST deactivate "{\"devices\":[\"$2\"]}" ;;
	delete) expect_api 200 Ottawa POST delete "{\"devices\":[\"$2\"]}" ;;
	esac
}

cli_story() {
	local c=(--config "$T/ca/cli.cnf" --pin-file "$T/pin")
	case $1 in
	import)
		{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/relay.csv" | cut -d, -f1-3; } >"$T/cli-import.csv"
		kr registry import "${c[@]}" --as Ottawa --mno Telus "$T/cli-import.csv" >/dev/null ;;
	register) kr registry register "${c[@]}" --as Ottawa --asp ParkoServ "$T/cli-import.csv" >/dev/null ;;
	activate) kr registry activate "${c[@]}" --as Telus --csr "$2" >/dev/null ;;
	authcode)
		kr registry authcode "${c[@]}" --as Ottawa $(tail -n +2 "$T/mno/moved.csv" | cut -d, -f1) >"$T/cli-codes.out"
		{ echo "device,code"; awk '$2 == "code" {print $1 "," $4}' "$T/cli-codes.out"; } >"$T/cli-codes.csv" ;;
	transfer) kr registry transfer request "${c[@]}" --as CarParkServ "$T/cli-codes.csv" >/dev/null ;;
	deactivate) kr registry deactivate "${c[@]}" --as ParkoServ "$2" >/dev/null ;;
	delete) kr registry delete "${c[@]}" --as Ottawa "$2" >/dev/null ;;
	esac
}

# The Ottawa story driven entirely over the service (JSON for the city and
# the providers, CMP for the MNO's activations) ends in the same registry,
# zone and audit log as the same story on the command line, from the same
# CSRs under the same CA (a second store); the losing provider heard of
# each transfer by poll.
test_serve_ottawa_story_over_the_api_matches_the_cli() {
	serve_setup 12 csrs
	trap 'serve_stop; teardown' EXIT
	{ head -1 "$T/mno/relay.csv"; tail -n +2 "$T/mno/relay.csv" | head -8; } >"$T/mno/moved.csv"
	sed 's/^store *= .*/store    = cli.db/' "$T/ca/keyrite.cnf" >"$T/ca/cli.cnf"
	serve_start
	ottawa_steps api_story
	serve_stop
	ottawa_steps cli_story
	local conf
	for conf in keyrite.cnf cli.cnf; do
		kr registry list --config "$T/ca/$conf" --pin-file "$T/pin" --json >"$T/list-$conf" || fail "list $conf"
		kr publish --config "$T/ca/$conf" --pin-file "$T/pin" --zone iotregistry.ca --out "$T/zone-$conf" >/dev/null ||
			fail "publish $conf"
		kr audit verify --config "$T/ca/$conf" >/dev/null || fail "audit verify $conf"
		kr audit list --config "$T/ca/$conf" --kind registry | cut -d' ' -f3- >"$T/audit-$conf"
	done
	cmp "$T/list-keyrite.cnf" "$T/list-cli.cnf" || { diff "$T/list-keyrite.cnf" "$T/list-cli.cnf" | head; fail "the registries differ"; }
	# the service's own TLSA (DANE for api.iotregistry.ca) is the API run's:
	# only its store issued the service a certificate
	grep -q '^_443._tcp.api.iotregistry.ca.*TLSA' "$T/zone-keyrite.cnf/iotregistry.ca.zone" ||
		fail "the service's TLSA is not published"
	grep -v "SOA\|^;\|^_443._tcp.api.iotregistry.ca" "$T/zone-keyrite.cnf/iotregistry.ca.zone" | sort >"$T/z1"
	grep -v "SOA\|^;" "$T/zone-cli.cnf/iotregistry.ca.zone" | sort >"$T/z2"
	cmp "$T/z1" "$T/z2" || { diff "$T/z1" "$T/z2" | head; fail "the zones differ"; }
	[ "$(grep -c TLSA "$T/z1")" -ge 10 ] || fail "the zone holds too few device records"
	cmp "$T/audit-keyrite.cnf" "$T/audit-cli.cnf" ||
		{ diff "$T/audit-keyrite.cnf" "$T/audit-cli.cnf" | head; fail "the audit logs differ"; }
	grep -q '"state":"active".*"profile_id":2[0-9]' "$T/list-keyrite.cnf" || fail "no second profile after the transfer"
	# ParkoServ heard of the eight transfers (each requested, then approved
	# at once) and the deletion
	serve_start
	expect_api 200 ParkoServ GET poll
	grep -q '"count":17' "$T/body" || fail "ParkoServ's queue: $(cat "$T/body")"
	serve_stop
	openapi_check
}

# The calls the web console makes (docs/console.md), over curl and checked
# against docs/openapi.json: the account, the operator's figures, a
# device's history, certificates and records, a page by id prefix and in
# descending order, an import previewed from CSV text and then made; a POST
# without Keyrite-Request is refused, and so is a preview of anything but
# an import.
test_serve_console_calls() {
	serve_setup 3
	trap 'serve_stop; teardown' EXIT
	serve_start
	expect_api 200 ParkoServ GET account
	grep -q '"account":"ParkoServ","kind":"asp"' "$T/body" || fail "account: $(cat "$T/body")"
	ksr activate --as Telus --csr "$T/mno/relay.csv" >/dev/null || fail "activate"
	expect_api 200 operator GET stats
	grep -q '"active":3' "$T/body" && grep -q '"issued":\[{"day":"[0-9-]*","count":3}\]' "$T/body" ||
		fail "stats: $(cat "$T/body")"
	expect_api 403 ParkoServ GET stats
	expect_api 200 ParkoServ GET devices/1000000000000002/history
	grep -q '"detail":"device=1000000000000002 op=activate' "$T/body" || fail "history: $(cat "$T/body")"
	expect_api 403 CarParkServ GET devices/1000000000000002/history
	expect_api 200 ParkoServ GET devices/1000000000000002/certificates
	grep -q '"status":"valid".*BEGIN CERTIFICATE' "$T/body" || fail "certificates: $(cat "$T/body")"
	expect_api 200 ParkoServ GET devices/1000000000000002/records
	grep -q '"type":"TLSA","expected":"3 1 1 [0-9a-f]*"' "$T/body" || fail "records: $(cat "$T/body")"
	expect_api 404 ParkoServ GET devices/1000000000000002/nothing
	expect_api 200 ParkoServ GET 'devices?q=100000000000000&sort=-id&limit=2'
	grep -q '"devices":\[{"device":"1000000000000003".*"device":"1000000000000002"' "$T/body" &&
		grep -q '"next":"1000000000000002"' "$T/body" || fail "a descending page: $(cat "$T/body")"
	expect_api 400 ParkoServ GET 'devices?sort=model'
	# an import from CSV text: previewed (nothing kept), then made
	local csv='Device ID,Model,Version,MNO\n2000000000000001,SParkometer,1.1,Telus\n12345,SParkometer,1.1,Telus\n'
	expect_api 200 Ottawa POST import "{\"csv\":\"$csv\",\"preview\":true}"
	grep -q '"preview":true' "$T/body" && grep -q '"line":2,"result":"imported"\|"result":"imported".*"line":2' "$T/body" ||
		grep -q '"device":"2000000000000001","line":2,"result":"imported"' "$T/body" || fail "preview: $(cat "$T/body")"
	grep -q '"line":3' "$T/body" || fail "the bad row's line: $(cat "$T/body")"
	expect_api 403 Ottawa GET devices/2000000000000001 # unknown and not its own look alike
	expect_api 200 Ottawa POST import "{\"csv\":\"$csv\"}"
	expect_api 200 Ottawa GET devices/2000000000000001
	# a page of one listed device: the store pages by state (the three
	# active meters before it in id order do not fill the page)
	expect_api 200 Ottawa GET 'devices?state=listed&limit=1'
	grep -q '^{"devices":\[{"device":"2000000000000001"' "$T/body" || fail "a page by state: $(cat "$T/body")"
	expect_api 400 Ottawa POST delete '{"devices":["2000000000000001"],"preview":true}'
	# without the header: refused, nothing done
	local got
	got=$(curl -sS -o "$T/body" -w '%{http_code}' --cacert "$T/ca/root.pem" --cert "$T/clients/Ottawa.pem" \
		--key "$T/clients/Ottawa.key" --resolve "api.iotregistry.ca:$PORT:127.0.0.1" \
		-H 'Content-Type: application/json' --data-binary '{"devices":["2000000000000001"]}' \
		"https://api.iotregistry.ca:$PORT/api/v1/delete")
	[ "$got" = 403 ] && grep -q 'Keyrite-Request' "$T/body" || fail "no header: HTTP $got $(cat "$T/body")"
	expect_api 200 Ottawa GET devices/2000000000000001
	grep -q '"state":"listed"' "$T/body" || fail "the device changed"
	serve_stop
	openapi_check
}
