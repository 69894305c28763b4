#!/bin/bash
# make demo: the key ceremonies end to end on local SoftHSM tokens, as an
# operator would run them from docs/examples, then the source documents'
# Ottawa story through the registry, firmware and publication, and the
# registry online (keyrite serve: JSON, CMP, EST), checked by OpenSSL, curl
# and the DNS tools.
set -euo pipefail
cd "$(dirname "$0")/.."
K=$PWD/build/keyrite
MKCSR=$PWD/build/mkcsr
EX=$PWD/docs/examples
TOP=$PWD
D=$PWD/build/demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$D"
mkdir -p "$D/tokens" "$D/ceremony"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$D" > "$D/softhsm2.conf"
export SOFTHSM2_CONF=$D/softhsm2.conf
# PINs live in owner-only files; they never appear on a command line.
# Without a final newline: the OpenSSL pkcs11 engine (pin-source=file:) reads
# the file as it is, newline included (keyrite(1), PIN FILES).
(umask 077; openssl rand -hex 16 | tr -d "\n" >"$D/user.pin"; openssl rand -hex 16 | tr -d "\n" >"$D/so.pin")

say "Two SoftHSM tokens: one for the root, one for the issuing sub-CA"
"$K" hsm init-token --label keyrite-root    --so-pin-file "$D/so.pin" --pin-file "$D/user.pin"
"$K" hsm init-token --label keyrite-devices --so-pin-file "$D/so.pin" --pin-file "$D/user.pin"
"$K" hsm tokens

say "Rehearsal of the whole ceremony on throwaway tokens (--dry-run)"
"$K" ceremony run --dry-run "$EX/root.cnf" "$EX/subca-devices.cnf" "$EX/subca-firmware.cnf" "$EX/root-crl.cnf" \
	"$EX/firmware-key.cnf" | tail -1

for s in root subca-devices subca-firmware root-crl firmware-key; do
	say "Ceremony: $s"
	"$K" ceremony run --dir "$D/ceremony" --pin-file "$D/user.pin" "$EX/$s.cnf"
done

say "The auditor re-checks every transcript"
for t in "$D"/ceremony/*-ceremony.txt; do "$K" ceremony verify "$t" | tail -1; done

say "Independent checks (OpenSSL)"
cd "$D/ceremony"
openssl verify -x509_strict -CAfile root.pem root.pem subca-devices.pem subca-firmware.pem
openssl crl -in root.crl -CAfile root.pem -noout -verify 2>&1
openssl x509 -in subca-devices.pem -noout -subject -issuer -ext basicConstraints,nameConstraints,extendedKeyUsage
openssl x509 -in subca-firmware.pem -noout -subject -ext extendedKeyUsage

say "Keys on the tokens (sensitive; the CA keys extractable only under a trusted key, for the backup)"
"$K" hsm keys "pkcs11:token=keyrite-devices" --pin-file "$D/user.pin"

say "Paper backup of the root and devices CA keys: 3 of 5 custodians (keyrite-ceremony(5) BACKUP)"
# On the day the pages are shown on the ceremony terminal; the demo has no
# custodians, so it writes them to a directory (shares_dir) and answers
# the operator's confirmation of each custodian on a terminal of script(1).
mkdir -p "$D/shares"
sed -e "s|^\(uri *= pkcs11:.*\)$|\1\nso_pin_file = $D/so.pin|" \
	-e "s|^verifier *=.*|&\nshares_dir = $D/shares|" "$EX/backup.cnf" >"$D/backup.cnf"
printf 'yes\n%.0s' 1 2 3 4 5 | script -qec "'$K' ceremony run --dir '$D/ceremony' --pin-file '$D/user.pin' '$D/backup.cnf'" \
	/dev/null | grep -a "Share [0-9] is in\|verifier-words\|backed-up" | tr -d '\r'
"$K" ceremony verify "$D/ceremony/backup-ceremony.txt" | tail -1
echo "Custodian 2's page:"
cat "$D/shares/share-2-of-5.txt"

say "The City of Ottawa buys 1000 smart parking meters and imports them (seed 001)"
cp "$EX/keyrite.cnf" "$D/ceremony/keyrite.cnf"
export KEYRITE_CONFIG=$D/ceremony/keyrite.cnf
# Telus relays the meters' CSRs (keys made on their eSIMs): a manifest
"$MKCSR" --manifest 1000 --start 1000000000000001 >"$D/telus-relay.csv"
{ echo "Device ID,Model,Version"; tail -n +2 "$D/telus-relay.csv" | cut -d, -f1-3; } >"$D/CityOfOttawa-ParkoMeter.csv"
head -4 "$D/CityOfOttawa-ParkoMeter.csv"; echo "..."
R=("$K" registry)
P=(--pin-file "$D/user.pin")
"${R[@]}" import --as Ottawa --mno Telus "${P[@]}" "$D/CityOfOttawa-ParkoMeter.csv" | tail -1

say "Ottawa registers them with ParkoServ; ParkoServ activates them (profiles 11, 12, ...)"
"${R[@]}" register --as Ottawa --asp ParkoServ "${P[@]}" "$D/CityOfOttawa-ParkoMeter.csv" | tail -1
time "${R[@]}" activate --as ParkoServ "${P[@]}" --csr "$D/telus-relay.csv" | tail -1
"${R[@]}" list --as ParkoServ "${P[@]}" >"$D/list.txt"; head -6 "$D/list.txt"

say "Every meter's certificate chains to the root (OpenSSL, a sample)"
cert_of() {
	"$K" show "$("$K" certs --device "$1" --status valid --json | sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p')" |
		sed -n '/BEGIN CERT/,/END CERT/p' >"$2"
}
for id in 1000000000000001 1000000000000500 1000000000001000; do
	cert_of "$id" "$D/$id.pem"
	openssl verify -CAfile root.pem -untrusted subca-devices.pem "$D/$id.pem"
done
openssl x509 -in "$D/1000000000000001.pem" -noout -subject -ext subjectAltName,extendedKeyUsage

say "Publication: every meter's TLSA record, the root, the CA files; DNSSEC with keys on the token"
for k in ksk zsk; do
	"$K" hsm keygen "pkcs11:token=keyrite-devices;object=iotregistry-$k" --type ec-p256 \
		--pin-file "$D/user.pin" >/dev/null
done
"$K" publish --zone iotregistry.ca --out "$D/dns" --sign --pin-file "$D/user.pin" | tee "$D/publish.out"
named-checkzone iotregistry.ca "$D/dns/iotregistry.ca.zone" | tail -1
ldns-verify-zone "$D/dns/iotregistry.ca.zone" | tail -1
awk '$1 ~ /^11\.1000000000000001\./ && $4 == "TLSA"' "$D/dns/iotregistry.ca.zone"
ls "$D/dns/.well-known/ca"

say "Ottawa moves every meter to CarParkServ with zero touch: its auth codes, shown once"
"${R[@]}" authcode --as Ottawa "${P[@]}" "$D/CityOfOttawa-ParkoMeter.csv" >"$D/codes.out"
{ echo device,code; awk '$2 == "code" {print $1 "," $4}' "$D/codes.out"; } >"$D/ottawa-codes.csv"
(umask 077; chmod 600 "$D/ottawa-codes.csv" "$D/codes.out")
"${R[@]}" list --as Ottawa "${P[@]}" >"$D/list.txt"; head -3 "$D/list.txt"
"${R[@]}" transfer request --as CarParkServ "${P[@]}" "$D/ottawa-codes.csv" | tail -1
time "${R[@]}" activate --as CarParkServ "${P[@]}" "$D/CityOfOttawa-ParkoMeter.csv" | tail -1
"${R[@]}" list --as CarParkServ "${P[@]}" >"$D/list.txt"; head -6 "$D/list.txt"
"$K" certs --device 1000000000000001

say "The registry payload for a meter's eSIM: signed by the registry's key, encrypted to the meter"
PAYLOAD_URI="pkcs11:token=keyrite-devices;object=registry-payload-2026"
"$K" hsm keygen "$PAYLOAD_URI" --type ec-p256 --pin-file "$D/user.pin" >/dev/null
"$K" hsm csr "$PAYLOAD_URI" --cn "IoT Registry payload 2026" --out "$D/payload.csr" --pin-file "$D/user.pin"
mkdir -p "$D/psig" "$D/payloads"
"$K" issue --ca devices --profile payload_signer --out "$D/psig" --pin-file "$D/user.pin" "$D/payload.csr"
cat "$(ls "$D"/psig/*.pem | grep -v chain.pem)" subca-devices.pem >"$D/ceremony/registry-payload.pem"
# the zone's trust anchor goes in every payload: the DS publish --sign gave
sed -i "s|^delete_grace_days .*|&\ntrust_anchor = $(sed -n 's/^DS for the parent: //p' "$D/publish.out" |
	tr '\t' ' ' | paste -sd';')|" "$KEYRITE_CONFIG"
"${R[@]}" payload --as Telus --out "$D/payloads" "${P[@]}" 1000000000000001 | tail -1
openssl cms -cmsout -print -inform DER -in "$D/payloads/1000000000000001.p7m" |
	grep -m2 -E 'contentType: pkcs7-envelopedData|d.originator|kari' || true

say "The DNS follows: old profile names withdrawn (NSEC3 proves them gone), new ones published"
"$K" publish --zone iotregistry.ca --out "$D/dns" --sign --changes "$D/dns/changes.txt" --pin-file "$D/user.pin"
ldns-verify-zone "$D/dns/iotregistry.ca.zone" | tail -1
awk '$1 ~ /\.1000000000000001\._device/ && $4 == "TLSA"' "$D/dns/iotregistry.ca.zone"
grep -c '^update delete' "$D/dns/changes.txt" | sed 's/$/ records deleted by the nsupdate changes/'

say "A meter is stolen: Ottawa deactivates it; the CRL says so"
"${R[@]}" deactivate --as Ottawa "${P[@]}" 1000000000000007
cert_of 1000000000000001 "$D/new-1000000000000001.pem"
"$K" crl --ca devices --out "$D/devices.crl" --pin-file "$D/user.pin"
openssl verify -crl_check -CAfile root.pem -untrusted subca-devices.pem -CRLfile "$D/devices.crl" \
	"$D/1000000000000001.pem" 2>&1 | grep -m1 "revoked" || true
openssl verify -crl_check -CAfile root.pem -untrusted subca-devices.pem -CRLfile "$D/devices.crl" \
	"$D/new-1000000000000001.pem"
"${R[@]}" show "${P[@]}" 1000000000000007 | tail -4

say "Firmware: a code-signing certificate for the firmware key (from its ceremony)"
FW_URI="pkcs11:token=keyrite-devices;object=firmware-signer-2026"
"$K" hsm csr "$FW_URI" --cn "IoT Registry firmware 2026" --out "$D/firmware.csr" --pin-file "$D/user.pin"
mkdir -p "$D/fwcert" "$D/firmware"
"$K" issue --ca firmware --profile firmware_signer --out "$D/fwcert" --pin-file "$D/user.pin" "$D/firmware.csr"
cp "$(ls "$D"/fwcert/*.pem | grep -v chain.pem)" "$D/ceremony/firmware-signer.pem"

say "A meter with its own key joins; a device-class key (KEK) goes on the token"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/meter.key" 2>/dev/null
openssl req -new -key "$D/meter.key" -subj /CN=2000000000000001 -out "$D/meter.csr"
mkdir -p "$D/certs"
echo "2000000000000001,meter,4.1,meter.csr" >"$D/new-meter.csv" # beside the manifest
"$K" issue --ca devices --profile device --out "$D/certs" --pin-file "$D/user.pin" "$D/new-meter.csv"
(umask 077; openssl rand 32 >"$D/meters-2026.kek")
KR_DEMO_PIN=$(cat "$D/user.pin") pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label keyrite-devices --login --pin env:KR_DEMO_PIN --write-object "$D/meters-2026.kek" \
	--type secrkey --key-type AES:32 --label meters-2026 --id 6d32 --usage-decrypt --sensitive >/dev/null 2>&1

say "Sign firmware 4.2 for the meter class: an RFC 4108 package encrypted under the class key, then signed"
head -c 262144 /dev/urandom >"$D/meter-fw-4.2.bin"
"$K" fw sign --signer firmware --pin-file "$D/user.pin" --out "$D/firmware" --json \
	--package-version 42 --encrypt-kek meters-2026 "$D/meter-fw-4.2.bin"
openssl cms -verify -binary -inform DER -in "$D/firmware/meter-fw-4.2.bin.p7e.p7s" \
	-content "$D/firmware/meter-fw-4.2.bin.p7e" -CAfile root.pem -purpose any -out /dev/null
"$K" fw verify --root root.pem --content "$D/firmware/meter-fw-4.2.bin.p7e" --expect-version 42 \
	--hardware 1.3.6.1.4.1.32473.2.1 "$D/firmware/meter-fw-4.2.bin.p7e.p7s"

say "The same firmware for one meter only: encrypted to its certificate (AuthEnvelopedData, RFC 5083)"
mkdir "$D/firmware/meter"
"$K" fw sign --signer firmware --pin-file "$D/user.pin" --out "$D/firmware/meter" \
	--package-version 42 --authenveloped --encrypt-to-device 2000000000000001 "$D/meter-fw-4.2.bin"
openssl cms -decrypt -binary -inform DER -in "$D/firmware/meter/meter-fw-4.2.bin.p7e" \
	-recip "$D"/certs/*.2000000000000001.*.pem -inkey "$D/meter.key" -out "$D/meter-decrypted.bin"
cmp "$D/meter-decrypted.bin" "$D/meter-fw-4.2.bin"
echo "decrypted by the meter's own key (openssl cms): identical to the image"

say "The same firmware as an MCUboot image, checked as a factory would"
"$K" fw sign --signer firmware --pin-file "$D/user.pin" --out "$D/firmware" --format mcuboot \
	--header-size 0x200 --pad-header --version 4.2.0 "$D/meter-fw-4.2.bin"
cat "$D/ceremony/firmware-signer.pem" subca-firmware.pem >"$D/firmware-chain.pem"
"$K" fw verify --format mcuboot --root root.pem --cert "$D/firmware-chain.pem" \
	--expect-version 4.2.0 "$D/firmware/meter-fw-4.2.signed.bin"

say "The registry online: keyrite serve, HTTPS with mutual TLS (docs/api.md)"
SVC_URI="pkcs11:token=keyrite-devices;object=registry-service-2026"
"$K" hsm keygen "$SVC_URI" --type ec-p256 --pin-file "$D/user.pin" >/dev/null
"$K" hsm csr "$SVC_URI" --cn api.iotregistry.ca --dns api.iotregistry.ca --out "$D/service.csr" --pin-file "$D/user.pin"
mkdir -p "$D/svc" "$D/clients"
"$K" issue --ca devices --profile registry_service --out "$D/svc" --pin-file "$D/user.pin" "$D/service.csr" | tail -1
cat "$(ls "$D"/svc/*.pem | grep -v chain.pem)" subca-devices.pem >"$D/ceremony/registry-service.pem"
for a in Ottawa ParkoServ Telus; do # each account's client certificate, issued by the operator
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/clients/$a.key" \
		-subj "/CN=$a" -out "$D/clients/$a.csr" 2>/dev/null
	"${R[@]}" client "$a" "${P[@]}" --csr "$D/clients/$a.csr" --out "$D/clients/$a.pem"
done
PORT=$(shuf -i 20000-60000 -n 1)
sed -i "/^\[serve\]/,/^\[/ s/^port *= .*/port        = $PORT/" "$KEYRITE_CONFIG" # the service's, not an ASP's
sed -i "s|^\[serve\]|[serve]\nconsole     = $TOP/console|" "$KEYRITE_CONFIG" # the web console
"$K" serve "${P[@]}" >"$D/serve.out" 2>"$D/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'serving on' "$D/serve.out" && break; sleep 0.1; done
cat "$D/serve.out"
api() { # ACCOUNT METHOD PATH [JSON]
	curl -sS --cacert root.pem --cert "$D/clients/$1.pem" --key "$D/clients/$1.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -X "$2" ${4:+-H 'Content-Type: application/json' -H 'Keyrite-Request: 1' --data-binary "$4"} \
		"https://api.iotregistry.ca:$PORT/api/v1/$3"
	echo
}
"$MKCSR" --manifest 3 --start 1000000000001001 >"$D/new-meters.csv"
tail -n +2 "$D/new-meters.csv" | while IFS=, read -r id _ _ csr; do
	printf '%s' "$csr" | base64 -d | openssl req -inform DER -out "$D/$id.csr"
done
echo "Ottawa imports three more meters and registers them with ParkoServ, over JSON:"
api Ottawa POST import '{"mno":"Telus","devices":[{"device":"1000000000001001","model":"SParkometer","version":"1.1"},{"device":"1000000000001002","model":"SParkometer","version":"1.1"},{"device":"1000000000001003","model":"SParkometer","version":"1.1"}]}'
api Ottawa POST register '{"asp":"ParkoServ","devices":["1000000000001001","1000000000001002","1000000000001003"]}'
CMP=(openssl cmp -server "127.0.0.1:$PORT" -path /.well-known/cmp/p/device -tls_used
	-tls_cert "$D/clients/Telus.pem" -tls_key "$D/clients/Telus.key" -tls_trusted root.pem
	-tls_host api.iotregistry.ca -cert "$D/clients/Telus.pem" -key "$D/clients/Telus.key"
	-extracerts subca-devices.pem -trusted root.pem -untrusted subca-devices.pem)
echo "Telus activates them by CMP (p10cr, then ir with a key of its own) and by EST:"
"${CMP[@]}" -cmd p10cr -csr "$D/1000000000001001.csr" -certout "$D/1000000000001001.pem" 2>&1 | grep -m1 'received' || true
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/1000000000001002.key"
"${CMP[@]}" -cmd ir -newkey "$D/1000000000001002.key" -subject /CN=1000000000001002 \
	-certout "$D/1000000000001002.pem" 2>&1 | grep -m1 'received' || true
openssl req -in "$D/1000000000001003.csr" -outform DER | base64 |
	curl -sS --cacert root.pem --cert "$D/clients/Telus.pem" --key "$D/clients/Telus.key" \
		--resolve "api.iotregistry.ca:$PORT:127.0.0.1" -H 'Content-Type: application/pkcs10' --data-binary @- \
		"https://api.iotregistry.ca:$PORT/.well-known/est/simpleenroll" |
	base64 -d | openssl pkcs7 -inform DER -print_certs -out "$D/1000000000001003.pem"
for id in 1000000000001001 1000000000001002 1000000000001003; do
	openssl verify -CAfile root.pem -untrusted subca-devices.pem "$D/$id.pem"
done
echo "Meter 1000000000001002 makes a new key; Telus relays its CMP kur, protected by its current certificate:"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/1000000000001002-new.key"
"${CMP[@]}" -cmd kur -cert "$D/1000000000001002.pem" -key "$D/1000000000001002.key" \
	-newkey "$D/1000000000001002-new.key" -certout "$D/1000000000001002-new.pem" 2>&1 | grep -m1 'received' || true
openssl verify -CAfile root.pem -untrusted subca-devices.pem "$D/1000000000001002-new.pem"
"$K" certs --device 1000000000001002 | sed 's/^/  /'
echo "The web console (docs/console.md), as a browser with ParkoServ's certificate would load it:"
curl -sS --cacert root.pem --cert "$D/clients/ParkoServ.pem" --key "$D/clients/ParkoServ.key" \
	--resolve "api.iotregistry.ca:$PORT:127.0.0.1" "https://api.iotregistry.ca:$PORT/console/" | grep -o '<title>.*</title>'
echo "  https://api.iotregistry.ca:$PORT/console/ ($(api ParkoServ GET account))"
echo "What ParkoServ sees of one, and what waits in its poll queue:"
api ParkoServ GET devices/1000000000001002
api ParkoServ GET poll | cut -c1-200
kill -TERM $SERVE && wait $SERVE && echo "keyrite serve stopped on SIGTERM"
trap - EXIT
grep -c '"event":"request"' "$D/serve.log" | sed 's/$/ requests in its log (one JSON object a line)/'

say "What is published matches the store"
"$K" publish --zone iotregistry.ca --out "$D/dns" --sign --pin-file "$D/user.pin" | tail -1
grep -q "1000000000000007._device.*TLSA" "$D/dns/iotregistry.ca.zone" &&
	{ echo "the stolen meter is published"; exit 1; } || echo "the stolen meter (deactivated) is not published"
"$K" publish check --zone "$D/dns/iotregistry.ca.zone"

say "The audit log: hash chain and CA-signed checkpoints"
"$K" audit verify

echo
echo "Demo outputs: $D/ceremony (ceremonies and the store), $D/certs (the meter with its own key), $D/firmware (signed firmware), $D/dns (zone and .well-known)"
