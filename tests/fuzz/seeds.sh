#!/bin/bash
# Remakes the fuzz targets' seed corpora and fixtures (tests/fuzz/README.md)
# from what keyrite and openssl make today, on a scratch SoftHSM token:
#   KEYRITE=build/keyrite MKCSR=build/mkcsr tests/fuzz/seeds.sh
# The regression inputs (corpus/*/regress-*) are kept; everything else in
# corpus/ and fixtures/ is replaced.
set -eEuo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
export REPO=$(cd "$here/../.." && pwd)
: "${KEYRITE:?set KEYRITE to the keyrite binary}" "${MKCSR:?set MKCSR to the mkcsr binary}"
source "$REPO/tests/e2e/lib.sh"
source "$REPO/tests/e2e/t_fw.sh"
setup
trap teardown EXIT
C=$here/corpus F=$here/fixtures
for t in csr manifest ca_config ceremony mcuboot cms uri registry serve; do
	mkdir -p "$C/$t"
	find "$C/$t" -type f ! -name 'regress-*' -delete
done
rm -rf "$F" && mkdir -p "$F"

# csr: each key type keyrite takes, the names a profile judges, hostile ones
mkcsr --key ec-p256 --cn 302220601105021 --der --out "$C/csr/ec-p256.der"
mkcsr --key ec-p384 --cn meter --dns a.iotregistry.ca --dns b.iotregistry.ca --out "$C/csr/ec-p384-dns.pem"
mkcsr --key rsa-2048 --cn www.bank.example --dns www.bank.example --der --out "$C/csr/rsa-dns.der"
mkcsr --key ed25519 --cn 2000000000000001 --ip 192.0.2.1 --email a@example.com --der --out "$C/csr/ed25519-ip.der"
mkcsr --key ec-explicit --der --out "$C/csr/ec-explicit.der"
mkcsr --key ec-p256 --ca --keycertsign --critical-unknown --der --out "$C/csr/hostile-ext.der"
mkcsr --key ec-p256 --corrupt-sig --der --out "$C/csr/bad-sig.der"

# manifest: the forms of a row, a CSR beside the manifest (the target
# writes meter.csr) or inline in base64
b64=$(base64 -w0 "$C/csr/ec-p256.der")
printf '302220601105021,meter,4.1,meter.csr\n' >"$C/manifest/one.csv"
printf 'device_id,model,version,csr\n"302220601105022","meter ""x""",4.1,%s\n\n# note\n2000000000000001,gauge,1.0,../x.csr\n' \
	"$b64" >"$C/manifest/forms.csv"

# registry: the seeds' import form, codes, a bare list, hostile rows
printf 'Device ID,Model,Version,MNO,Owner\n1000000000000001,SParkometer,1.1,Telus,Ottawa\n89049032000000000000000000000066,"tracker, v2",2.0,,\n' \
	>"$C/registry/import.csv"
printf 'device,code\n1000000000000001,f6954b09-d54805d7-e85307f1-a129bc89\n1000000000000002,F6954B09D54805D7E85307F1A129BC89\n1000000000000003,1234\n' \
	>"$C/registry/codes.csv"
printf '1000000000000001\n# a note\n\n302220601105021\n' >"$C/registry/list.txt"
printf 'Device ID,Nonsense\n1,2\n' >"$C/registry/bad-header.csv"

# ca_config and ceremony: the example files
cp "$EX/keyrite.cnf" "$C/ca_config/keyrite.cnf"
for s in root subca-devices subca-firmware root-crl firmware-key backup restore share-check; do
	cp "$EX/$s.cnf" "$C/ceremony/$s.cnf"
done

# uri
printf '%s' 'pkcs11:token=keyrite-devices;object=firmware-signer-2026?pin-source=file:pin' >"$C/uri/object.txt"
printf '%s' 'pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=1;token=a;type=private;id=%01%02?module-path=/x.so' >"$C/uri/all.txt"
printf '%s' 'pkcs11:token=a?pin-value=1234' >"$C/uri/pin-value.txt"

# cms and mcuboot: packages and images of a real firmware signer; its
# chain and root are the targets' fixtures
fw_setup
cp "$T/ca/root.pem" "$F/root.pem"
cp "$T/firmware-chain.pem" "$F/firmware-chain.pem"
head -c 1024 /dev/urandom >"$F/fw.bin"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-devices --login --pin env:KR_TEST_PIN \
	--write-object <(head -c 32 /dev/urandom) --type secrkey --key-type AES:32 --label class \
	--id 0a0b0c >/dev/null 2>&1
cp "$F/fw.bin" "$T/fw.bin"
krcms --signer firmware --out "$T/signed" "$T/fw.bin" 2>/dev/null
krcms --signer firmware --out "$T/signed" --embed "$T/fw.bin" 2>/dev/null
cp "$T/signed/fw.bin.p7s" "$C/cms/detached.p7s"
cp "$T/signed/fw.bin.p7m" "$C/cms/embedded.p7m"
krcms --signer firmware --out "$T/signed" --embed --encrypt-kek class "$T/fw.bin" 2>/dev/null
cp "$T/signed/fw.bin.p7e.p7m" "$C/cms/rfc4108-encrypted.p7m"
mkdir "$T/ae"
krcms --signer firmware --out "$T/ae" --embed --authenveloped --encrypt-kek class "$T/fw.bin" 2>/dev/null
cp "$T/ae/fw.bin.p7e.p7m" "$C/cms/authenveloped.p7m"

m() { printf "\\x$(printf %02x "$1")"; cat "$2"; } # the option byte, then the image
head -c 1024 /dev/urandom >"$T/code.bin"
krfw --signer firmware --format mcuboot --header-size 0x200 --pad-header --version 1.2.3+4 \
	--out "$T/signed" "$T/code.bin" 2>/dev/null
m 0 "$T/signed/code.signed.bin" >"$C/mcuboot/signed.bin"
cat <(head -c 512 /dev/zero) "$T/code.bin" >"$T/zephyr.bin"
m $((1 | 1 << 4 | 128)) "$T/zephyr.bin" >"$C/mcuboot/zephyr-raw.bin"      # raw, header 0x200
m $((1 | 2 | 8)) "$T/code.bin" >"$C/mcuboot/pad-header-encrypt.bin"       # raw, --pad-header
{ imgtool_header 0 512 1024 0 1 0 0 0; head -c 480 /dev/zero | tr '\0' '\377'; cat "$T/code.bin"; } >"$T/u.region"
{ cat "$T/u.region"; xxd -r -p <<<"$(hexle $((0x6907)) 2)$(hexle 40 2)$(hexle 16 2)$(hexle 32 2)"
  openssl dgst -sha256 -binary "$T/u.region"; } >"$T/unsigned.bin"
m 0 "$T/unsigned.bin" >"$C/mcuboot/imgtool-unsigned.bin"
# serve: the option byte picks the reader (0 JSON, 1 CMP, 2 EST), then the body
{ printf '\0'; printf '{"devices":["1000000000000001",{"device":"1000000000000002","code":"A-B"}],"asp":"ParkoServ","lock":["transfer"]}'; } >"$C/serve/json.bin"
{ printf '\0'; printf '{"devices":[{"device":"1000000000000001","csr":"%s"}]}' "$(openssl req -inform DER -in "$C/csr/ec-p256.der" | awk '{printf "%s\\n", $0}')"; } >"$C/serve/json-csr.bin"
openssl req -inform DER -in "$C/csr/ec-p256.der" -out "$T/seed.csr"
# (no server listens on port 9: openssl cmp writes the request, then fails)
openssl cmp -cmd p10cr -csr "$T/seed.csr" -secret pass:seed -ref seed -certout "$T/x.pem" \
	-server 127.0.0.1:9 -reqout "$T/p10cr.der" >/dev/null 2>&1 || true
openssl ecparam -name prime256v1 -genkey -noout -out "$T/ir.key"
openssl cmp -cmd ir -newkey "$T/ir.key" -subject /CN=1000000000000001 -recipient /CN=CA \
	-secret pass:seed -ref seed -certout "$T/x.pem" -server 127.0.0.1:9 -reqout "$T/ir.der" \
	>/dev/null 2>&1 || true
{ printf '\1'; cat "$T/p10cr.der"; } >"$C/serve/cmp-p10cr.bin"
{ printf '\1'; cat "$T/ir.der"; } >"$C/serve/cmp-ir.bin"
{ printf '\2'; base64 "$C/csr/ec-p256.der"; } >"$C/serve/est.bin"
echo "seeds and fixtures remade in $here"
