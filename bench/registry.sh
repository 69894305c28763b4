#!/bin/bash
# bench/registry.sh [N]: the registry's bulk commands on N devices (default
# 100000), beside the engine parts they are made of, in one run:
#   keyrite registry import, register, activate (from the MNO's manifest),
#   authcode, and a bulk transfer: transfer request (the code checked, the
#   approval, the old certificate revoked), activate under the gaining ASP
#   (the CSR on record re-certified), publish --changes;
#   the parts alone on a second store: keyrite issue of N, keyrite revoke of
#   N, publish --changes of the same size.
# Targets: import >= 100,000 devices/s; the transfer within 1.5x of its
# parts. BENCH_RSS_N=1000000 adds runs of import, register, authcode and
# transfer request on that many devices that report peak RSS (target < 64
# MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
source bench/lib.sh
sed -i 's/^\[zone_registry\]/&\ncert_records = no/' ca/keyrite.cnf

# timed NAME CMD...: runs CMD under /usr/bin/time, its report in NAME.time
timed() {
	local name=$1
	shift
	/usr/bin/time -v "$@" >"$name.out" 2>"$name.time" || { tail -n 5 "$name.out" "$name.time"; exit 1; }
}
C=(--config ca/keyrite.cnf --pin-file pin)

"$SRC/build/mkcsr" --manifest "$N" --start 1000000000000001 >relay.csv
{ echo "Device ID,Model,Version"; tail -n +2 relay.csv | cut -d, -f1-3; } >devices.csv

# the registry
timed import "$K" registry import "${C[@]}" --as Ottawa --mno Telus devices.csv
timed register "$K" registry register "${C[@]}" --as Ottawa --asp ParkoServ devices.csv
timed activate "$K" registry activate "${C[@]}" --as ParkoServ --csr relay.csv
"$K" publish --config ca/keyrite.cnf --zone iotregistry.ca --out dns >/dev/null
timed authcode "$K" registry authcode "${C[@]}" --as Ottawa devices.csv
{ echo device,code; awk '$2 == "code" {print $1 "," $4}' authcode.out; } >codes.csv
timed request "$K" registry transfer request "${C[@]}" --as CarParkServ codes.csv
timed reissue "$K" registry activate "${C[@]}" --as CarParkServ devices.csv
timed changes "$K" publish --config ca/keyrite.cnf --zone iotregistry.ca --out dns --changes changes.txt
grep -q "$N done" request.out && grep -q "$N done" reissue.out || { tail -n 2 request.out reissue.out; exit 1; }

# the parts alone, on a store of their own
mkdir parts
sed 's|^store *=.*|store = parts.db|' ca/keyrite.cnf >ca/parts.cnf
"$SRC/build/mkcsr" --manifest "$N" --start 3000000000000001 >parts/old.csv
"$SRC/build/mkcsr" --manifest "$N" --start 4000000000000001 >parts/new.csv
P=(--config ca/parts.cnf --pin-file pin)
"$K" issue "${P[@]}" --ca devices --profile device parts/old.csv >/dev/null 2>&1
"$K" publish --config ca/parts.cnf --zone iotregistry.ca --out parts/dns >/dev/null
"$K" certs --config ca/parts.cnf --status valid | awk '{print $1}' >parts/serials
timed p_issue "$K" issue "${P[@]}" --ca devices --profile device parts/new.csv
timed p_revoke xargs -n 20000 "$K" revoke "${P[@]}" --ca devices --reason affiliationChanged <parts/serials
timed p_changes "$K" publish --config ca/parts.cnf --zone iotregistry.ca --out parts/dns --changes parts/changes.txt

t() { seconds "$1.time"; }
transfer=$(awk -v a="$(t request)" -v b="$(t reissue)" -v c="$(t changes)" 'BEGIN { print a + b + c }')
parts=$(awk -v a="$(t p_issue)" -v b="$(t p_revoke)" -v c="$(t p_changes)" 'BEGIN { print a + b + c }')
echo
echo "registry of $N devices, ECDSA P-256 on SoftHSM, $(nproc) cores"
line() { printf "  %-46s %8.2f s %10s devices/s  %6s MiB\n" "$1" "$(t "$2")" "$(rate "$N" "$(t "$2")")" "$(rss_mib "$2.time")"; }
line "registry import" import
line "registry register" register
line "registry activate (MNO manifest)" activate
line "registry authcode" authcode
line "transfer: registry transfer request" request
line "transfer: registry activate (CSR on record)" reissue
line "transfer: publish --changes" changes
line "part: keyrite issue" p_issue
line "part: keyrite revoke" p_revoke
line "part: publish --changes" p_changes
awk -v i="$(rate "$N" "$(t import)")" -v x="$transfer" -v p="$parts" 'BEGIN {
	printf "  import:                 %d devices/s   (target >= 100000)\n", i
	printf "  transfer / its parts:   %.2f s / %.2f s = %.2fx   (target <= 1.5x)\n", x, p, x / p }'

if [ -n "${BENCH_RSS_N:-}" ]; then
	M=$BENCH_RSS_N
	sed 's|^store *=.*|store = big.db|' ca/keyrite.cnf >ca/big.cnf
	B=(--config ca/big.cnf --pin-file pin)
	awk -v m="$M" 'BEGIN { print "Device ID,Model,Version"; for (i = 1; i <= m; i++) printf "50000000%08d,SParkometer,1.1\n", i }' >big.csv
	timed big_import "$K" registry import "${B[@]}" --as Ottawa --mno Telus big.csv
	timed big_register "$K" registry register "${B[@]}" --as Ottawa --asp ParkoServ big.csv
	timed big_authcode "$K" registry authcode "${B[@]}" --as Ottawa big.csv
	{ echo device,code; awk '$2 == "code" {print $1 "," $4}' big_authcode.out; } >big-codes.csv
	rm big_authcode.out
	timed big_request "$K" registry transfer request "${B[@]}" --as CarParkServ big-codes.csv
	echo "  $M devices, peak RSS (target < 64 MiB):"
	for s in import register authcode request; do
		printf "    %-10s %8.1f s  %6s MiB\n" "$s" "$(t "big_$s")" "$(rss_mib "big_$s.time")"
	done
fi
