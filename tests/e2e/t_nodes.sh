# Several signing nodes on one PostgreSQL store (keyrite-ca(5) NODES,
# docs/scaling.md): each node a keyrite process of its own, with its own
# SoftHSM token onto which the restore ceremony put the devices CA key from
# three custodians' pages; the database restarted and connections cut
# under a batch. These are PostgreSQL's tests: a run on SQLite lists none
# of them, and make check runs them in its e2e-pg pass.

# shellcheck source=backup_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup_lib.sh"
# shellcheck source=registry_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/registry_lib.sh"
# shellcheck source=serve_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

# nodes_setup N: the test CA (ca_setup), its devices key backed up 3 of 5,
# and nodes 2 to N each a token directory of its own ($T/nI) holding the
# key restored from pages 1, 3 and 5 (node 1 has the CA's own token).
nodes_setup() {
	local n=$1 i p
	backup_setup
	# the devices key alone: the root's stays on the CA's token
	sed -i -e 's/^keys *=.*/keys = devices_key/' -e '/^\[root_key\]/,/^$/d' "$T/backup.cnf" "$T/restore.cnf"
	run_backup "$T/backup.cnf"
	for i in $(seq 2 "$n"); do
		mkdir -p "$T/n$i/tokens"
		printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
			"$T/n$i" >"$T/n$i/softhsm2.conf"
		SOFTHSM2_CONF=$T/n$i/softhsm2.conf init_token keyrite-devices
		cp "$T/ca/backup-ceremony.txt" "$T/ca/devices-2026.backup" "$T/ca/backup-2026.verifier" \
			"$T/ca/subca-devices.pem" "$T/n$i/"
		on_tty env SOFTHSM2_CONF="$T/n$i/softhsm2.conf" \
			"$KEYRITE" ceremony run --dir "$T/n$i" --pin-file "$T/pin" "$T/restore.cnf"
		for p in 1 3 5; do type_share "$T/pages/$p"; done
		[ "$(tty_rc)" -eq 0 ] || { screen | grep -v "^$" | tail -8 >&2; fail "node $i: the restore failed"; }
		tmx kill-server
	done
}

# node_confs N: $T/ca/nI.cnf, the CA's configuration as it is now with
# node = I, for nodes 1 to N.
node_confs() {
	local i
	for i in $(seq "$1"); do
		sed "s/^store *=.*/&\nnode = $i/" "$T/ca/keyrite.cnf" >"$T/ca/n$i.cnf"
	done
}

# on_node I CMD...: CMD (a test helper, kri or krr) as node I: its token
# directory and its configuration.
on_node() {
	local i=$1 conf=$T/softhsm2.conf
	shift
	[ "$i" -eq 1 ] || conf=$T/n$i/softhsm2.conf
	SOFTHSM2_CONF=$conf CNF=$T/ca/n$i.cnf "$@"
}

# wait_all PID...: each exits 0 (else the nodes' outputs are shown).
wait_all() {
	local p rc
	for p in "$@"; do
		rc=0
		wait "$p" || rc=$?
		[ $rc -eq 0 ] || { tail -n 3 "$T"/*.out "$T"/*.err >&2; fail "a node exited $rc"; }
	done
}

# one_each: every certificate's device has one, and no serial or profile
# id is there twice; each device's certificate has its profile id.
one_each() {
	krc --json >"$T/all.json"
	[ -z "$(grep -o '"serial":"[0-9A-F]*"' "$T/all.json" | sort | uniq -d)" ] || fail "a serial twice"
	[ -z "$(grep -o '"device":"[0-9]*"' "$T/all.json" | sort | uniq -d)" ] || fail "a device certified twice"
	[ -z "$(grep -o '"profile_id":[0-9]*' "$T/all.json" | sort | uniq -d)" ] || fail "a profile id twice"
	[ "$(grep -c '"device":"[0-9]*".*"profile_id":[0-9]' "$T/all.json")" -eq "$(grep -c '"device":"[0-9]' "$T/all.json")" ] ||
		fail "a device's certificate without a profile id"
}

# node_serials I: how many certificates carry node I's number (keyrite-ca(5)
# node: the serial's first octets 0x40 | I >> 8, I & 0xff).
node_serials() { grep -c "\"serial\":\"40$(printf %02X "$1")" "$T/all.json" || true; }

if [ "${KR_E2E_STORE:-sqlite}" = postgresql ]; then

# Two nodes split a manifest; then three are each given the whole of
# another at once: every request issued once, by one node, its serial
# naming that node; no serial twice; openssl verifies each node's
# certificates; audit verify passes across the nodes.
test_nodes_split_and_racing_manifests_issue_each_request_once() {
	nodes_setup 3
	node_confs 3
	local m=400 i pids=()
	mkcsr --manifest $m --start 5000000000000001 >"$T/m.csv"
	head -1 "$T/m.csv" | tee "$T/m1.csv" >"$T/m2.csv"
	awk 'NR > 1 && NR % 2 == 0' "$T/m.csv" >>"$T/m1.csv"
	awk 'NR > 1 && NR % 2 == 1' "$T/m.csv" >>"$T/m2.csv"
	for i in 1 2; do
		mkdir -p "$T/c$i"
		on_node $i kri device --out "$T/c$i" "$T/m$i.csv" >"$T/c$i.out" 2>&1 &
		pids+=($!)
	done
	wait_all "${pids[@]}"
	one_each
	[ "$(ncerts)" -eq $m ] || fail "not $m certificates"
	for i in 1 2; do
		[ "$(node_serials $i)" -eq $((m / 2)) ] || fail "node $i's serials: $(node_serials $i)"
		openssl verify -CAfile "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
			"$(ls "$T/c$i"/*.pem | grep -v chain.pem | head -1)" >/dev/null || fail "node $i: openssl verify"
	done

	mkcsr --manifest $m --start 6000000000000001 >"$T/r.csv"
	pids=()
	for i in 1 2 3; do
		mkdir -p "$T/d$i"
		on_node $i kri device --out "$T/d$i" --json "$T/r.csv" >"$T/d$i.json" 2>"$T/d$i.err" &
		pids+=($!)
	done
	local rc
	for i in 0 1 2; do
		rc=0
		wait "${pids[i]}" || rc=$?
		# keyrite(1): 1 some requests refused, 9 all of them
		[ $rc -eq 0 ] || [ $rc -eq 1 ] || [ $rc -eq 9 ] || { cat "$T/d$((i + 1)).err" >&2; fail "node $((i + 1)) exited $rc"; }
	done
	# what a node refused, another node was issuing at that moment
	! grep -h '"status":"rejected"' "$T"/d?.json | grep -v "being issued by node [123] (batch" ||
		fail "a refusal of another kind"
	one_each
	[ "$(ncerts)" -eq $((2 * m)) ] || fail "not $((2 * m)) certificates"
	[ "$(cat "$T"/d?.json | grep -c '"status":"issued"')" -eq $m ] || fail "not $m issued in all"
	for i in 1 2 3; do
		[ "$(grep -c '"status":"issued"' "$T/d$i.json")" -eq "$(($(node_serials $i) - (i < 3 ? m / 2 : 0)))" ] ||
			fail "node $i's count and serials differ"
	done
	# run again, each node has every certificate, issued by whichever node
	for i in 1 2 3; do
		on_node $i kri device --out "$T/d$i" --json "$T/r.csv" >"$T/e$i.json" 2>"$T/e$i.err" ||
			{ cat "$T/e$i.err" >&2; fail "node $i: the second run failed"; }
		[ "$(grep -c '"status":"already-issued"' "$T/e$i.json")" -eq $m ] || fail "node $i: not $m already issued"
		[ "$(ls "$T/d$i"/*.pem | grep -vc chain.pem)" -eq $m ] || fail "node $i: not $m files"
	done
	[ "$(ncerts)" -eq $((2 * m)) ] || fail "the second runs issued more"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# keyrite-ca(5) NODES: a node killed mid-batch leaves its reservations;
# another node refuses those requests (naming the node), never signs them
# again, and retires nothing of them; the killed node's next run retires
# them and completes, and the other node then finds them issued.
test_nodes_killed_node_rows_wait_for_its_own_next_run() {
	ca_setup
	node_confs 2
	local m=40 sends args2 args1 rc
	mkcsr --manifest $m --start 9300000000000001 >"$T/m.csv"
	args2=(issue --config "$T/ca/n2.cnf" --ca devices --profile device --pin-file "$T/pin")
	args1=(issue --config "$T/ca/n1.cnf" --ca devices --profile device --pin-file "$T/pin" --json)
	mkdir -p "$T/probe" "$T/c1" "$T/c2"
	KR_CRASH_COUNT=$T/count LD_PRELOAD=$CRASHAT kr "${args2[@]}" --out "$T/probe" "$T/m.csv" >/dev/null 2>&1 ||
		fail "the probe run"
	sends=$(awk '$1 == "send" {print $2}' "$T/count")
	store_reset
	# node 2 killed with its chunk reserved and signed, not recorded: the
	# latest send that leaves that (from the end of a probe run back)
	local at
	for at in $(seq $((sends - 1)) -1 1); do
		killed_at "send:$at" "${args2[@]}" --out "$T/c2" "$T/m.csv"
		[ "$(db "select count(*) from cert where status = 'pending' and node = 2")" -eq $m ] && break
		store_reset
		rm -rf "$T/c2" && mkdir "$T/c2"
	done
	[ "$(db "select count(*) from cert where status = 'pending' and node = 2")" -eq $m ] ||
		fail "no kill left node 2's $m reservations"
	[ "$(ls "$T/c2" | grep -vc chain.pem)" -eq 0 ] || fail "node 2 wrote files it did not record"
	rc=0
	kr "${args1[@]}" --out "$T/c1" "$T/m.csv" >"$T/one.json" 2>/dev/null || rc=$?
	[ $rc -eq 9 ] || fail "node 1 exited $rc, not 9 (every request refused)"
	[ "$(grep -c '"status":"rejected".*being issued by node 2 (batch' "$T/one.json")" -eq $m ] ||
		{ head -3 "$T/one.json" >&2; fail "node 1 did not refuse them naming node 2"; }
	[ "$(db "select count(*) from cert where status = 'pending' and node = 2")" -eq $m ] ||
		fail "node 1 touched node 2's reservations"
	[ "$(ncerts)" -eq 0 ] || fail "a certificate was recorded"
	kr "${args2[@]}" --out "$T/c2" "$T/m.csv" >/dev/null 2>&1 || fail "node 2's next run"
	[ "$(db "select count(*) from cert where status = 'abandoned' and node = 2")" -eq $m ] ||
		fail "node 2 did not retire its killed run's rows"
	kr "${args1[@]}" --out "$T/c1" "$T/m.csv" >"$T/two.json" 2>/dev/null || fail "node 1's second run"
	[ "$(grep -c '"status":"already-issued"' "$T/two.json")" -eq $m ] || fail "node 1: not $m already issued"
	one_each
	[ "$(ncerts)" -eq $m ] || fail "not $m certificates"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# Three gaining ASPs, on three nodes at once, each with the owner's codes
# for the same 1000 meters: each meter moves once, to one of them; the
# others are told why; audit verify passes.
test_nodes_racing_transfers_of_1000_devices_each_moves_once() {
	nodes_setup 3
	local n=1000 i pids=() done=0
	registry_fill $n
	more_accounts
	sed -i 's/^accounts *=.*/&, FourthServ/' "$T/ca/keyrite.cnf"
	printf '\n[account_FourthServ]\nkind = asp\n' >>"$T/ca/keyrite.cnf"
	node_confs 3
	codes_for Ottawa "$T/codes.csv" $(tail -n +2 "$T/ottawa.csv" | cut -d, -f1)
	local asps=(CarParkServ ThirdServ FourthServ)
	for i in 1 2 3; do
		on_node $i krr transfer request --as "${asps[i - 1]}" "$T/codes.csv" >"$T/t$i.out" 2>&1 &
		pids+=($!)
	done
	for i in 0 1 2; do wait "${pids[i]}" || true; done
	for i in 1 2 3; do
		local d
		d=$(sed -n 's/^registry transfer request: \([0-9]*\) done.*/\1/p' "$T/t$i.out")
		[ -n "$d" ] || { cat "$T/t$i.out" >&2; fail "node $i gave no summary"; }
		done=$((done + d))
		[ "$(reg_list operator | grep -c "\"asp\":\"${asps[i - 1]}\"")" -eq "$d" ] ||
			fail "node $i: ${asps[i - 1]} does not hold the $d it moved"
	done
	[ $done -eq $n ] || fail "$done transfers, not $n"
	[ "$(audit_list --kind registry | grep -c 'op=transfer-approve')" -eq $n ] || fail "not $n approvals"
	[ -z "$(audit_list --kind registry | grep 'op=transfer-approve' | grep -o 'device=[0-9]*' | sort | uniq -d)" ] ||
		fail "a device transferred twice"
	grep -q "the device has no auth code (used" "$T"/t?.out || fail "no loser was told why"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# The database stopped (and started again) under a batch: the batch stops
# with one message naming the database; run again, it completes: every
# request issued once, no serial twice, the audit log whole.
test_nodes_database_restarted_mid_batch_then_a_run_completes() {
	ca_setup
	local m=3000 rc=0
	# a server of its own, to stop (its directory one the postgres user
	# may enter; a global, for the trap)
	OWN_PG=$(mktemp -d -p /tmp)
	chmod 755 "$OWN_PG"
	trap '"$REPO/tests/e2e/pg.sh" stop "$OWN_PG/pg" 2>/dev/null || true; rm -rf "$OWN_PG"; teardown' EXIT
	local host port
	read -r host port < <("$REPO/tests/e2e/pg.sh" start "$OWN_PG/pg") || fail "no server"
	sed -i "s|^store *=.*|store = postgresql:host=$host port=$port user=keyrite dbname=postgres|" \
		"$T/ca/keyrite.cnf"
	mkcsr --manifest $m --start 7000000000000001 >"$T/m.csv"
	kri device --out "$T/certs" "$T/m.csv" >"$T/one.out" 2>"$T/one.err" &
	local pid=$! i
	for i in $(seq 300); do
		[ "$(psql -qtAX -h "$host" -p "$port" -U keyrite -d postgres \
			-c "select count(*) from cert where status = 'valid'" 2>/dev/null || echo 0)" -ge 200 ] && break
		sleep 0.1
	done
	"$REPO/tests/e2e/pg.sh" stop "$OWN_PG/pg"
	wait $pid || rc=$?
	[ $rc -ne 0 ] || fail "the batch ended before the server stopped"
	# the batch's summary of what it did, and one message (the other lines
	# are the test shell's)
	grep "^keyrite: " "$T/one.err" | grep -v "^keyrite: [0-9]* issued, " >"$T/why" || true
	[ "$(wc -l <"$T/why")" -eq 1 ] || { cat "$T/one.err" >&2; fail "not one message"; }
	grep -q "^keyrite: postgresql://keyrite@$host:$port/postgres: " "$T/why" ||
		{ cat "$T/one.err" >&2; fail "the message does not name the database"; }
	"$REPO/tests/e2e/pg.sh" again "$OWN_PG/pg"
	kri device --out "$T/certs" --json "$T/m.csv" >"$T/two.json" 2>"$T/two.err" ||
		{ cat "$T/two.err" >&2; fail "the second run failed"; }
	one_each
	[ "$(ncerts)" -eq $m ] || fail "not $m certificates"
	[ "$(ls "$T"/certs/*.pem | grep -vc chain.pem)" -eq $m ] || fail "not $m files"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# The connection cut (crashat's KR_CUT_AT) at statements of a batch,
# among them each one after the HSM's signatures: one message, exit 7 (keyrite(1) EXIT STATUS);
# run again, each request issued once, its reserved serial finished or
# retired, never two serials for one request.
test_nodes_connection_cut_then_a_run_completes() {
	ca_setup
	local m=20 sends at rc cut=0
	mkcsr --manifest $m --start 8000000000000001 >"$T/m.csv"
	mkdir -p "$T/probe"
	KR_CRASH_COUNT=$T/count LD_PRELOAD=$CRASHAT kri device --out "$T/probe" "$T/m.csv" >/dev/null 2>&1 ||
		fail "the probe run failed"
	sends=$(awk '$1 == "send" {print $2}' "$T/count")
	store_reset
	# a few points early, then every other send of the batch's last 44
	# (the signed chunk recorded, the audit entries, the commit, the
	# checkpoint): all but the last, the connection's goodbye, stop it
	local points=(2 $((sends / 3)) $((sends / 2)) $(seq $((sends - 44)) 2 $((sends - 1))))
	for at in "${points[@]}"; do
		rm -rf "$T/certs"
		mkdir -p "$T/certs"
		rc=0
		KR_CUT_AT=send:$at LD_PRELOAD=$CRASHAT kri device --out "$T/certs" "$T/m.csv" >/dev/null \
			2>"$T/cut.err" || rc=$?
		echo "cut at send $at of $sends: exit $rc" >&2
		if [ $rc -ne 0 ]; then
			cut=$((cut + 1))
			[ $rc -eq 7 ] || { cat "$T/cut.err" >&2; fail "cut at send $at: exit $rc"; }
			[ "$(grep -vc "^keyrite: [0-9]* issued, " "$T/cut.err")" -eq 1 ] ||
				{ cat "$T/cut.err" >&2; fail "cut at $at: not one message"; }
		fi
		kri device --out "$T/certs" "$T/m.csv" >/dev/null 2>"$T/again.err" ||
			{ cat "$T/again.err" >&2; fail "after the cut at send $at the run failed"; }
		one_each
		[ "$(ncerts)" -eq $m ] || fail "cut at send $at: not $m certificates"
		has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
		store_reset
	done
	[ $cut -eq ${#points[@]} ] || fail "only $cut of ${#points[@]} cuts stopped the batch"
}


# keyrite-ca(5) NODES: a chain per node, each entry its node's own next
# number, each chain's head signed by its node's checkpoints; audit verify
# checks every chain and the state against all of them, and finds an entry
# deleted from a chain, moved to another, a chain's tail left unsigned and a
# checkpoint that is not its chain's head.
test_nodes_audit_chain_per_node_tampering_detected() {
	ca_setup
	node_confs 2
	local i run=0
	for i in 1 2 1 2; do # four batches, the nodes in turn
		run=$((run + 1))
		mkcsr --manifest 3 --start "900000000000${run}001" >"$T/m.csv"
		CNF=$T/ca/n$i.cnf kri device "$T/m.csv" 2>/dev/null
	done
	has "entries in 2 chain(s), 4 checkpoint(s) (0 by firmware signers), 0 problem(s)" \
		kr audit verify --config "$T/ca/keyrite.cnf"
	# each chain numbered 1, 2, ... on its own, in the store's one order
	for i in 1 2; do
		[ "$(db "select string_agg(node_seq::text, ',' order by seq) from audit where node = $i")" = \
			"$(db "select string_agg(g::text, ',') from generate_series(1, (select count(*) from audit where node = $i)) g")" ] ||
			fail "node $i's numbers are not its own 1, 2, ..."
	done
	psql_on postgres -c "CREATE DATABASE ${PG_DB}_clean TEMPLATE $PG_DB"
	restore_db() {
		psql_on postgres -c "DROP DATABASE $PG_DB WITH (FORCE)"
		psql_on postgres -c "CREATE DATABASE $PG_DB TEMPLATE ${PG_DB}_clean"
	}
	tampered() { # WANT: audit verify fails, its report holds WANT
		expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
		grep -qF -- "$1" "$T/expect.out" || { cat "$T/expect.out"; fail "audit verify does not say: $1"; }
		restore_db
	}
	local mid last2 cp2
	mid=$(db "select seq from audit where node = 2 order by seq limit 1 offset 1")
	last2=$(db "select max(seq) from audit where node = 2")
	# an entry deleted from node 2's chain (a revocation's, say)
	db "delete from audit where seq = $mid"
	tampered "does not follow the entry before it in node 2's chain (chain broken)"
	# an entry moved from node 2's chain to node 1's
	db "update audit set node = 1 where seq = $mid"
	tampered "entry $mid (issue): its content does not match its hash (edited)"
	# node 2's checkpoints gone: its tail is signed by nobody
	db "delete from checkpoint where node = 2"
	tampered "node 2: its entries after entry 0, to entry $last2, come after its last checkpoint"
	# a checkpoint of node 2 said to be node 1's
	cp2=$(db "select max(seq) from checkpoint where node = 2")
	db "update checkpoint set node = 1 where seq = $cp2"
	tampered "checkpoint at entry $cp2: the chain's head there is not the one the CA signed"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	psql_on postgres -c "DROP DATABASE ${PG_DB}_clean"
}

# node_serve I: keyrite serve as node I (its configuration, a free port:
# PORTI), its log in $T/serveI.log; its pid in SERVES.
node_serve() {
	local i=$1 try port
	for try in 1 2 3 4 5 6 7 8; do
		port=$(shuf -i 20000-60000 -n 1)
		sed -i "/^\[serve\]/,/^\[/ s/^port *= .*/port        = $port/" "$T/ca/n$i.cnf"
		"$KEYRITE" serve --config "$T/ca/n$i.cnf" --pin-file "$T/pin" >"$T/serve$i.out" 2>>"$T/serve$i.log" &
		local pid=$!
		for _ in $(seq 100); do
			if grep -q "serving on" "$T/serve$i.out" 2>/dev/null; then
				SERVES+=("$pid")
				printf -v "PORT$i" %s "$port"
				return
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		wait "$pid" 2>/dev/null || true
		grep -q 'Address already in use' "$T/serve$i.log" || break
	done
	cat "$T/serve$i.log" >&2
	fail "node $i: keyrite serve did not start"
}

# post_to PORT AS PATH JSON OUT: a POST as account AS to the service on
# PORT, its body into OUT (for calls made at once; serve_lib.sh's api
# keeps one body).
post_to() {
	local c=$T/clients/$2
	curl -sS --cacert "$T/ca/root.pem" --cert "$c.pem" --key "$c.key" \
		--resolve "api.iotregistry.ca:$1:127.0.0.1" -o "$5" -w '%{http_code}\n' -X POST \
		-H 'Content-Type: application/json' -H 'Keyrite-Request: 1' --data-binary "$4" \
		"https://api.iotregistry.ca:$1/api/v1/$3" >"$5.status" || fail "curl POST $3 as $2"
}

# activations JSON for the meters of IDS (their CSRs in $T/mno).
activations() {
	local id sep=""
	printf '{"devices":['
	for id in "$@"; do
		printf '%s{"device":"%s","csr":"%s"}' "$sep" "$id" "$(awk '{printf "%s\\n", $0}' "$T/mno/$id.csr")"
		sep=,
	done
	printf ']}'
}

# Two keyrite serve nodes on one store: the MNO activates half the meters
# through each at once; the gaining ASP asks both nodes at once to transfer
# all of them with the same codes: each meter is activated and transferred
# once, its certificate's serial naming the node that signed it, and
# audit verify passes.
test_nodes_two_services_one_store() {
	serve_setup 20
	SERVES=()
	trap 'for p in "${SERVES[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; teardown' EXIT
	node_confs 2
	node_serve 1
	node_serve 2
	local ids1=() ids2=() i
	for i in $(seq 1 10); do ids1+=($((1000000000000000 + i))); ids2+=($((1000000000000010 + i))); done
	post_to "$PORT1" Telus activate "$(activations "${ids1[@]}")" "$T/a1" &
	local a=$!
	post_to "$PORT2" Telus activate "$(activations "${ids2[@]}")" "$T/a2" &
	local b=$!
	wait $a && wait $b || fail "an activation call failed"
	for i in 1 2; do
		[ "$(cat "$T/a$i.status")" = 200 ] || { cat "$T/a$i" >&2; fail "node $i: activate HTTP $(cat "$T/a$i.status")"; }
		[ "$(grep -o '"result":"activated"' "$T/a$i" | wc -l)" -eq 10 ] || { cat "$T/a$i" >&2; fail "node $i: not 10 activated"; }
	done
	one_each
	[ "$(ncerts --status valid)" -ge 20 ] || fail "not 20 valid certificates"
	for i in 1 2; do
		[ "$(node_serials $i)" -eq 10 ] || fail "node $i signed $(node_serials $i), not 10"
	done
	# the owner's codes, then the same transfer asked of both nodes at once
	ksr authcode --as Ottawa $(seq 1000000000000001 1000000000000020) >"$T/codes.out" || fail "authcode"
	local req
	req=$(awk 'BEGIN { printf "{\"devices\":[" } $2 == "code" { printf "%s{\"device\":\"%s\",\"code\":\"%s\"}", (n++ ? "," : ""), $1, $4 } END { printf "]}" }' "$T/codes.out")
	post_to "$PORT1" CarParkServ transfer/request "$req" "$T/t1" &
	a=$!
	post_to "$PORT2" CarParkServ transfer/request "$req" "$T/t2" &
	b=$!
	wait $a && wait $b || fail "a transfer call failed"
	[ "$(cat "$T"/t? | grep -o '"result":"transferred"' | wc -l)" -eq 20 ] || { cat "$T"/t? >&2; fail "not 20 transfers in all"; }
	[ "$(audit_list --kind registry | grep -c 'op=transfer-approve')" -eq 20 ] || fail "not 20 approvals"
	[ -z "$(audit_list --kind registry | grep 'op=transfer-approve' | grep -o 'device=[0-9]*' | sort | uniq -d)" ] ||
		fail "a meter transferred twice"
	for p in "${SERVES[@]}"; do kill -TERM "$p"; wait "$p" || fail "a service exited $? after SIGTERM"; done
	SERVES=()
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# keyrite publish reads one snapshot and does not wait for the store's lock:
# while another node holds it, in the middle of revoking a meter, the zone
# is written at once, with that meter's record (the revocation is not
# committed), and the store says it was published.
test_nodes_publication_reads_a_snapshot_without_the_lock() {
	ca_setup
	mkcsr --manifest 50 --start 9100000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	mkfifo "$T/hold"
	# node "psql": the store's lock (db_pg.c's key), a revocation half made
	{ printf 'BEGIN;\nSELECT pg_advisory_xact_lock(1802660212);\n'
	  printf "UPDATE cert SET status = 'revoked', revoked_at = 1, reason = 1 WHERE device_id = '9100000000000001';\n"
	  printf '\\o %s/locked\nSELECT 1;\n' "$T"
	  cat "$T/hold"
	  printf 'ROLLBACK;\n'
	} | psql_on "$PG_DB" >/dev/null &
	local holder=$! i
	for i in $(seq 100); do [ -s "$T/locked" ] && break; sleep 0.1; done
	[ -s "$T/locked" ] || fail "psql did not take the lock"
	local start=$SECONDS
	timeout 20 "$KEYRITE" publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/pub" \
		>/dev/null 2>"$T/pub.err" || { cat "$T/pub.err" >&2; fail "publish failed or waited"; }
	[ $((SECONDS - start)) -lt 10 ] || fail "publish waited for the lock"
	echo >"$T/hold"
	wait $holder || true
	[ "$(awk '$1 ~ /_device\.iotregistry\.ca\.$/ && $4 == "TLSA"' "$T/pub/iotregistry.ca.zone" | wc -l)" -eq 50 ] ||
		fail "not the 50 meters' records of the committed store"
	[ "$(db "select count(distinct owner) from published where zone = 'iotregistry.ca' and type = 'TLSA'")" -ge 50 ] ||
		fail "the publication was not recorded"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# Two nodes publish one zone at the same moment, again and again: each run
# ends with its zone written, or with one message (PostgreSQL refusing the
# second to record it, exit 7); the record is never half of one and half of
# the other: a publication after them finds no change against it.
test_nodes_publications_of_one_zone_at_once() {
	ca_setup
	node_confs 2
	mkcsr --manifest 300 --start 9200000000000001 >"$T/m.csv"
	kri device "$T/m.csv" 2>/dev/null
	local round i rc refused=0
	for round in 1 2 3 4 5 6; do
		local pids=()
		for i in 1 2; do
			rm -rf "$T/p$i"
			"$KEYRITE" publish --config "$T/ca/n$i.cnf" --zone iotregistry.ca --out "$T/p$i" \
				>/dev/null 2>"$T/p$i.err" &
			pids+=($!)
		done
		for i in 1 2; do
			rc=0
			wait "${pids[i - 1]}" || rc=$?
			[ $rc -eq 0 ] && continue
			[ $rc -eq 7 ] && [ "$(wc -l <"$T/p$i.err")" -eq 1 ] &&
				grep -q "could not serialize access" "$T/p$i.err" ||
				{ cat "$T/p$i.err" >&2; fail "round $round, node $i: exit $rc"; }
			refused=$((refused + 1))
		done
		[ "$(awk '$1 ~ /_device\.iotregistry\.ca\.$/ && $4 == "TLSA"' "$T/p1/iotregistry.ca.zone" | wc -l)" -eq 300 ] ||
			fail "round $round: node 1's zone lacks the meters' records"
	done
	echo "$refused of 12 publications refused as concurrent" >&2
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/last" \
		--changes "$T/changes.txt" >/dev/null || fail "the last publication"
	! grep -q '^update' "$T/changes.txt" || { head "$T/changes.txt" >&2; fail "the record was not whole"; }
}

# A store string keyrite-ca(5) refuses: a password in it, one libpq cannot
# read, a server that does not answer, an empty database for a command
# that only reads: one message each, nothing made.
test_nodes_store_strings_refused() {
	ca_setup
	local c=$T/ca/keyrite.cnf base=$PG_STORE
	sed -i "s|^store *=.*|store = $base password=secret|" "$c"
	expect 3 "the connection string holds a password; keep it in libpq's passfile" kr certs --config "$c"
	sed -i "s|^store *=.*|store = postgresql://keyrite:secret@$KR_PG_HOST:$KR_PG_PORT/$PG_DB|" "$c"
	expect 3 "holds a password" kr certs --config "$c"
	sed -i "s|^store *=.*|store = postgresql:host=$KR_PG_HOST port|" "$c"
	expect 3 "store: not a PostgreSQL connection string: missing \"=\" after \"port\"" kr certs --config "$c"
	sed -i "s|^store *=.*|store = postgresql:host=127.0.0.1 port=1 user=keyrite dbname=$PG_DB|" "$c"
	expect 7 "postgresql://keyrite@127.0.0.1:1/$PG_DB: cannot connect: " kr certs --config "$c"
	# an empty database: a command that reads is not the one to make a store
	sed -i "s|^store *=.*|store = $base|" "$c"
	expect 3 "/$PG_DB: no keyrite store here (keyrite issue makes one)" kr certs --config "$c"
	[ "$(db "select count(*) from pg_tables where schemaname = 'public'")" -eq 0 ] || fail "tables were made"
}

# audit verify's integrity check on PostgreSQL: every table answers.
test_nodes_audit_verify_finds_a_dropped_table() {
	ca_setup
	"$MKCSR" --manifest 3 >"$T/m.csv"
	kri device "$T/m.csv" >/dev/null
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null
	db "drop table cmp_seen"
	expect 8 "fails verification (1 problem(s))" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -qF "/$PG_DB: damaged: table cmp_seen: " "$T/expect.out" ||
		{ cat "$T/expect.out"; fail "audit verify does not name the table"; }
}

# Format 9 on PostgreSQL: profile ids from the database's sequence. A
# format 8 store is migrated (its ids go on from its counter), a migration
# that fails leaves it as it was, and a newer format is refused untouched.
test_nodes_store_format_8_migrated_or_left_whole_and_10_refused() {
	ca_setup
	ids() { krc --status valid --json | sed -n 's/.*"profile_id":\([0-9]*\).*/\1/p' | paste -sd,; }
	mkcsr --manifest 3 --start 8300000000000001 >"$T/m1.csv"
	kri device "$T/m1.csv" 2>/dev/null
	[ "$(ids)" = "11,12,13" ] || fail "profile ids $(ids), want 11,12,13"
	# back to format 8: the counter, no sequence
	db "DROP SEQUENCE profile_id; INSERT INTO counter VALUES ('profile_id', 13);
	    UPDATE keyrite_meta SET format = 8"
	# a migration that fails (its sequence's name taken) changes nothing
	db "CREATE TABLE profile_id (x int)"
	mkcsr --manifest 2 --start 8300000000000004 >"$T/m2.csv"
	expect 7 "migrating the store from format 8 to 9: " kri device "$T/m2.csv"
	[ "$(db "SELECT format FROM keyrite_meta")/$(db "SELECT value FROM counter")/$(db "SELECT count(*) FROM cert")" = "8/13/3" ] ||
		fail "a failed migration left the store changed"
	db "DROP TABLE profile_id"
	kri device "$T/m2.csv" 2>/dev/null
	[ "$(db "SELECT format FROM keyrite_meta")" -eq 9 ] || fail "not migrated"
	[ "$(ids)" = "11,12,13,14,15" ] || fail "profile ids $(ids) after the migration, want 11,...,15"
	[ "$(db "SELECT count(*) FROM counter WHERE name = 'profile_id'")" -eq 0 ] ||
		fail "the counter outlived its sequence"
	kr audit verify --config "$T/ca/keyrite.cnf" >/dev/null
	db "UPDATE keyrite_meta SET format = 10"
	expect 3 "store format 10, and this keyrite reads formats 6 to 9 on PostgreSQL" \
		kri device "$T/m2.csv"
	[ "$(db "SELECT format FROM keyrite_meta")/$(db "SELECT count(*) FROM cert")" = "10/5" ] ||
		fail "format 10 touched"
}

fi
