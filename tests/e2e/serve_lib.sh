# Helpers of the tests that run keyrite serve (t_serve.sh, t_console.sh):
# the test CA with the service's key and certificate, client certificates,
# the service started and stopped on 127.0.0.1 and a free port, and curl
# as an account. Sourced by those files; not a test file itself.

# ksr COMMAND ARGS...: keyrite registry with the test CA.
ksr() {
	local sub=$1
	shift
	case $sub in transfer) sub="transfer $1" && shift ;; esac
	# shellcheck disable=SC2086 # "transfer request" is two words
	kr registry $sub --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" "$@"
}

# client NAME: a key and a client certificate for account NAME, issued by
# the operator (keyrite registry client), in $T/clients/NAME.{key,pem}.
client() {
	local d=$T/clients
	mkdir -p "$d"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$1.key" \
		-subj "/CN=$1" -out "$d/$1.csr" 2>/dev/null || fail "openssl req for $1"
	ksr client "$1" --csr "$d/$1.csr" --out "$d/$1.pem" >/dev/null || fail "registry client $1"
}

# serve_setup [N [csrs]]: the CA, the service's key on the token and its
# certificate, client certificates for every account, and N meters
# (1000000000000001 on) imported by Ottawa with Telus as their MNO and
# registered with ParkoServ (with "csrs": not), their CSRs made (mkcsr) in
# $T/mno/N.csr and $T/mno/relay.csv.
serve_setup() {
	local n=${1:-0} only=${2:-} uri="pkcs11:token=keyrite-devices;object=registry-service-2026"
	ca_setup
	kr hsm keygen "$uri" --type ec-p256 --pin-file "$T/pin" >/dev/null
	kr hsm csr "$uri" --cn api.iotregistry.ca --dns api.iotregistry.ca --out "$T/service.csr" --pin-file "$T/pin" >/dev/null
	mkdir -p "$T/svc" "$T/mno"
	kri registry_service --out "$T/svc" "$T/service.csr" >/dev/null 2>&1 || fail "service certificate"
	cat "$(ls "$T"/svc/*.pem | grep -v chain.pem)" "$T/ca/subca-devices.pem" >"$T/ca/registry-service.pem"
	cat "$T/ca/subca-devices.pem" "$T/ca/root.pem" >"$T/chain.pem"
	for a in operator Ottawa ParkoServ CarParkServ Telus Rogers; do client "$a"; done
	[ "$n" -gt 0 ] || return 0
	mkcsr --manifest "$n" --start 1000000000000001 >"$T/mno/relay.csv"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/relay.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	if [ "$only" != csrs ]; then
		ksr import --as Ottawa --mno Telus "$T/ottawa.csv" >/dev/null || fail "import"
		ksr register --as Ottawa --asp ParkoServ "$T/ottawa.csv" >/dev/null || fail "register"
	fi
	tail -n +2 "$T/mno/relay.csv" | while IFS=, read -r id _ _ csr; do
		printf '%s' "$csr" | base64 -d 2>/dev/null | openssl req -inform DER -out "$T/mno/$id.csr" 2>/dev/null ||
			fail "the CSR of $id"
	done
}

# serve_start: keyrite serve on 127.0.0.1 and a free port ($PORT), its log
# in $T/serve.log; serve_stop sends SIGTERM and waits for it to finish.
serve_start() {
	local try
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$(shuf -i 20000-60000 -n 1)
		# the service's port only, not an ASP account's
		sed -i "/^\[serve\]/,/^\[/ s/^port *= .*/port        = $PORT/" "$T/ca/keyrite.cnf"
		"$KEYRITE" serve --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" >"$T/serve.out" 2>>"$T/serve.log" &
		SERVE=$!
		for _ in $(seq 100); do
			grep -q "serving on" "$T/serve.out" 2>/dev/null && return
			kill -0 "$SERVE" 2>/dev/null || break
			sleep 0.1
		done
		wait "$SERVE" 2>/dev/null || true
		SERVE=
		grep -q 'Address already in use' "$T/serve.log" || break
	done
	cat "$T/serve.log" >&2
	fail "keyrite serve did not start"
}

serve_stop() {
	[ -n "${SERVE:-}" ] || return 0
	kill -TERM "$SERVE" 2>/dev/null || true
	local rc=0
	wait "$SERVE" || rc=$?
	SERVE=
	[ "$rc" -eq 0 ] || { tail -5 "$T/serve.log" >&2; fail "keyrite serve exited $rc after SIGTERM"; }
}

# api AS METHOD PATH [JSON]: curl as account AS; the body into $T/body,
# the HTTP status printed.
api() {
	local as=$1 method=$2 path=$3
	shift 3
	local c=$T/clients/$as
	curl -sS --cacert "$T/ca/root.pem" --cert "$c.pem" --key "$c.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -o "$T/body" -w '%{http_code}' \
		-X "$method" -H 'Content-Type: application/json' -H 'Keyrite-Request: 1' ${1:+--data-binary "$1"} \
		"https://api.iotregistry.ca:$PORT/api/v1/$path" >"$T/status" || fail "curl $method $path as $as"
	# every answer is kept for the check against docs/openapi.json
	mkdir -p "$T/api"
	local n
	n=$(find "$T/api" -name '*.json' | wc -l)
	cp "$T/body" "$T/api/$n.json"
	echo "$method $path $(cat "$T/status") $T/api/$n.json" >>"$T/api/record"
	cat "$T/status"
}

# Every answer the tests got matches docs/openapi.json, itself a valid
# OpenAPI 3.0 description (JSON::Validator's schema).
openapi_check() {
	perl "$REPO/tests/tools/openapi-check.pl" "$REPO/docs/openapi.json" "$T/api/record" >"$T/openapi.out" ||
		{ cat "$T/openapi.out"; fail "answers that docs/openapi.json does not describe"; }
}

# expect_api STATUS AS METHOD PATH [JSON]: the call answers STATUS.
expect_api() {
	local want=$1 got
	shift
	got=$(api "$@")
	[ "$got" = "$want" ] || { cat "$T/body" >&2; fail "$2 $3 as $1: HTTP $got, not $want"; }
}

# strict_verify FILE: the certificate verifies with the chain, by OpenSSL
# with -x509_strict and by GnuTLS's certtool (lib.sh's verify_all).
strict_verify() {
	rm -rf "$T/strict" && mkdir -p "$T/strict" && cp "$1" "$T/strict/"
	[ "$(verify_all "$T/strict")" -eq 1 ] || fail "$1 was not verified"
}
