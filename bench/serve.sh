#!/bin/bash
# bench/serve.sh [N] [CLIENTS]: keyrite serve under load on loopback (bounded:
# N enrollments, default 2000, and 10 s of JSON reads), CLIENTS concurrent
# clients (default 32):
#   - CMP p10cr enrollments (implicit confirmation) of N registered meters by
#     their MNO over kept-alive connections, then of N more over a new
#     mutual-TLS connection each;
#   - JSON reads (info and list pages) for 10 s;
# beside two references from the same run: keyrite issue of the same CSRs
# (the batch rate), and the library's floor (bench/cmpload.c floor: the
# same messages decoded, processed and encoded by OpenSSL's CMP server with
# an in-memory key, no store, on as many threads as cores). Prints requests/s,
# p50/p99 latency, the load generator's CPU, and the ratios to the targets
# (issue 16: CMP kept-alive >= 70% of the floor, p99 < 100 ms at 32 clients;
# JSON reads >= 5000/s). Run after make bench.
set -euo pipefail
N=${1:-2000}
C=${2:-32}
source bench/lib.sh
L=$SRC/build/cmpload MKCSR=$SRC/build/mkcsr
[ -x "$L" ] || { echo "bench/serve.sh: build/cmpload missing: make bench" >&2; exit 1; }
cores=$(nproc)

# the service's key and certificate, the accounts' client certificates
serve_accounts operator Ottawa Telus
# 2N meters imported and registered; their CSRs (mkcsr) as the MNO relays them
"$MKCSR" --manifest $((2 * N)) --start 1000000000000001 >relay.csv
{ echo "Device ID,Model,Version"; tail -n +2 relay.csv | cut -d, -f1-3; } >ottawa.csv
R=(--config ca/keyrite.cnf --pin-file pin)
"$K" registry import "${R[@]}" --as Ottawa --mno Telus ottawa.csv >/dev/null 2>&1
"$K" registry register "${R[@]}" --as Ottawa --asp ParkoServ ottawa.csv >/dev/null 2>&1
awk -v n="$N" 'NR == 1 || NR <= n + 1' relay.csv >kept.csv
awk -v n="$N" 'NR == 1 || NR > n + 1' relay.csv >fresh.csv

# reference 1: keyrite issue of the same CSRs, a second store
sed 's/^store *= .*/store = issue.db/' ca/keyrite.cnf >ca/issue.cnf
mkdir -p out
/usr/bin/time -v "$K" issue --config ca/issue.cnf --ca devices --profile device --out out \
	--pin-file pin kept.csv >/dev/null 2>issue.time
issue_s=$(seconds issue.time)
# reference 2: the library's floor, the same messages, as many threads as cores
floor=$("$L" floor clients/Telus.pem clients/Telus.key ca/root.pem ca/subca-devices.pem kept.csv "$cores")

port=$(shuf -i 20000-60000 -n 1)
sed -i -e "/^\[serve\]/,/^\[/ s/^port *= .*/port        = $port/" -e "s/^threads *= .*/threads     = ${BENCH_THREADS:-$C}/" \
	-e "s/^rate *= .*/rate        = 1000000/" -e "s/^burst *= .*/burst       = 1000000/" ca/keyrite.cnf
${BENCH_PERF:+perf record --call-graph dwarf,16384 -F 499 -o perf.data} "$K" serve --config ca/keyrite.cnf --pin-file pin >serve.out 2>serve.log &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"' EXIT
for _ in $(seq 100); do grep -q 'serving on' serve.out && break; sleep 0.1; done
u=https://127.0.0.1:$port
cpu0=$(awk '{print $14 + $15}' /proc/$SERVE/stat)
kept=$("$L" cmp "$u/.well-known/cmp/p/device" clients/Telus.pem clients/Telus.key ca/root.pem \
	ca/subca-devices.pem kept.csv "$C")
cpu1=$(awk '{print $14 + $15}' /proc/$SERVE/stat)
new=$("$L" cmp "$u/.well-known/cmp/p/device" clients/Telus.pem clients/Telus.key ca/root.pem \
	ca/subca-devices.pem fresh.csv "$C" new)
awk -F, 'NR > 1 && NR <= 501 { print "/api/v1/devices/" $1 }' kept.csv >paths
for a in 1000000000000000 1000000000000500 1000000000001000; do echo "/api/v1/devices?limit=100&after=$a"; done >>paths
json=$("$L" json "$u" clients/Ottawa.pem clients/Ottawa.key ca/root.pem paths "$C" "${BENCH_JSON_SECONDS:-10}")
kill -TERM $SERVE; wait $SERVE || true
valid=$("$K" certs --config ca/keyrite.cnf --status valid | grep -c _device)

field() { sed -n "s/.* $1 \([0-9.]*\).*/\1/p" <<<"$2"; }
hz=$(getconf CLK_TCK)
echo "keyrite serve, $N enrollments each way, $C clients, $cores cores"
printf '%-44s %8s/s  p50 %6s ms  p99 %6s ms  load CPU %5s s\n' \
	"CMP p10cr, kept-alive connections" "$(field rate "$kept")" "$(field p50_ms "$kept")" \
	"$(field p99_ms "$kept")" "$(field cpu_s "$kept")"
printf '%-44s %8s/s  p50 %6s ms  p99 %6s ms  load CPU %5s s\n' \
	"CMP p10cr, a new mutual-TLS connection each" "$(field rate "$new")" "$(field p50_ms "$new")" \
	"$(field p99_ms "$new")" "$(field cpu_s "$new")"
printf '%-44s %8s/s  p50 %6s ms  p99 %6s ms  load CPU %5s s\n' \
	"JSON reads (info, list pages), 10 s" "$(field rate "$json")" "$(field p50_ms "$json")" \
	"$(field p99_ms "$json")" "$(field cpu_s "$json")"
echo "service CPU during the kept-alive run: $(awk -v a="$cpu0" -v b="$cpu1" -v h="$hz" 'BEGIN { printf "%.2f", (b - a) / h }') s"
echo "reference: keyrite issue of the same $N CSRs: $(rate "$N" "$issue_s")/s"
echo "reference: the CMP library's floor ($cores threads, in memory): $(field rate "$floor")/s, p50 $(field p50_ms "$floor") ms"
echo "kept-alive / floor: $(awk -v a="$(field rate "$kept")" -v b="$(field rate "$floor")" 'BEGIN { printf "%.0f%%", 100 * a / b }') (target >= 70%); p99 $(field p99_ms "$kept") ms (target < 100)"
echo "JSON reads: $(field rate "$json")/s (target >= 5000)"
echo "valid certificates in the store: $valid (expected $((2 * N)))"
