#!/bin/bash
# make demo: the key ceremonies end to end on local SoftHSM tokens, as an
# operator would run them from docs/examples, then checked by OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."
K=$PWD/build/keyrite
MKCSR=$PWD/build/mkcsr
EX=$PWD/docs/examples
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

say "Keys on the tokens (sensitive, never extractable)"
"$K" hsm keys "pkcs11:token=keyrite-devices" --pin-file "$D/user.pin"

say "A mobile operator sends 1000 parking meters' CSRs (a manifest)"
cp "$EX/keyrite.cnf" "$D/ceremony/keyrite.cnf"
export KEYRITE_CONFIG=$D/ceremony/keyrite.cnf
"$MKCSR" --manifest 1000 --start 1000000000000001 >"$D/meters.csv"
head -c 160 "$D/meters.csv"; echo " ..."
mkdir -p "$D/certs"
time "$K" issue --ca devices --profile device --out "$D/certs" --pin-file "$D/user.pin" "$D/meters.csv"

say "Every certificate checked by OpenSSL against the chain"
ls "$D"/certs/*_device*.pem | xargs openssl verify -CAfile root.pem -untrusted subca-devices.pem \
	>"$D/verify.log" 2>&1 || true
echo "verified by OpenSSL: $(grep -c ': OK$' "$D/verify.log") of $(ls "$D"/certs/*_device*.pem | wc -l)"
[ "$(grep -vc ': OK$' "$D/verify.log")" -eq 0 ]
openssl x509 -in "$D/certs/11.1000000000000001._device.iotregistry.ca.pem" -noout -subject -ext subjectAltName,extendedKeyUsage

say "One meter is stolen: revoke it and issue the CRL"
"$K" revoke --ca devices --device 1000000000000007 --reason keyCompromise --pin-file "$D/user.pin"
"$K" crl --ca devices --out "$D/devices.crl" --pin-file "$D/user.pin"
openssl verify -crl_check -CAfile root.pem -untrusted subca-devices.pem -CRLfile "$D/devices.crl" \
	"$D"/certs/*.1000000000000007.* 2>&1 | grep -m1 "revoked" || true

say "Firmware: a code-signing certificate for the firmware key (from its ceremony)"
FW_URI="pkcs11:token=keyrite-devices;object=firmware-signer-2026"
"$K" hsm csr "$FW_URI" --cn "IoT Registry firmware 2026" --out "$D/firmware.csr" --pin-file "$D/user.pin"
mkdir -p "$D/fwcert" "$D/firmware"
"$K" issue --ca firmware --profile firmware_signer --out "$D/fwcert" --pin-file "$D/user.pin" "$D/firmware.csr"
cp "$(ls "$D"/fwcert/*.pem | grep -v chain.pem)" "$D/ceremony/firmware-signer.pem"

say "A meter with its own key joins; a device-class key (KEK) goes on the token"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$D/meter.key" 2>/dev/null
openssl req -new -key "$D/meter.key" -subj /CN=2000000000000001 -out "$D/meter.csr"
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

say "Publication: every meter's TLSA record, the root, the CA files; DNSSEC with keys on the token"
for k in ksk zsk; do
	"$K" hsm keygen "pkcs11:token=keyrite-devices;object=iotregistry-$k" --type ec-p256 \
		--pin-file "$D/user.pin" >/dev/null
done
"$K" publish --zone iotregistry.ca --out "$D/dns" --sign --pin-file "$D/user.pin"
named-checkzone iotregistry.ca "$D/dns/iotregistry.ca.zone" | tail -1
ldns-verify-zone "$D/dns/iotregistry.ca.zone" | tail -1
grep -m1 '_device.*TLSA' "$D/dns/iotregistry.ca.zone"
ls "$D/dns/.well-known/ca"
grep -q "1000000000000007._device.*TLSA" "$D/dns/iotregistry.ca.zone" &&
	{ echo "the stolen meter is published"; exit 1; } || echo "the stolen meter (revoked) is not published"
"$K" publish check --zone "$D/dns/iotregistry.ca.zone"

say "The audit log: hash chain and CA-signed checkpoints"
"$K" audit verify

echo
echo "Demo outputs: $D/ceremony (ceremonies), $D/certs (device certificates), $D/firmware (signed firmware), $D/dns (zone and .well-known)"
