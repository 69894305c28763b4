#!/bin/bash
# End-to-end tests: every test function runs in its own subshell with its own
# temporary directory and SoftHSM token directory. Prints "N passed, M failed".
# The test files are $E2E_DIR/t_*.sh (default: beside this script).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${KEYRITE:?set KEYRITE to the keyrite binary}"
export KEYRITE REPO=$(cd "$here/../.." && pwd)
filter=${1:-}

pass=0 fail=0 failed=()
for file in "${E2E_DIR:-$here}"/t_*.sh; do
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
		log=$(mktemp)
		start=$(date +%s)
		# inherit_errexit: a command that fails inside \$(...) ends that
		# subshell too (bash otherwise turns errexit off there, and a
		# helper's failing check would be read as a result).
		if bash -c "set -eEuo pipefail; shopt -s inherit_errexit
			trap 'echo \"error at \$(basename \${BASH_SOURCE[0]:-?}):\$LINENO: \$BASH_COMMAND\" >&2' ERR
			source '$here/lib.sh'; source '$file'; setup; trap teardown EXIT; $t" >"$log" 2>&1; then
			pass=$((pass + 1)); echo "PASS $t ($(( $(date +%s) - start ))s)"
		else
			fail=$((fail + 1)); failed+=("$t"); echo "FAIL $t"; sed 's/^/    /' "$log" | tail -25
		fi
		rm -f "$log"
	done
done
echo
echo "e2e: $pass passed, $fail failed"
[ $fail -eq 0 ]
