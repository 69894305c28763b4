# Helpers for the end-to-end tests. Each test gets $T (a private temporary
# directory) with its own SoftHSM token directory and an owner-only PIN file.
#
# A helper whose output a test reads through $(...) checks every tool it
# runs with "|| fail": errexit does not reach into a command substitution
# that is part of a || or && list ([ "$(helper)" = x ] || fail ...), even
# with inherit_errexit, and a failing check would then read as a result.
# (tests/e2e/t_harness.sh holds the runner to that.)

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

setup() {
	T=$(mktemp -d)
	mkdir -p "$T/tokens" "$T/out"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" \
		>"$T/softhsm2.conf"
	export SOFTHSM2_CONF=$T/softhsm2.conf TMPDIR=$T
	# as keyrite(1) says to write them: no final newline (PIN FILES)
	(umask 077; printf %s "test-pin-$RANDOM$RANDOM" >"$T/pin"; printf %s "so-pin-$RANDOM" >"$T/so.pin")
	export KR_TEST_PIN=$(cat "$T/pin")
	EX=$REPO/docs/examples
	cd "$T"
}

teardown() { rm -rf "$T"; }

kr() { "$KEYRITE" "$@"; }

# slow_unwind: under ASan, record allocation stacks with the slow unwinder,
# for a test that signs with Ed25519 on SoftHSM: SoftHSM 2.6.1 leaks there
# (tests/lsan.supp), and only the slow unwinder sees through libcrypto to it.
slow_unwind() {
	[ -z "${ASAN_OPTIONS:-}" ] || export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
}

fail() { echo "assertion failed: $*" >&2; exit 1; }

init_token() { kr hsm init-token --label "$1" --so-pin-file "$T/so.pin" --pin-file "$T/pin" >/dev/null; }

# run_ceremony SCRIPT [more keyrite args]: outputs into $T/out
run_ceremony() { kr ceremony run --dir "$T/out" --pin-file "$T/pin" "$@"; }

# expect STATUS SUBSTRING CMD...: CMD must exit with STATUS and say SUBSTRING on stderr.
expect() {
	local want=$1 text=$2 got=0
	shift 2
	"$@" >"$T/expect.out" 2>"$T/expect.err" || got=$?
	[ "$got" -eq "$want" ] || { cat "$T/expect.err" >&2; fail "'$*' exited $got, want $want"; }
	grep -qF -- "$text" "$T/expect.err" || { cat "$T/expect.err" >&2; fail "stderr lacks '$text'"; }
	[ "$(wc -l <"$T/expect.err")" -eq 1 ] || { cat "$T/expect.err" >&2; fail "want exactly one error line"; }
}

# killed_at FUNC:N ARGS...: keyrite ARGS... killed with SIGKILL just before
# its Nth call to FUNC (tests/tools/crashat.c); fails unless it got there.
killed_at() {
	local at=$1 rc=0
	shift
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" LD_PRELOAD="$CRASHAT" \
		KR_CRASH_AT=$at "$KEYRITE" "$@" >/dev/null 2>&1 || rc=$?
	[ $rc -eq 137 ] || fail "keyrite was to be killed at $at: exit status $rc, want 137"
}

# full_at FUNC:N ARGS...: keyrite ARGS... with its Nth call to FUNC and every
# later one failing with ENOSPC (tests/tools/crashat.c); its status in $rc,
# its stderr in $T/full.err.
full_at() {
	local at=$1
	shift
	rc=0
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" LD_PRELOAD="$CRASHAT" \
		KR_FULL_AT=$at "$KEYRITE" "$@" >/dev/null 2>"$T/full.err" || rc=$?
}

# The serials (hex, as SQLite's hex()) of the certificates in PEM files, read
# by one OpenSSL process.
pem_serials() {
	local text
	cat "$@" >"$T/serials.pem" || fail "pem_serials: cannot read $*"
	text=$(openssl storeutl -noout -text -certs "$T/serials.pem") || fail "openssl storeutl refuses $*"
	awk '/Serial Number:$/ {getline; gsub(/[ :]/, ""); print toupper($0)}' <<<"$text"
}

# flip_byte FILE OFFSET: the octet at OFFSET inverted, so that the file is
# certainly changed (writing a fixed octet leaves a random file unchanged
# once in 256 runs).
flip_byte() {
	local b
	b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | xxd -p)
	[ -n "$b" ] || fail "flip_byte: $1 has no octet $2"
	printf '%02x' $((0x$b ^ 0xff)) | xxd -r -p | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

assert_exists() { for f in "$@"; do [ -e "$f" ] || fail "$f missing"; done; }
assert_absent() { for f in "$@"; do [ ! -e "$f" ] || fail "$f exists"; done; }

# Private keys on a token, counted by pkcs11-tool (independent of keyrite).
# pkcs11-tool failing fails the test: it is not a count of none.
count_private_keys() {
	local out
	out=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$1" --login --pin env:KR_TEST_PIN \
		--list-objects --type privkey 2>&1) || { echo "$out" >&2; fail "pkcs11-tool cannot list token $1"; }
	grep -c '^Private Key Object' <<<"$out" || true
}

# Copies an example script, applying sed expressions: edit NAME 's/a/b/' ...
edit() {
	local name=$1
	shift
	local args=()
	for e in "$@"; do args+=(-e "$e"); done
	sed "${args[@]}" "$EX/$name.cnf" >"$T/$name.cnf"
}

# The standard day: root, sub-CA and the root's CRL into $T/out.
standard_ceremonies() {
	init_token keyrite-root
	init_token keyrite-devices
	run_ceremony "$EX/root.cnf" >/dev/null
	run_ceremony "$EX/subca-devices.cnf" >/dev/null
	run_ceremony "$EX/root-crl.cnf" >/dev/null
}

# has PATTERN CMD...: CMD succeeds and its output (stdout and stderr) matches
# PATTERN. The output is read whole first: "CMD | grep -q" under pipefail
# fails at random when grep exits early and CMD gets SIGPIPE.
has() {
	local pattern=$1 out
	shift
	out=$("$@" 2>&1) || { echo "$out" >&2; fail "'$*' failed"; }
	grep -q -- "$pattern" <<<"$out" || { echo "$out" >&2; fail "'$*' did not print '$pattern'"; }
}

# A root, the devices sub-CA and the firmware sub-CA made by ceremony, and
# the example CA configuration beside them in $T/ca.
ca_setup() {
	mkdir -p "$T/ca" "$T/in" "$T/certs"
	init_token keyrite-root
	init_token keyrite-devices
	local s
	for s in root subca-devices subca-firmware; do
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$EX/$s.cnf" >/dev/null
	done
	cp "$EX/keyrite.cnf" "$T/ca/keyrite.cnf"
	[ "${KR_E2E_STORE:-sqlite}" != postgresql ] || pg_store "$T/ca/keyrite.cnf"
}

# psql_on DB ARGS...: psql as keyrite on database DB of the test run's
# PostgreSQL server (tests/e2e/run.sh), stopping at the first error.
psql_on() {
	local d=$1
	shift
	psql -qX -v ON_ERROR_STOP=1 -h "$KR_PG_HOST" -p "$KR_PG_PORT" -U keyrite -d "$d" "$@"
}

# pg_store CONFIG: CONFIG's store a new database of its own on the test
# run's PostgreSQL server (KR_E2E_STORE=postgresql, tests/e2e/run.sh).
pg_store() {
	PG_DB=t_$(basename "$T" | tr -c 'a-zA-Z0-9\n' _ | tr A-Z a-z)_$RANDOM
	psql_on postgres -c "CREATE DATABASE $PG_DB" || fail "cannot create database $PG_DB"
	PG_STORE="postgresql:host=$KR_PG_HOST port=$KR_PG_PORT user=keyrite dbname=$PG_DB"
	sed -i "s|^store *=.*|store = $PG_STORE|" "$1"
}

# kri PROFILE ARGS...: keyrite issue with the test CA that issues PROFILE
# (firmware_signer: the firmware CA; the others: the devices CA), under
# the configuration $CNF if set (a node's, t_nodes.sh).
kri() {
	local profile=$1 ca=devices
	shift
	[ "$profile" = firmware_signer ] && ca=firmware
	kr issue --config "${CNF:-$T/ca/keyrite.cnf}" --ca "$ca" --profile "$profile" --pin-file "$T/pin" "$@"
}

mkcsr() { "$MKCSR" "$@" || fail "mkcsr $* failed"; }

# What keyrite itself says is in the store. Raw SQL (db) is for tampering
# with the file, and for rows and columns no command shows.
krc() { kr certs --config "$T/ca/keyrite.cnf" "$@" || fail "keyrite certs $*"; }
ncerts() { krc "$@" | wc -l; } # ncerts [--status valid|revoked] [--device ID]
serial_of() { krc --device "$1" --json | sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p'; }
fw_list() { kr fw list --config "$T/ca/keyrite.cnf" --json || fail "keyrite fw list"; }
audit_list() { kr audit list --config "$T/ca/keyrite.cnf" "$@" || fail "keyrite audit list $*"; }

# valid_cert DEVICE FILE: the device's valid certificate, PEM, into FILE.
valid_cert() {
	local serial
	serial=$(krc --device "$1" --status valid --json | sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p')
	[ -n "$serial" ] || fail "$1 has no valid certificate"
	kr show --config "$T/ca/keyrite.cnf" "$serial" | sed -n '/BEGIN CERT/,/END CERT/p' >"$2"
}

# payload_signer: the registry payload's key on the devices token and its
# certificate (the payload_signer profile), as docs/examples/keyrite.cnf names
# them.
payload_signer() {
	local uri="pkcs11:token=keyrite-devices;object=registry-payload-2026"
	kr hsm keygen "$uri" --type ec-p256 --pin-file "$T/pin" >/dev/null
	kr hsm csr "$uri" --cn "IoT Registry payload 2026" --out "$T/payload.csr" --pin-file "$T/pin" >/dev/null
	mkdir -p "$T/psig"
	kri payload_signer --out "$T/psig" "$T/payload.csr" >/dev/null 2>&1
	cat "$(ls "$T"/psig/*.pem | grep -v chain.pem)" "$T/ca/subca-devices.pem" >"$T/ca/registry-payload.pem"
}

# On PostgreSQL (KR_E2E_STORE=postgresql) the same SQL goes to the test's
# database through psql, for the queries both read alike.
db() {
	if [ -n "${PG_DB:-}" ]; then
		psql_on "$PG_DB" -tA -c "$*" || fail "psql: $*"
	else
		sqlite3 "$T/ca/registry.db" "$@" || fail "sqlite3: $*"
	fi
}

# store_sound: SQLite's integrity_check passes; on PostgreSQL, whose server
# keeps its own tables whole, the store answers.
store_sound() {
	if [ -n "${PG_DB:-}" ]; then # none yet (killed while it was made), or answering
		[ "$(db "select count(*) from pg_tables where tablename = 'cert'")" -eq 0 ] ||
			db "select count(*) from cert" >/dev/null
	else
		[ "$(db "pragma integrity_check")" = ok ]
	fi
}

# store_reset: the test's store gone, to be made again by the next keyrite.
store_reset() {
	if [ -n "${PG_DB:-}" ]; then
		psql_on postgres -c "DROP DATABASE $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" ||
			fail "cannot make $PG_DB again"
	else
		rm -f "$T"/ca/registry.db*
	fi
}

# points SQLITE PG: the kill points of a crash test for the test's store:
# SQLite's are its file's writes and syncs, PostgreSQL's the statements
# sent (crashat's send).
points() { if [ -n "${PG_DB:-}" ]; then echo "$2"; else echo "$1"; fi; }

# store_dump: every row of the store, as SQL text.
store_dump() {
	if [ -n "${PG_DB:-}" ]; then
		pg_dump -h "$KR_PG_HOST" -p "$KR_PG_PORT" -U keyrite "$PG_DB" || fail "pg_dump $PG_DB"
	else
		db .dump
	fi
}

# sql_hex COLUMN: the SQL of COLUMN's octets in upper-case hexadecimal.
sql_hex() { if [ -n "${PG_DB:-}" ]; then echo "upper(encode($1, 'hex'))"; else echo "hex($1)"; fi; }

# A count from the store while keyrite may still be making it: 0 until the
# store (or its table) exists, or while it is locked.
db_poll() {
	if [ -n "${PG_DB:-}" ]; then
		psql_on "$PG_DB" -tA -c "$1" 2>/dev/null || echo 0
	else
		sqlite3 "$T/ca/registry.db" "$1" 2>/dev/null || echo 0
	fi
}

# Every certificate in DIR verifies with the chain (OpenSSL and GnuTLS).
verify_all() {
	local n=0
	for c in "$1"/*.pem; do
		[ "$(basename "$c")" = chain.pem ] && continue
		openssl verify -x509_strict -CAfile "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
			"$c" >"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "openssl verify refuses $c"; }
		cat "$c" "$T/ca/subca-devices.pem" "$T/ca/root.pem" >"$T/chain-check.pem"
		has "Chain verification output: Verified" certtool --verify-chain --infile "$T/chain-check.pem"
		n=$((n + 1))
	done
	echo "$n"
}

# dnssec_keys TYPE: the zone's KSK and ZSK on the devices token.
dnssec_keys() {
	for k in ksk zsk; do
		kr hsm keygen "pkcs11:token=keyrite-devices;object=iotregistry-$k" --type "$1" \
			--pin-file "$T/pin" >/dev/null
	done
}

# named_start ZONEFILE [ZONE=FILE...]: BIND's named serving iotregistry.ca
# from a copy of ZONEFILE (and each further ZONE from a copy of its FILE) on
# 127.0.0.1 and a free port ($PORT), taking dynamic updates signed with the
# TSIG key in $T/named/update.key, its queries logged to
# $T/named/query.log; ready when dig gets the SOA over UDP and over TCP.
named_start() {
	local try d=$T/named extra="" z
	mkdir -p "$d"
	cp "$1" "$d/iotregistry.ca.zone"
	shift
	for z in "$@"; do
		cp "${z#*=}" "$d/${z%%=*}.zone"
		extra+="zone \"${z%%=*}\" { type primary; file \"$d/${z%%=*}.zone\"; };"$'\n'
	done
	tsig-keygen -a hmac-sha256 keyrite-update >"$d/update.key"
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$(shuf -i 20000-60000 -n 1)
		cat >"$d/named.conf" <<EOC
include "$d/update.key";
options {
	directory "$d"; pid-file "$d/named.pid";
	listen-on port $PORT { 127.0.0.1; }; listen-on-v6 { none; };
	recursion no; dnssec-validation no; notify no;
};
logging {
	channel queries { file "$d/query.log"; print-time no; }; category queries { queries; };
	channel main { file "$d/named.log"; severity info; }; category default { main; };
};
zone "iotregistry.ca" {
	type primary; file "$d/iotregistry.ca.zone"; allow-update { key keyrite-update; };
};
$extra
EOC
		rm -f "$d/named.pid"
		named -c "$d/named.conf" -u root -f >>"$d/named.out" 2>&1 &
		# answered on UDP and on TCP: named serves UDP alone when only
		# the TCP port is taken, and nsupdate sends large updates by TCP
		for _ in $(seq 50); do
			dig +norec +time=1 +tries=1 -p "$PORT" @127.0.0.1 SOA iotregistry.ca 2>/dev/null |
				grep -q 'status: NOERROR' &&
				dig +tcp +norec +time=1 +tries=1 -p "$PORT" @127.0.0.1 SOA iotregistry.ca 2>/dev/null |
				grep -q 'status: NOERROR' && return
			sleep 0.1
		done
		named_stop # the port was taken, or it is slow: another port
	done
	cat "$d/named.log" "$d/named.out" >&2
	fail "named did not start"
}

named_stop() {
	local pid
	pid=$(cat "$T/named/named.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
