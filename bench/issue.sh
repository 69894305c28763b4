#!/bin/bash
# bench/issue.sh [N]: batch issuance of N P-256 device CSRs (default 10000),
# measured in one run against its peers on the same SoftHSM key:
#   keyrite issue (manifest in, one PEM file per certificate out)
#   openssl ca -batch -infiles, the key on SoftHSM through the pkcs11 engine
#   the token's raw C_Sign rate with the same number of sessions, with the
#   token object and with the session copy keyrite signs with
# and keyrite's peak RSS. BENCH_RSS_N=1000000 adds a streamed-manifest run
# that reports peak RSS only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
source bench/lib.sh
WORKERS=$(conf_value ca_devices workers)
URI="pkcs11:token=keyrite-devices;object=iotregistry-devices-2026"

"$SRC/build/mkcsr" --manifest "$N" >requests.csv
"$SRC/build/mkcsr" --stream "$N" --start 5000000000000001 >requests.pem
mkdir -p csr && awk '/BEGIN/{f=sprintf("csr/%07d.pem", ++n)} {print > f}' requests.pem


# keyrite
mkdir out
/usr/bin/time -v "$K" issue --config ca/keyrite.cnf --ca devices --profile device \
	--pin-file pin --out out requests.csv 2>keyrite.time >/dev/null
grep -q "$N issued" keyrite.time || { cat keyrite.time; exit 1; }
kr_s=$(seconds keyrite.time)
kr_rss=$(awk '/Maximum resident/ {print $NF}' keyrite.time)

# openssl ca, same key through the pkcs11 engine (its PIN in its config file)
mkdir -p ossl/new && : >ossl/index.txt && echo 01 >ossl/serial
(umask 077; engine_conf >ossl.cnf)
cat >>ossl.cnf <<EOC
[ca]
default_ca = bench
[bench]
dir = $W/ossl
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
certificate = $W/ca/subca-devices.pem
default_md = sha256
default_days = 730
policy = any
unique_subject = no
x509_extensions = device_ext
[any]
commonName = supplied
[device_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOC
ls csr/*.pem >csr.list
/usr/bin/time -v openssl ca -config ossl.cnf -batch -engine pkcs11 -keyform engine \
	-keyfile "$URI;type=private" -notext -out ossl/all.pem -infiles $(cat csr.list) \
	>/dev/null 2>ossl.time || { tail -5 ossl.time; exit 1; }
os_s=$(seconds ossl.time)
[ "$(ls ossl/new | wc -l)" -eq "$N" ] || { echo "openssl ca made too few"; exit 1; }

# the token's own ceiling
raws=$("$SRC/build/csign" "$URI" "$WORKERS" 5) # fails the script if csign fails
read -r raw_token raw <<<"$raws"
[ "$raw" != 0 ] || raw=$raw_token # the token refused the copy: keyrite signs as csign did

kr_rate=$(rate "$N" "$kr_s")
os_rate=$(rate "$N" "$os_s")
echo
echo "batch of $N P-256 device certificates, $WORKERS workers/sessions, $(nproc) cores"
printf "  %-44s %8s certs/s\n" "keyrite issue (manifest -> PEM files)" "$kr_rate"
printf "  %-44s %8s certs/s\n" "openssl ca -batch -infiles (pkcs11 engine)" "$os_rate"
printf "  %-44s %8s sigs/s\n" "raw C_Sign, $WORKERS sessions, token object" "$raw_token"
printf "  %-44s %8s sigs/s\n" "raw C_Sign, $WORKERS sessions, session copy" "$raw"
awk -v a="$kr_rate" -v b="$os_rate" -v r="$raw" -v t="$raw_token" 'BEGIN {
	printf "  keyrite / openssl ca:   %.1fx   (target >= 5x)\n", a / b
	printf "  keyrite / raw C_Sign:   %.0f%%   (target >= 50%%; the rate of the key keyrite signs with)\n", 100 * a / r
	printf "  keyrite / raw C_Sign on the token object: %.0f%%\n", 100 * a / t }'
echo "  keyrite peak RSS:       $((kr_rss / 1024)) MiB"

if [ -n "${BENCH_RSS_N:-}" ]; then
	"$SRC/build/mkcsr" --manifest "$BENCH_RSS_N" --start 7000000000000001 >big.csv
	/usr/bin/time -v "$K" issue --config ca/keyrite.cnf --ca devices --profile device \
		--pin-file pin big.csv 2>big.time >/dev/null
	echo "  $BENCH_RSS_N requests streamed from a manifest: $(seconds big.time) s," \
		"peak RSS $(( $(awk '/Maximum resident/ {print $NF}' big.time) / 1024 )) MiB (target < 64 MiB)"
fi
