#!/bin/bash
# bench/publish.sh [N]: publication of N device certificates (default
# 100000), measured in one run on one SoftHSM token: keyrite publish
# unsigned, keyrite publish --sign (KSK and ZSK ECDSA P-256 on the token,
# NSEC3 without iterations), and ldns-signzone signing keyrite's unsigned zone
# with the same two keys through the pkcs11 engine, NSEC3 without iterations.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
source bench/lib.sh
"$SRC/build/mkcsr" --manifest "$N" --start 6000000000000001 >devices.csv
"$K" issue --config ca/keyrite.cnf --ca devices --profile device --pin-file pin devices.csv \
	2>issue.log >/dev/null
grep -q "$N issued" issue.log || { tail -3 issue.log; exit 1; }
for k in ksk zsk; do
	"$K" hsm keygen "pkcs11:token=keyrite-devices;object=iotregistry-$k" --type ec-p256 \
		--pin-file pin >/dev/null
done

/usr/bin/time -v "$K" publish --config ca/keyrite.cnf --zone iotregistry.ca --out unsigned --soa \
	>/dev/null 2>unsigned.time
/usr/bin/time -v "$K" publish --config ca/keyrite.cnf --zone iotregistry.ca --out signed --sign \
	--pin-file pin >/dev/null 2>signed.time
ldns-verify-zone signed/iotregistry.ca.zone >/dev/null || { echo "keyrite's signed zone does not verify"; exit 1; }

# the peer: ldns-signzone, the same keys through the pkcs11 engine (its PIN in
# its configuration file, not on the command line)
(umask 077; engine_conf >engine.cnf)
KEY="pkcs11:token=keyrite-devices;type=private;object=iotregistry"
OPENSSL_CONF=$W/engine.cnf /usr/bin/time -v ldns-signzone -E pkcs11 -K "13,$KEY-ksk" -k "13,$KEY-zsk" \
	-n -t 0 -o iotregistry.ca -f ldns.signed unsigned/iotregistry.ca.zone 2>ldns.time >/dev/null
ldns-verify-zone ldns.signed >/dev/null || { echo "ldns-signzone's zone does not verify"; exit 1; }

u=$(seconds unsigned.time) s=$(seconds signed.time) l=$(seconds ldns.time)
echo
echo "publication of $N devices, ECDSA P-256 keys on SoftHSM, NSEC3 (0 iterations), $(nproc) cores"
printf "  %-40s %8.2f s\n" "keyrite publish (unsigned)" "$u"
printf "  %-40s %8.2f s\n" "keyrite publish --sign" "$s"
printf "  %-40s %8.2f s\n" "ldns-signzone (pkcs11 engine)" "$l"
awk -v u="$u" -v s="$s" -v l="$l" 'BEGIN {
	printf "  unsigned / ldns-signzone:  %.3f   (target < 0.1)\n", u / l
	printf "  signed / ldns-signzone:    %.2f    (target <= 0.8)\n", s / l }'
echo "  keyrite peak RSS: unsigned $(rss_mib unsigned.time) MiB, signed $(rss_mib signed.time) MiB"
