#!/bin/bash
# End-to-end tests: every test function runs in its own subshell with its own
# temporary directory and SoftHSM token directory. Prints "N passed, M failed".
# The test files are $E2E_DIR/t_*.sh (default: beside this script), or
# those KR_E2E_FILES names ("issue registry" for t_issue.sh, t_registry.sh).
#
# KR_E2E_STORE=postgresql runs them on PostgreSQL: one server for the run
# (tests/e2e/pg.sh), a database of its own for each test (lib.sh's
# ca_setup; lib.sh's db helper speaks to it with psql). A test about the
# SQLite file itself (its body names registry.db, sqlite3, a PRAGMA or
# SQLite's hex()) is listed as "SQLITE-ONLY", not run, not counted as
# passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${KEYRITE:?set KEYRITE to the keyrite binary}"
export KEYRITE REPO=$(cd "$here/../.." && pwd)
filter=${1:-}

files=()
if [ -n "${KR_E2E_FILES:-}" ]; then
	for f in $KR_E2E_FILES; do files+=("${E2E_DIR:-$here}/t_$f.sh"); done
else
	files=("${E2E_DIR:-$here}"/t_*.sh)
fi
sqlite_only=0
if [ "${KR_E2E_STORE:-sqlite}" = postgresql ]; then
	pgdir=$(mktemp -d)
	chmod 755 "$pgdir"
	read -r KR_PG_HOST KR_PG_PORT < <("$here/pg.sh" start "$pgdir/pg") || { echo "FAIL no PostgreSQL server"; exit 1; }
	export KR_PG_HOST KR_PG_PORT
	trap '"$here/pg.sh" stop "$pgdir/pg"; rm -rf "$pgdir"' EXIT
	echo "PostgreSQL on $KR_PG_HOST:$KR_PG_PORT"
fi

# run_test FILE TEST: the test in a shell of its own; its output into
# $results/TEST.log, its exit status into TEST.rc, its seconds into TEST.s.
run_test() {
	local start rc=0
	start=$(date +%s)
	# inherit_errexit: a command that fails inside \$(...) ends that
	# subshell too (bash otherwise turns errexit off there, and a
	# helper's failing check would be read as a result).
	bash -c "set -eEuo pipefail; shopt -s inherit_errexit
		trap 'echo \"error at \$(basename \${BASH_SOURCE[0]:-?}):\$LINENO: \$BASH_COMMAND\" >&2' ERR
		source '$here/lib.sh'; source '$1'; setup; trap teardown EXIT; $2" >"$results/$2.log" 2>&1 || rc=$?
	echo $(($(date +%s) - start)) >"$results/$2.s"
	echo $rc >"$results/$2.rc"
}

# report TEST: its line, and its log's tail if it failed.
report() {
	if [ "$(cat "$results/$1.rc")" -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $1 ($(cat "$results/$1.s")s)"
	else
		fail=$((fail + 1)); failed+=("$1"); echo "FAIL $1"; sed 's/^/    /' "$results/$1.log" | tail -25
	fi
}

# Tests run KR_E2E_JOBS at a time (default 2, the cores CI has): each has
# its own directory, token directory, database and ports, so they do not
# meet; results are reported as each ends.
jobs_max=${KR_E2E_JOBS:-2}
results=$(mktemp -d)
pass=0 fail=0 failed=() running=()
# reap: reports the tests that have ended, keeping the others running.
reap() {
	local t still=()
	for t in "${running[@]}"; do
		if [ -e "$results/$t.rc" ]; then report "$t"; else still+=("$t"); fi
	done
	running=("${still[@]}")
}
for file in "${files[@]}"; do
	# A file that does not load (a syntax error, a stray command that fails)
	# fails the run: its tests must not silently vanish from it.
	if ! listing=$(bash -c "set -eu; shopt -s inherit_errexit; source '$here/lib.sh'; source '$file'; declare -F" 2>&1); then
		fail=$((fail + 1)); failed+=("$(basename "$file")"); echo "FAIL $(basename "$file") does not load"
		sed 's/^/    /' <<<"$listing" | tail -5
		continue
	fi
	tests=$(awk '{print $3}' <<<"$listing" | grep '^test_' || true)
	for t in $tests; do
		[ -n "$filter" ] && [[ $t != *$filter* ]] && continue
		# the body read whole first: grep -q ending early would kill the
		# writer with SIGPIPE, and pipefail would read that as no match
		if [ "${KR_E2E_STORE:-sqlite}" = postgresql ] &&
			body=$(bash -c "source '$here/lib.sh'; source '$file'; declare -f $t") &&
			grep -qiE 'registry\.db|sqlite3|\.db\b|pragma|hex\(|(^|[^a-z_])restore ' <<<"$body"; then
			sqlite_only=$((sqlite_only + 1)); echo "SQLITE-ONLY $t"
			continue
		fi
		while [ ${#running[@]} -ge "$jobs_max" ]; do
			wait -n 2>/dev/null || true
			reap
		done
		run_test "$file" "$t" &
		running+=("$t")
	done
done
wait
reap
rm -rf "$results"
echo
echo "e2e${KR_E2E_STORE:+ on $KR_E2E_STORE}: $pass passed, $fail failed${KR_E2E_STORE:+, $sqlite_only SQLite-only}"
[ $fail -eq 0 ]
