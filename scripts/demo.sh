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
(umask 077; openssl rand -hex 16 > "$D/user.pin"; openssl rand -hex 16 > "$D/so.pin")

say "Two SoftHSM tokens: one for the root, one for the issuing sub-CA"
"$K" hsm init-token --label keyrite-root    --so-pin-file "$D/so.pin" --pin-file "$D/user.pin"
"$K" hsm init-token --label keyrite-devices --so-pin-file "$D/so.pin" --pin-file "$D/user.pin"
"$K" hsm tokens

say "Rehearsal of the whole ceremony on throwaway tokens (--dry-run)"
"$K" ceremony run --dry-run "$EX/root.cnf" "$EX/subca-devices.cnf" "$EX/root-crl.cnf" \
	"$EX/firmware-key.cnf" | tail -1

for s in root subca-devices root-crl firmware-key; do
	say "Ceremony: $s"
	"$K" ceremony run --dir "$D/ceremony" --pin-file "$D/user.pin" "$EX/$s.cnf"
done

say "The auditor re-checks every transcript"
for t in "$D"/ceremony/*-ceremony.txt; do "$K" ceremony verify "$t" | tail -1; done

say "Independent checks (OpenSSL)"
cd "$D/ceremony"
openssl verify -x509_strict -CAfile root.pem root.pem subca-devices.pem
openssl crl -in root.crl -CAfile root.pem -noout -verify 2>&1
openssl x509 -in subca-devices.pem -noout -subject -issuer -ext basicConstraints,nameConstraints

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
"$K" revoke --ca devices --device 1000000000000007 --reason keyCompromise
"$K" crl --ca devices --out "$D/devices.crl" --pin-file "$D/user.pin"
openssl verify -crl_check -CAfile root.pem -untrusted subca-devices.pem -CRLfile "$D/devices.crl" \
	"$D"/certs/*.1000000000000007.* 2>&1 | grep -m1 "revoked" || true

say "The audit log: hash chain and CA-signed checkpoints"
"$K" audit verify

echo
echo "Demo outputs: $D/ceremony (ceremonies), $D/certs (1000 device certificates)"
