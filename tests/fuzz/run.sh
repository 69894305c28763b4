#!/bin/bash
# tests/fuzz/run.sh BUILD SECONDS RUNS TARGET...: each fuzz target, one after
# the other, for SECONDS or RUNS executions (-1: no limit), whichever comes
# first. Its seed corpus (tests/fuzz/corpus/TARGET, regression inputs
# included) is replayed first; what the run finds new goes to
# BUILD/corpus/TARGET, a crash, leak or hang to BUILD/crashes/TARGET-*.
# Prints executions and crashes per target; exits 1 if any target failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 secs=$2 runs=$3
shift 3
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$here/../lsan.supp:print_suppressions=0
status=0
for t in "$@"; do
	work=$build/corpus/$t log=$build/fuzz_$t.log
	mkdir -p "$work" "$build/crashes"
	rm -f "$build/crashes/$t-"*
	"$build/fuzz_$t" -max_total_time="$secs" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$build/crashes/$t-" "$work" "$here/corpus/$t" \
		>"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
	crashes=$(find "$build/crashes" -name "$t-*" | wc -l)
	printf 'fuzz %-10s %10s executions, %s crash(es) (%s)\n' "$t" "${execs:-?}" "$crashes" "$log"
	if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ] || [ -z "$execs" ]; then
		tail -30 "$log"
		status=1
	fi
done
exit $status
