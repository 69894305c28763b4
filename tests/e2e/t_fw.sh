# Firmware signing: CMS and MCUboot outputs checked by openssl alone (cms,
# dgst, pkeyutl, kdf, mac, enc), encryption to device certificates and to a
# device-class KEK on the token, and every bad input.

FW_URI="pkcs11:token=keyrite-devices;object=firmware-signer-2026"

# The CA, a firmware-signing key from the key ceremony, its certificate from
# the firmware_signer profile, and the example config's signer 'firmware'.
fw_setup() {
	ca_setup
	kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$EX/firmware-key.cnf" >/dev/null
	fw_signer firmware "$FW_URI"
	head -c 300000 /dev/urandom >"$T/fw.bin"
	mkdir -p "$T/signed"
}

# fw_signer NAME URI: a certificate for the token key at URI, as signer NAME.
fw_signer() {
	local name=$1 uri=$2
	kr hsm csr "$uri" --cn "firmware $name" --out "$T/$name.csr" --pin-file "$T/pin" >/dev/null
	mkdir -p "$T/fwcert-$name"
	kri firmware_signer --out "$T/fwcert-$name" "$T/$name.csr" 2>/dev/null
	local cert=$T/ca/$name.pem
	[ "$name" = firmware ] && cert=$T/ca/firmware-signer.pem # as the example config says
	cp "$(ls "$T"/fwcert-$name/*.pem | grep -v chain.pem)" "$cert"
	if [ "$name" != firmware ]; then
		sed -i "s/^signers *=.*/&, $name/" "$T/ca/keyrite.cnf"
		printf '\n[signer_%s]\ncertificate = %s.pem\nca = firmware\nuri = %s\npackage = %s\nhardware = %s\n' \
			"$name" "$name" "$uri" 1.3.6.1.4.1.32473.1.1 1.3.6.1.4.1.32473.2.1 >>"$T/ca/keyrite.cnf"
	fi
	cat "$cert" "$T/ca/subca-firmware.pem" >"$T/$name-chain.pem"
	openssl x509 -in "$cert" -pubkey -noout >"$T/$name.pub"
}

krfw() { kr fw sign --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" "$@"; }
krcms() { krfw --package-version 7 "$@"; } # a CMS package carries its version

cms_verify() { # FILE [CONTENT]: openssl's verdict, code signing allowed
	openssl cms -verify -binary -inform DER -in "$1" ${2:+-content "$2"} \
		-CAfile "$T/ca/root.pem" -purpose any -out "$T/cms.out" 2>"$T/cms.err"
}

# A device registered by manifest, with its own key and certificate.
fw_device() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" 2>/dev/null
	openssl req -new -key "$T/$1.key" -subj "/CN=$1" -out "$T/$1.csr"
	echo "$1,sensor,1.0,$1.csr" >"$T/$1.csv"
	kri device --out "$T/certs" "$T/$1.csv" 2>/dev/null
}

test_cms_detached_and_embedded_verify_with_openssl() {
	fw_setup
	has '"status":"signed"' krcms --signer firmware --out "$T/signed" --json "$T/fw.bin"
	krcms --signer firmware --out "$T/signed" --embed "$T/fw.bin" 2>/dev/null
	cms_verify "$T/signed/fw.bin.p7s" "$T/fw.bin" || { cat "$T/cms.err"; fail "detached"; }
	cms_verify "$T/signed/fw.bin.p7m" || { cat "$T/cms.err"; fail "embedded"; }
	cmp "$T/cms.out" "$T/fw.bin"
	# RFC 4108 content type, signed attributes, the chain included
	openssl cms -cmsout -print -inform DER -in "$T/signed/fw.bin.p7s" >"$T/p7s.txt"
	grep -q 'eContentType: .*(1.2.840.113549.1.9.16.1.16)' "$T/p7s.txt"
	for a in contentType signingTime messageDigest; do grep -q "object: $a (" "$T/p7s.txt"; done
	[ "$(grep -c 'subject:' "$T/p7s.txt")" -ge 2 ] || fail "signer certificate and chain not included"
	has "good CMS signature" kr fw verify --root "$T/ca/root.pem" --content "$T/fw.bin" "$T/signed/fw.bin.p7s"
	has "good CMS signature" kr fw verify --root "$T/ca/root.pem" "$T/signed/fw.bin.p7m"
	# a tampered image fails, for openssl and for keyrite
	cp "$T/fw.bin" "$T/bad.bin"
	flip_byte "$T/bad.bin" 1000
	! cms_verify "$T/signed/fw.bin.p7s" "$T/bad.bin" || fail "tampered image verified"
	expect 8 "does not verify" kr fw verify --root "$T/ca/root.pem" --content "$T/bad.bin" "$T/signed/fw.bin.p7s"
	# recorded: two signatures, two audit entries, the chain intact
	[ "$(fw_list | grep -c '"size":300000,')" -eq 2 ]
	[ "$(audit_list --kind firmware | wc -l)" -eq 2 ]
	fw_list | head -1 | grep -q "\"sha256\":\"$(sha256sum <"$T/fw.bin" | cut -c1-64)\"" || fail "image SHA-256"
	# each run ends with a checkpoint signed by the firmware key, carrying its certificate
	has "(2 by firmware signers), 0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
	cp "$T/ca/registry.db" "$T/clean.db"
	db "UPDATE audit SET detail = replace(detail, 'size=300000', 'size=300001') WHERE kind = 'firmware'"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "(firmware): its content does not match its hash (edited)" "$T/expect.out"
	cp "$T/clean.db" "$T/ca/registry.db"
	# a checkpoint whose certificate the CA did not issue does not count
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/forger.key" \
		-subj /CN=forger -days 1 -outform DER -out "$T/forger.der" 2>/dev/null
	db "UPDATE checkpoint SET signer = readfile('$T/forger.der') WHERE signer IS NOT NULL"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "its signer is not certified by CA 'firmware'" "$T/expect.out"
	cp "$T/clean.db" "$T/ca/registry.db"
	db "UPDATE checkpoint SET signature = zeroblob(72) WHERE signer IS NOT NULL"
	expect 8 "fails verification" kr audit verify --config "$T/ca/keyrite.cnf"
	grep -q "bad signature by a firmware signer under CA 'firmware'" "$T/expect.out"
}

test_cms_authenveloped_to_device_and_kek_decrypts_with_openssl() {
	fw_setup
	fw_device dev0001
	fw_device dev0002
	head -c 32 /dev/urandom >"$T/kek.bin"
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-devices --login --pin env:KR_TEST_PIN \
		--write-object "$T/kek.bin" --type secrkey --key-type AES:32 --label fw-class-a --id 0a0b0c \
		--usage-wrap --sensitive >/dev/null 2>&1
	krcms --signer firmware --out "$T/signed" --authenveloped --encrypt-to-device dev0001 \
		--encrypt-to "$T/certs/"*dev0002*.pem --encrypt-kek fw-class-a "$T/fw.bin" 2>/dev/null
	# encrypt, then sign: the encrypted package is what is signed
	cms_verify "$T/signed/fw.bin.p7e.p7s" "$T/signed/fw.bin.p7e" || { cat "$T/cms.err"; fail "signature"; }
	for d in dev0001 dev0002; do
		openssl cms -decrypt -binary -inform DER -in "$T/signed/fw.bin.p7e" \
			-recip "$T/certs/"*$d*.pem -inkey "$T/$d.key" -out "$T/$d.bin"
		cmp "$T/$d.bin" "$T/fw.bin"
	done
	openssl cms -decrypt -binary -inform DER -in "$T/signed/fw.bin.p7e" \
		-secretkey "$(od -An -tx1 -v "$T/kek.bin" | tr -d ' \n')" -secretkeyid 0a0b0c -out "$T/kek-out.bin"
	cmp "$T/kek-out.bin" "$T/fw.bin"
	openssl cms -cmsout -print -inform DER -in "$T/signed/fw.bin.p7e" >"$T/p7e.txt"
	grep -q 'aes-256-gcm' "$T/p7e.txt"
	grep -q 'dhSinglePass-stdDH-sha256kdf-scheme' "$T/p7e.txt"
	# a wrong KEK does not decrypt
	! openssl cms -decrypt -binary -inform DER -in "$T/signed/fw.bin.p7e" \
		-secretkey "$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" -secretkeyid 0a0b0c \
		-out "$T/x.bin" 2>/dev/null || fail "wrong KEK decrypted"
	fw_list | grep -q "\"recipients\":\"$(basename "$T"/certs/*dev0002*.pem .pem),dev0001,kek:fw-class-a\"" ||
		fail "recipients: $(fw_list)"
}

# asn1_after FILE OID N: the N items after the object identifier OID in
# openssl asn1parse's dump of FILE, as "DEPTH TYPE [:VALUE]", the depth
# counted from the OID's (an attribute's type, then its SET of values).
asn1_after() {
	openssl asn1parse -inform DER -in "$1" >"$T/asn1.txt" || fail "asn1parse $1"
	awk -v oid="OBJECT :$2" -v n="$3" '
		{ match($0, /d=[0-9]+/); d = substr($0, RSTART + 2, RLENGTH - 2) + 0
		  sub(/^.*(prim|cons): */, ""); gsub(/ +/, " "); sub(/ $/, "") }
		found && n-- > 0 { print d - base, $0 }
		!found && $0 == oid { found = 1; base = d }' "$T/asn1.txt"
}

test_cms_rfc4108_signed_attributes_and_their_checks() {
	fw_setup
	krcms --signer firmware --out "$T/signed" "$T/fw.bin" 2>/dev/null
	local p7s=$T/signed/fw.bin.p7s pkg=1.3.6.1.4.1.32473.1.1 hw=1.3.6.1.4.1.32473.2
	# RFC 4108 2.2.3: FirmwarePackageIdentifier, preferred form { fwPkgID, verNum }
	[ "$(asn1_after "$p7s" 1.2.840.113549.1.9.16.2.35 5)" = "$(printf '%s\n' '0 SET' '1 SEQUENCE' \
		'2 SEQUENCE' "3 OBJECT :$pkg" '3 INTEGER :07')" ] || fail "firmware-package-identifier: $(cat "$T/asn1.txt")"
	# 2.2.4: TargetHardwareIdentifiers, a SEQUENCE OF OID (the signer's two)
	[ "$(asn1_after "$p7s" 1.2.840.113549.1.9.16.2.36 4)" = "$(printf '%s\n' '0 SET' '1 SEQUENCE' \
		"2 OBJECT :$hw.1" "2 OBJECT :$hw.2")" ] || fail "target-hardware-module-identifiers"
	# signed: the attributes are under the signature openssl checks
	cms_verify "$p7s" "$T/fw.bin" || { cat "$T/cms.err"; fail "signature"; }
	has "package $pkg version 7 for $hw.1, $hw.2" kr fw verify --root "$T/ca/root.pem" \
		--content "$T/fw.bin" --expect-version 7 --package "$pkg" --hardware "$hw.2" "$p7s"
	expect 8 "package version 7, expected 8" kr fw verify --root "$T/ca/root.pem" --content "$T/fw.bin" \
		--expect-version 8 "$p7s"
	expect 8 "not for hardware $hw.3" kr fw verify --root "$T/ca/root.pem" --content "$T/fw.bin" \
		--hardware "$hw.3" "$p7s"
	expect 8 "package $pkg, expected 1.3.6.1.4.1.32473.1.9" kr fw verify --root "$T/ca/root.pem" \
		--content "$T/fw.bin" --package 1.3.6.1.4.1.32473.1.9 "$p7s"
	# the command line names another package and hardware than the signer's
	cp "$T/fw.bin" "$T/other.bin"
	krfw --signer firmware --out "$T/signed" --package 1.3.6.1.4.1.32473.1.5 --package-version 0 \
		--hardware 1.3.6.1.4.1.32473.2.9 --embed "$T/other.bin" 2>/dev/null
	has "package 1.3.6.1.4.1.32473.1.5 version 0 for 1.3.6.1.4.1.32473.2.9;" kr fw verify \
		--root "$T/ca/root.pem" "$T/signed/other.bin.p7m"
	# recorded, in the audit entry too
	[ "$(audit_list --kind firmware | grep -c "package=$pkg package-version=7")" -eq 1 ]
	# a package must say what it is: refused before the token signs anything
	expect 2 "give --package-version N" krfw --signer firmware --out "$T/signed" "$T/fw.bin"
	expect 2 "--package-version -1: a number" krfw --signer firmware --package-version -1 "$T/fw.bin"
	expect 2 "package 'x.y': not an object identifier" krcms --signer firmware --package x.y "$T/fw.bin"
	cp "$T/ca/keyrite.cnf" "$T/ca/good.cnf"
	sed -i '/^package *=/d; /^hardware *=/d' "$T/ca/keyrite.cnf"
	expect 2 "set package = OID in [signer_firmware], or give --package OID" krcms --signer firmware "$T/fw.bin"
	expect 2 "set hardware = OID... in [signer_firmware]" krcms --signer firmware --package "$pkg" "$T/fw.bin"
	sed -i '/^\[signer_firmware\]/a package = 1.2.x' "$T/ca/keyrite.cnf"
	expect 3 "'1.2.x' is not an object identifier" krcms --signer firmware "$T/fw.bin"
	[ "$(kr fw list --config "$T/ca/good.cnf" | wc -l)" -eq 2 ] || fail "a refused run recorded something"
	# the same signer's key, through the OpenSSL pkcs11 engine: a good
	# signature, but without RFC 4108's attributes it is not a package
	openssl cms -sign -binary -nodetach -outform DER -in "$T/fw.bin" -signer "$T/ca/firmware-signer.pem" \
		-certfile "$T/ca/subca-firmware.pem" -econtent_type 1.2.840.113549.1.9.16.1.16 \
		-engine pkcs11 -keyform engine \
		-inkey "$FW_URI;type=private?pin-source=file:$T/pin" -out "$T/plain.p7m" >"$T/engine.out" 2>&1 ||
		{ cat "$T/engine.out"; fail "openssl cms -sign on the token"; }
	cms_verify "$T/plain.p7m" || { cat "$T/cms.err"; fail "the engine's signature"; }
	expect 8 "lacks the firmware-package-identifier signed attribute" kr fw verify \
		--root "$T/ca/root.pem" "$T/plain.p7m"
}

# der_len N: DER length octets for N, in hex.
der_len() {
	if (($1 < 128)); then printf '%02x' "$1"
	elif (($1 < 256)); then printf '81%02x' "$1"
	elif (($1 < 65536)); then printf '82%04x' "$1"
	else printf '83%06x' "$1"; fi
}

# content_info OIDHEX FILE: ContentInfo { contentType, [0] EXPLICIT the DER
# in FILE } (RFC 5652 section 3), which openssl cms reads.
content_info() {
	local n ex body
	n=$(stat -c %s "$2") || fail "$2"
	ex=a0$(der_len "$n")
	body=$((${#1} / 2 + ${#ex} / 2 + n))
	{ xxd -r -p <<<"30$(der_len "$body")$1$ex"; cat "$2"; } || fail "content_info $2"
}

test_cms_rfc4108_encrypted_package_decrypts_with_openssl() {
	fw_setup
	head -c 32 /dev/urandom >"$T/kek.bin"
	head -c 1500000 /dev/urandom >"$T/big.bin" # several reads and token calls
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-devices --login --pin env:KR_TEST_PIN \
		--write-object "$T/kek.bin" --type secrkey --key-type AES:32 --label fw-class-a --id 0a0b0c \
		--usage-decrypt --sensitive >/dev/null 2>&1
	krcms --signer firmware --out "$T/signed" --encrypt-kek fw-class-a "$T/big.bin" 2>/dev/null
	local p7e=$T/signed/big.bin.p7e sig=$T/signed/big.bin.p7e.p7s
	# RFC 4108 2.1.2: SignedData over EncryptedData, the key named by its id
	cms_verify "$sig" "$p7e" || { cat "$T/cms.err"; fail "signature"; }
	openssl cms -cmsout -print -inform DER -in "$sig" >"$T/sig.txt"
	grep -q 'eContentType: pkcs7-encryptedData (1.2.840.113549.1.7.6)' "$T/sig.txt" || fail "eContentType"
	[ "$(asn1_after "$sig" 1.2.840.113549.1.9.16.2.37 2)" = "$(printf '%s\n' '0 SET' '1 OCTET STRING [HEX DUMP]:0A0B0C')" ] ||
		fail "decrypt-key-identifier"
	asn1_after "$sig" 1.2.840.113549.1.9.16.2.35 1 | grep -q SET || fail "no package identifier"
	# EncryptedData, version 0, the package encrypted with AES-256-CBC
	openssl asn1parse -inform DER -in "$p7e" >"$T/p7e.txt"
	grep -q 'OBJECT *:id-smime-ct-\|OBJECT *:1.2.840.113549.1.9.16.1.16' "$T/p7e.txt" || fail "inner content type"
	grep -q 'OBJECT *:aes-256-cbc' "$T/p7e.txt" || fail "cipher"
	[ "$(stat -c %s "$p7e")" -gt 1500000 ] || fail "ciphertext size"
	content_info 06092a864886f70d010706 "$p7e" >"$T/ci.der"
	openssl cms -EncryptedData_decrypt -binary -inform DER -in "$T/ci.der" \
		-secretkey "$(od -An -tx1 -v "$T/kek.bin" | tr -d ' \n')" -out "$T/plain.bin"
	cmp "$T/plain.bin" "$T/big.bin" || fail "decrypted package differs"
	# docs/firmware.md's way, openssl asn1parse and enc: the IV and the ciphertext
	local iv at
	iv=$(awk -F: '/OCTET STRING/ { print $NF; exit }' "$T/p7e.txt")
	at=$(awk '/cont \[ 0 \]/ { split($1, o, ":"); sub("hl=", "", $2); print o[1] + $2; exit }' "$T/p7e.txt")
	tail -c +$((at + 1)) "$p7e" | openssl enc -d -aes-256-cbc -K "$(od -An -tx1 -v "$T/kek.bin" | tr -d ' \n')" \
		-iv "$iv" -out "$T/plain2.bin"
	cmp "$T/plain2.bin" "$T/big.bin" || fail "the documented decryption"
	if openssl cms -EncryptedData_decrypt -binary -inform DER -in "$T/ci.der" \
		-secretkey "$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" -out "$T/x.bin" 2>/dev/null &&
		cmp -s "$T/x.bin" "$T/big.bin"; then fail "a wrong key decrypted"; fi
	has "decrypt key id 0a0b0c; EncryptedData, detached" kr fw verify --root "$T/ca/root.pem" \
		--content "$p7e" "$sig"
	# encapsulated: the EncryptedData comes out of the signature
	krcms --signer firmware --out "$T/signed" --encrypt-kek fw-class-a --embed "$T/fw.bin" 2>/dev/null
	cms_verify "$T/signed/fw.bin.p7e.p7m" || { cat "$T/cms.err"; fail "embedded"; }
	cmp "$T/cms.out" "$T/signed/fw.bin.p7e"
	# the forms that are not RFC 4108's are asked for by name
	expect 2 "give --authenveloped (RFC 5083, not RFC 4108)" krcms --signer firmware --out "$T/signed" \
		--encrypt-to "$T/ca/firmware-signer.pem" "$T/fw.bin"
	expect 2 "for several give --authenveloped" krcms --signer firmware --out "$T/signed" \
		--encrypt-kek fw-class-a --encrypt-kek fw-class-b "$T/fw.bin"
	expect 2 "--authenveloped is a form of encryption" krcms --signer firmware --authenveloped "$T/fw.bin"
	# the device's class key of 128 bits: AES-128-CBC
	head -c 16 /dev/urandom >"$T/kek16.bin"
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-devices --login --pin env:KR_TEST_PIN \
		--write-object "$T/kek16.bin" --type secrkey --key-type AES:16 --label fw-class-b --id 0b \
		--usage-decrypt --sensitive >/dev/null 2>&1
	cp "$T/fw.bin" "$T/fw16.bin"
	krcms --signer firmware --out "$T/signed" --encrypt-kek fw-class-b "$T/fw16.bin" 2>/dev/null
	content_info 06092a864886f70d010706 "$T/signed/fw16.bin.p7e" >"$T/ci16.der"
	openssl cms -EncryptedData_decrypt -binary -inform DER -in "$T/ci16.der" \
		-secretkey "$(od -An -tx1 -v "$T/kek16.bin" | tr -d ' \n')" -out "$T/plain16.bin"
	cmp "$T/plain16.bin" "$T/fw16.bin"
	expect 3 "key-wrap recipients take AES-256 keys" krcms --signer firmware --out "$T" \
		--authenveloped --encrypt-kek fw-class-b "$T/fw16.bin"
	[ "$(fw_list | wc -l)" -eq 3 ]
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# Little-endian field of N bytes at OFFSET.
le() {
	local v
	v=$(od -An -tu"$3" -j "$2" -N "$3" --endian=little "$1") || fail "od cannot read $1"
	[ -n "$v" ] || fail "$1: nothing at offset $2"
	echo "${v// /}"
}

# Cuts an MCUboot image as a device maker would, from its header fields:
# $T/region.bin (header + image + protected TLVs, the signed part) and
# $T/tlv-<type>.bin for each TLV of the area after it.
mcu_slice() {
	local f=$1 hs is ps end tot at t l
	hs=$(le "$f" 8 2) ps=$(le "$f" 10 2) is=$(le "$f" 12 4)
	[ "$(le "$f" 0 4)" -eq $((0x96f3b83d)) ] || fail "$f: no MCUboot magic"
	end=$((hs + is + ps))
	head -c "$end" "$f" >"$T/region.bin"
	[ "$(le "$f" "$end" 2)" -eq $((0x6907)) ] || fail "$f: no TLV area at $end"
	tot=$(le "$f" $((end + 2)) 2)
	[ $((end + tot)) -eq "$(stat -c %s "$f")" ] || fail "$f: TLV total does not end the file"
	rm -f "$T"/tlv-*.bin
	for ((at = end + 4; at < end + tot; at += 4 + l)); do
		t=$(le "$f" "$at" 2) l=$(le "$f" $((at + 2)) 2)
		tail -c +$((at + 5)) "$f" | head -c "$l" >"$T/tlv-$t.bin"
	done
}

# mcu_check FILE SIGNER: hash, key hash and signature, with openssl only.
mcu_check() {
	local f=$1 pub=$T/$2.pub md=sha256 hash=16
	mcu_slice "$f"
	[ -e "$T/tlv-17.bin" ] && md=sha384 hash=17
	openssl dgst -"$md" -binary "$T/region.bin" | cmp - "$T/tlv-$hash.bin"
	if grep -q 'BEGIN PUBLIC KEY' "$pub" && openssl pkey -pubin -in "$pub" -text -noout | grep -q '^RSA\|Modulus'; then
		openssl rsa -pubin -in "$pub" -RSAPublicKey_out -outform DER 2>/dev/null | openssl dgst -"$md" -binary | cmp - "$T/tlv-1.bin"
	else
		openssl pkey -pubin -in "$pub" -outform DER | openssl dgst -"$md" -binary | cmp - "$T/tlv-1.bin"
	fi
	if [ -e "$T/tlv-34.bin" ]; then
		openssl dgst -"$md" -verify "$pub" -signature "$T/tlv-34.bin" "$T/region.bin" >/dev/null
	elif [ -e "$T/tlv-35.bin" ]; then
		openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
			-verify "$pub" -signature "$T/tlv-35.bin" "$T/region.bin" >/dev/null
	else
		openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$T/tlv-16.bin" \
			-sigfile "$T/tlv-36.bin" >/dev/null
	fi
}

test_mcuboot_every_key_type_verifies_by_region_slicing() {
	slow_unwind # Ed25519 on SoftHSM
	fw_setup
	head -c 65536 /dev/urandom >"$T/app.bin"
	local raw=(--format mcuboot --header-size 0x200 --pad-header --load-addr 0x8000 --version 1.2.3+4)
	krfw --signer firmware "${raw[@]}" --out "$T/signed" "$T/app.bin" 2>/dev/null
	mcu_check "$T/signed/app.signed.bin" firmware
	[ "$(le "$T/signed/app.signed.bin" 4 4)" -eq $((0x8000)) ]
	[ "$(le "$T/signed/app.signed.bin" 16 4)" -eq $((0x20)) ] || fail "a load address without IMAGE_F_RAM_LOAD"
	[ "$(le "$T/signed/app.signed.bin" 20 1)" -eq 1 ] || fail "major version"
	[ "$(le "$T/signed/app.signed.bin" 24 4)" -eq 4 ] || fail "build number"
	cmp <(tail -c +513 "$T/region.bin") "$T/app.bin"
	has "version 1.2.3+4" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
		--cert "$T/firmware-chain.pem" --expect-version 1.2.3+4 "$T/signed/app.signed.bin"
	expect 8 "expected 1.2.4" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
		--cert "$T/firmware-chain.pem" --expect-version 1.2.4 "$T/signed/app.signed.bin"

	# the vendor's build: a header already there, and protected TLVs after the image
	head -c 512 "$T/signed/app.signed.bin" >"$T/vendor.bin"
	cat "$T/app.bin" >>"$T/vendor.bin"
	printf '\x08\x69\x0c\x00\x50\x00\x04\x00\x07\x00\x00\x00' >>"$T/vendor.bin" # 0x6908, 12 bytes, TLV 0x50
	printf '\x0c\x00' | dd of="$T/vendor.bin" bs=1 seek=10 conv=notrunc 2>/dev/null
	for k in ec-p384 ed25519 rsa-3072; do
		kr hsm keygen "pkcs11:token=keyrite-devices;object=fw-$k" --type "$k" --pin-file "$T/pin" >/dev/null
		fw_signer "s${k//-/}" "pkcs11:token=keyrite-devices;object=fw-$k"
		krfw --signer "s${k//-/}" --format mcuboot --out "$T/signed" "$T/vendor.bin" 2>/dev/null
		mv "$T/signed/vendor.signed.bin" "$T/signed/vendor-$k.bin"
		mcu_check "$T/signed/vendor-$k.bin" "s${k//-/}"
		[ "$(le "$T/region.bin" 10 2)" -eq 12 ] || fail "protected TLV size"
		cmp <(tail -c 12 "$T/region.bin") <(tail -c 12 "$T/vendor.bin")
		has "good MCUboot signature ($k)" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
			--cert "$T/s${k//-/}-chain.pem" "$T/signed/vendor-$k.bin"
		# the same signer in CMS: ECDSA and RSA PKCS#1 v1.5; Ed25519 is MCUboot's only
		cp "$T/fw.bin" "$T/fw-$k.bin"
		if [ "$k" = ed25519 ]; then
			expect 3 "CMS needs an ECDSA or RSA key" krcms --signer sed25519 --out "$T/signed" "$T/fw-$k.bin"
		else
			krcms --signer "s${k//-/}" --out "$T/signed" "$T/fw-$k.bin" 2>/dev/null
			cms_verify "$T/signed/fw-$k.bin.p7s" "$T/fw-$k.bin" || { cat "$T/cms.err"; fail "CMS $k"; }
		fi
	done
	# a tampered image fails by the same slicing, and for keyrite
	cp "$T/signed/app.signed.bin" "$T/bad.bin"
	flip_byte "$T/bad.bin" 4000
	mcu_slice "$T/bad.bin"
	! openssl dgst -sha256 -verify "$T/firmware.pub" -signature "$T/tlv-34.bin" "$T/region.bin" >/dev/null 2>&1 ||
		fail "tampered image verified"
	expect 8 "image altered" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
		--cert "$T/firmware-chain.pem" "$T/bad.bin"
}

# hexle VALUE BYTES: VALUE little-endian, in hex.
hexle() {
	local i
	for ((i = 0; i < $2; i++)); do printf '%02x' $((($1 >> (8 * i)) & 255)); done
}

# imgtool_header LOAD HDR_SIZE IMG_SIZE FLAGS MAJOR MINOR REVISION BUILD: the
# 32 bytes imgtool's image.py writes (struct "<IIHHIIBBHII": magic, load
# address, header size, protected TLV size 0, image size, flags, version, 0).
imgtool_header() {
	xxd -r -p <<<"$(hexle $((0x96f3b83d)) 4)$(hexle "$1" 4)$(hexle "$2" 2)0000$(hexle "$3" 4)$(hexle "$4" 4)$(hexle "$5" 1)$(hexle "$6" 1)$(hexle "$7" 2)$(hexle "$8" 4)00000000"
}

test_mcuboot_headers_are_imgtools_for_both_layouts() {
	fw_setup
	local mcu=(--signer firmware --format mcuboot --out "$T/signed") f
	head -c 40000 /dev/urandom >"$T/code.bin"
	# Zephyr's zephyr.bin for MCUboot: 0x200 zero bytes where the header goes
	cat <(head -c 512 /dev/zero) "$T/code.bin" >"$T/zephyr.bin"
	expect 3 "give --header-size and --version" krfw "${mcu[@]}" "$T/zephyr.bin"
	grep -q "begins with that many zero bytes" "$T/expect.err" || fail "the hint"
	krfw "${mcu[@]}" --header-size 0x200 --version 1.2.3+4 "$T/zephyr.bin" 2>/dev/null
	f=$T/signed/zephyr.signed.bin
	mcu_check "$f" firmware
	cmp <(head -c 32 "$f") <(imgtool_header 0 512 40000 0 1 2 3 4) || fail "not imgtool's header"
	cmp <(head -c 512 "$f" | tail -c 480) <(head -c 480 /dev/zero) || fail "the reserved area changed"
	cmp <(tail -c +513 "$T/region.bin") "$T/code.bin" || fail "the code is not at 0x200"
	has "version 1.2.3+4" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
		--cert "$T/firmware-chain.pem" "$f"
	# an image that does not reserve the header: refused, with the way out
	expect 3 "does not begin with 512 zero bytes" krfw "${mcu[@]}" --header-size 0x200 --version 1.0 \
		"$T/code.bin"
	grep -q "give --pad-header" "$T/expect.err" || fail "the hint"
	# --pad-header: in front, over erased flash (0xff, or --erased-val 0); a
	# load address is a RAM-loading image (IMAGE_F_RAM_LOAD)
	krfw "${mcu[@]}" --header-size 0x200 --pad-header --load-addr 0x20000000 --version 2.0 \
		"$T/code.bin" 2>/dev/null
	f=$T/signed/code.signed.bin
	mcu_check "$f" firmware
	cmp <(head -c 32 "$f") <(imgtool_header $((0x20000000)) 512 40000 $((0x20)) 2 0 0 0) ||
		fail "not imgtool's header (--pad-header --load-addr)"
	cmp <(head -c 512 "$f" | tail -c 480) <(head -c 480 /dev/zero | tr '\0' '\377') || fail "not 0xff"
	cmp <(tail -c +513 "$T/region.bin") "$T/code.bin"
	cp "$T/code.bin" "$T/code0.bin"
	krfw "${mcu[@]}" --header-size 0x100 --pad-header --erased-val 0 --version 0.1.0+9 "$T/code0.bin" 2>/dev/null
	f=$T/signed/code0.signed.bin
	mcu_check "$f" firmware
	cmp <(head -c 256 "$f") <(imgtool_header 0 256 40000 0 0 1 0 9; head -c 224 /dev/zero)
}

test_mcuboot_unsigned_imgtool_output_signed_and_a_signed_one_refused() {
	fw_setup
	local mcu=(--signer firmware --format mcuboot --out "$T/signed")
	head -c 30000 /dev/urandom >"$T/code.bin"
	# imgtool create --version 1.0.0 --header-size 0x200 --pad-header code.bin app.bin,
	# without a key: header, image, and an unprotected TLV area holding the
	# image's SHA-256 alone
	{ imgtool_header 0 512 30000 0 1 0 0 0; head -c 480 /dev/zero | tr '\0' '\377'; cat "$T/code.bin"; } >"$T/app.region"
	{ cat "$T/app.region"; xxd -r -p <<<"$(hexle $((0x6907)) 2)$(hexle 40 2)$(hexle 16 2)$(hexle 32 2)"
	  openssl dgst -sha256 -binary "$T/app.region"; } >"$T/app.bin"
	krfw "${mcu[@]}" "$T/app.bin" 2>/dev/null
	mcu_check "$T/signed/app.signed.bin" firmware
	cmp "$T/region.bin" "$T/app.region" || fail "header or image changed"
	[ "$(ls "$T"/tlv-*.bin | wc -l)" -eq 3 ] || fail "the unsigned TLV area was not replaced"
	# changed after imgtool hashed it
	cp "$T/app.bin" "$T/changed.bin"
	flip_byte "$T/changed.bin" 2000
	expect 3 "its SHA-256 TLV is not the image's" krfw "${mcu[@]}" "$T/changed.bin"
	# signed already, or not a TLV area after the image
	expect 3 "already signed (its TLV area holds signature TLV 0x22)" krfw "${mcu[@]}" "$T/signed/app.signed.bin"
	{ cat "$T/app.region"; printf 'junk'; } >"$T/junk.bin"
	expect 3 "are not a TLV area" krfw "${mcu[@]}" "$T/junk.bin"
	assert_absent "$T/signed/changed.signed.bin" "$T/signed/junk.signed.bin"
}

test_mcuboot_ecies_copies_share_one_signature_and_decrypt_with_openssl() {
	fw_setup
	head -c 70001 /dev/urandom >"$T/app.bin" # 256 + 70001 + 15 zeros: imgtool's 16-byte alignment
	for c in classa classb; do
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$c.key" 2>/dev/null
		openssl pkey -in "$T/$c.key" -pubout -out "$T/$c.pub.pem"
	done
	krfw --signer firmware --format mcuboot --header-size 256 --pad-header --version 2.0 \
		--encrypt-to "$T/classa.pub.pem" --encrypt-to "$T/classb.pub.pem" --out "$T/signed" "$T/app.bin" 2>/dev/null
	[ "$(fw_list | wc -l)" -eq 1 ]
	# one after the other: mcu_slice writes the same files each time
	mcu_slice "$T/signed/app.classa.enc.bin"
	cp "$T/tlv-34.bin" "$T/classa.sig"
	mcu_slice "$T/signed/app.classb.enc.bin"
	cmp "$T/classa.sig" "$T/tlv-34.bin" || fail "the copies do not share one signature"
	local zero=00000000000000000000000000000000 spki=3059301306072a8648ce3d020106082a8648ce3d030107034200
	for c in classa classb; do
		local f=$T/signed/app.$c.enc.bin
		mcu_slice "$f"
		[ $(($(le "$f" 16 4) & 4)) -eq 4 ] || fail "encrypted flag not set"
		[ "$(stat -c %s "$T/tlv-50.bin")" -eq 113 ]
		[ "$(le "$f" 12 4)" -eq 70016 ] || fail "img_size $(le "$f" 12 4): not padded to 16 bytes"
		# ECIES-P256 as MCUboot's bootloader does it
		(printf %s "$spki"; head -c 65 "$T/tlv-50.bin" | od -An -tx1 -v | tr -d ' \n') | xxd -r -p >"$T/eph.der"
		openssl pkey -pubin -inform DER -in "$T/eph.der" -out "$T/eph.pem"
		openssl pkeyutl -derive -inkey "$T/$c.key" -peerkey "$T/eph.pem" -out "$T/shared.bin"
		openssl kdf -keylen 48 -binary -kdfopt digest:SHA256 -kdfopt info:MCUBoot_ECIES_v1 \
			-kdfopt hexkey:"$(od -An -tx1 -v "$T/shared.bin" | tr -d ' \n')" -out "$T/okm.bin" HKDF
		tail -c 16 "$T/tlv-50.bin" >"$T/ck.bin"
		openssl mac -digest SHA256 -macopt hexkey:"$(tail -c 32 "$T/okm.bin" | od -An -tx1 -v | tr -d ' \n')" \
			-in "$T/ck.bin" -binary HMAC | cmp - <(head -c 97 "$T/tlv-50.bin" | tail -c 32)
		openssl enc -d -aes-128-ctr -K "$(head -c 16 "$T/okm.bin" | od -An -tx1 -v | tr -d ' \n')" -iv $zero \
			-in "$T/ck.bin" -out "$T/imgkey.bin"
		head -c $((256 + 70016)) "$f" | tail -c 70016 |
			openssl enc -d -aes-128-ctr -K "$(od -An -tx1 -v "$T/imgkey.bin" | tr -d ' \n')" -iv $zero -out "$T/plain.bin"
		cmp "$T/plain.bin" <(cat "$T/app.bin"; head -c 15 /dev/zero)
		# the signature covers the plaintext under the encrypted header
		cat <(head -c 256 "$f") "$T/plain.bin" >"$T/plain-region.bin"
		openssl dgst -sha256 -verify "$T/firmware.pub" -signature "$T/tlv-34.bin" "$T/plain-region.bin" >/dev/null
		! cmp -s <(head -c $((256 + 70001)) "$f" | tail -c 70001) "$T/app.bin" || fail "not encrypted"
	done
	expect 2 "verify the plain image" kr fw verify --format mcuboot --root "$T/ca/root.pem" \
		--cert "$T/firmware-chain.pem" "$T/signed/app.classa.enc.bin"
}

test_fw_bad_inputs_one_message_each_and_the_batch_goes_on() {
	fw_setup
	local mcu=(--signer firmware --format mcuboot --out "$T/signed")
	expect 7 "nope.bin: cannot open" krcms --signer firmware --out "$T/signed" "$T/nope.bin"
	: >"$T/empty.bin"
	expect 3 "empty.bin: empty image" krcms --signer firmware --out "$T/signed" "$T/empty.bin"
	expect 3 "no MCUboot header (magic 0x" krfw "${mcu[@]}" "$T/fw.bin"
	# sizes that do not match the file
	printf '\x3d\xb8\xf3\x96\0\0\0\0\x20\0\0\0\xff\0\0\0' >"$T/short.bin"
	head -c 16 /dev/zero >>"$T/short.bin"
	head -c 100 /dev/urandom >>"$T/short.bin"
	expect 3 "header says 32 + 255 + 0 bytes" krfw "${mcu[@]}" "$T/short.bin"
	printf '\x3d\xb8\xf3\x96\0\0\0\0\x10\0\0\0\x04\0\0\0' >"$T/tiny.bin"
	head -c 20 /dev/zero >>"$T/tiny.bin"
	expect 3 "header size 16 is below 32" krfw "${mcu[@]}" "$T/tiny.bin"
	head -c 1000 /dev/urandom >"$T/app.bin"
	krfw "${mcu[@]}" --header-size 32 --pad-header --version 1.0 "$T/app.bin" 2>/dev/null
	expect 3 "already signed (its TLV area holds signature TLV 0x22)" krfw "${mcu[@]}" "$T/signed/app.signed.bin"
	expect 2 "already has an MCUboot header" krfw "${mcu[@]}" --header-size 32 --pad-header --version 1.0 \
		"$T/signed/app.signed.bin"
	expect 6 "already exists" krfw "${mcu[@]}" --header-size 32 --pad-header --version 1.0 "$T/app.bin"
	expect 2 "needs --header-size and --version" krfw "${mcu[@]}" --header-size 32 "$T/app.bin"
	expect 2 "needs --header-size and --version" krfw "${mcu[@]}" --pad-header --version 1.0 "$T/app.bin"
	expect 2 "expected MAJOR[.MINOR" krfw "${mcu[@]}" --header-size 32 --pad-header --version 1.x "$T/app.bin"
	expect 2 "--erased-val 7: 0 or 0xff" krfw "${mcu[@]}" --header-size 32 --pad-header --erased-val 7 \
		--version 1.0 "$T/app.bin"
	expect 2 "--erased-val is the fill" krfw "${mcu[@]}" --header-size 32 --erased-val 0 --version 1.0 "$T/app.bin"
	expect 2 "are for --format cms" krfw "${mcu[@]}" --package-version 3 "$T/app.bin"
	expect 2 "are for --format mcuboot" krcms --signer firmware --header-size 32 --version 1.0 "$T/app.bin"
	# recipients without a usable key
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/p384.key" 2>/dev/null
	openssl pkey -in "$T/p384.key" -pubout -out "$T/p384.pub.pem"
	cp "$T/app.bin" "$T/app2.bin"
	expect 3 "ECIES-P256" krfw "${mcu[@]}" --header-size 32 --pad-header --version 1.0 \
		--encrypt-to "$T/p384.pub.pem" "$T/app2.bin"
	assert_absent "$T/signed/app2.p384.enc.bin"
	cp "$T/fw.bin" "$T/fw2.bin"
	expect 3 "CMS needs a certificate" krcms --signer firmware --out "$T/signed" --authenveloped \
		--encrypt-to "$T/p384.pub.pem" "$T/fw2.bin"
	expect 3 "no valid certificate in the store" krcms --signer firmware --out "$T/signed" --authenveloped \
		--encrypt-to-device ghost "$T/fw2.bin"
	expect 3 "neither a PEM certificate" krcms --signer firmware --out "$T/signed" --encrypt-to "$T/fw.bin" "$T/fw2.bin"
	expect 4 "no AES key labelled 'nokek'" krcms --signer firmware --out "$T/signed" --encrypt-kek nokek "$T/fw2.bin"
	# a token failure ends a batch at its image, whatever the other worker was doing
	local st=0 before
	before=$(fw_list | wc -l)
	krcms --signer firmware --out "$T/signed" --json --encrypt-kek nokek "$T/fw2.bin" "$T/fw.bin" \
		"$T/app.bin" >"$T/kek.json" 2>"$T/err" || st=$?
	[ $st -eq 4 ] || fail "token failure in a batch: exit $st"
	[ "$(grep -c "no AES key labelled 'nokek'" "$T/err")" -eq 1 ] || fail "one message, not $(cat "$T/err")"
	[ "$(wc -l <"$T/kek.json")" -eq 1 ] && grep -q '"file":"[^"]*fw2.bin","status":"failed"' "$T/kek.json" ||
		fail "one report, for the first image: $(cat "$T/kek.json")"
	[ "$(fw_list | wc -l)" = "$before" ] || fail "a record after a token failure"
	assert_absent "$T/signed/fw.bin.p7e" "$T/signed/fw.bin.p7e.p7s" "$T/signed/app.bin.p7e"
	ls "$T/signed" | grep -q fw2 && fail "a failed image left output"
	# a batch goes on past a bad image: exit 1, the good ones signed
	local st=0
	krcms --signer firmware --out "$T/signed" "$T/fw.bin" "$T/nope.bin" "$T/fw2.bin" 2>"$T/err" || st=$?
	[ $st -eq 1 ] || fail "batch exit $st"
	grep -q "nope.bin: cannot open" "$T/err" || fail "no message for the missing image"
	grep -q "2 signed, 1 failed" "$T/err" || fail "no batch summary"
	assert_exists "$T/signed/fw.bin.p7s" "$T/signed/fw2.bin.p7s"
	st=0
	krcms --signer firmware --out "$T/signed" "$T/nope.bin" "$T/empty.bin" 2>/dev/null || st=$?
	[ $st -eq 9 ] || fail "all failed: exit $st"
	# two images that would write the same output in one run: the second fails alone
	mkdir "$T/d1" "$T/d2"
	cp "$T/fw.bin" "$T/d1/same.bin"
	cp "$T/fw2.bin" "$T/d2/same.bin"
	st=0
	krcms --signer firmware --out "$T/signed" "$T/d1/same.bin" "$T/d2/same.bin" 2>"$T/err" || st=$?
	[ $st -eq 1 ] || fail "same output name: exit $st"
	grep -q "same.bin.p7s: another image of this run has the same output name" "$T/err" ||
		fail "no message for the clashing output"
	cms_verify "$T/signed/same.bin.p7s" "$T/d1/same.bin" || fail "the first image's signature"
}

# More images than a chunk, signed side by side by two workers (the
# example's default), with bad ones among them: reports, records and the
# audit chain stay in input order, and every signature is openssl's good one.
test_fw_batch_of_many_chunks_in_input_order() {
	fw_setup
	mkdir "$T/many"
	local i list=()
	for i in $(seq -w 1 150); do
		head -c $((4096 + 10#$i)) /dev/urandom >"$T/many/fw$i.bin"
		list+=("$T/many/fw$i.bin")
	done
	: >"$T/many/fw040.bin"           # empty
	list[99]=$T/many/missing.bin     # not there
	local st=0
	krcms --signer firmware --out "$T/signed" --json "${list[@]}" >"$T/many.json" 2>"$T/err" || st=$?
	[ $st -eq 1 ] || { cat "$T/err"; fail "exit $st"; }
	grep -q "148 signed, 2 failed" "$T/err" || fail "summary: $(tail -1 "$T/err")"
	# one JSON line per image, in input order
	[ "$(wc -l <"$T/many.json")" -eq 150 ] || fail "JSON lines"
	printf '%s\n' "${list[@]}" >"$T/want.order"
	sed 's/^{"file":"\([^"]*\)".*/\1/' "$T/many.json" >"$T/got.order"
	cmp -s "$T/want.order" "$T/got.order" || fail "reports out of input order"
	grep '"file":"[^"]*fw040.bin"' "$T/many.json" | grep -q '"status":"failed"' || fail "empty image"
	grep '"file":"[^"]*missing.bin"' "$T/many.json" | grep -q '"status":"failed"' || fail "missing"
	# recorded in input order, one row per signed image, and each verifies
	fw_list | sed 's/.*"file":"\([^"]*\)".*/\1/' >"$T/rec.order"
	grep -v -e fw040.bin -e missing.bin "$T/want.order" | cmp -s - "$T/rec.order" ||
		fail "records out of input order"
	for f in "${list[@]}"; do
		case $f in *fw040.bin | *missing.bin) continue ;; esac
		cms_verify "$T/signed/$(basename "$f").p7s" "$f" || { cat "$T/cms.err"; fail "$f"; }
	done
	assert_absent "$T/signed/fw040.bin.p7s" "$T/signed/missing.bin.p7s"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# small_images N: N images of 4 KiB, $T/imgs/fw0.bin and on.
small_images() {
	mkdir -p "$T/imgs"
	head -c $(($1 * 4096)) /dev/urandom |
		split -b 4096 -d -a ${#1} --additional-suffix=.bin - "$T/imgs/fw"
}

# after_kill WHEN OUT N: what a firmware batch of the N small images into OUT,
# killed (WHEN says how, for the messages), must leave: nothing but outputs,
# each with its record, five of them checked by openssl; a sound store. Then
# a run over the images without an output completes, the audit chain whole.
after_kill() {
	local when=$1 out=$2 n=$3 f i rest=()
	[ "$(db "pragma integrity_check")" = ok ] || fail "$when: integrity_check"
	[ "$(ls -A "$out" | grep -vc '\.p7s$')" -eq 0 ] ||
		fail "$when: stray files: $(ls -A "$out" | grep -v '\.p7s$' | head -3)"
	fw_list | { grep -o "\"$out/[^\"]*\"" || true; } | tr -d '"' | sort >"$T/recorded"
	find "$out" -name '*.p7s' | sort | comm -23 - "$T/recorded" >"$T/unrecorded"
	[ ! -s "$T/unrecorded" ] || fail "$when: outputs without a record: $(head -3 "$T/unrecorded")"
	for f in $(find "$out" -name '*.p7s' | shuf -n 5); do
		cms_verify "$f" "$T/imgs/$(basename "$f" .p7s)" || { cat "$T/cms.err"; fail "$when: $f"; }
	done
	for i in "$T"/imgs/*.bin; do [ -e "$out/${i##*/}.p7s" ] || rest+=("$i"); done
	krcms --signer firmware --out "$out" "${rest[@]}" 2>"$T/err" || { tail -3 "$T/err"; fail "$when: re-run"; }
	[ "$(ls "$out" | wc -l)" -eq "$n" ] || fail "$when: want $n outputs"
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# A firmware batch killed with SIGKILL at a random instant (its threads
# anywhere), not just after a commit.
test_fw_killed_batch_leaves_only_recorded_outputs() {
	fw_setup
	small_images 2000
	mkdir "$T/fwout"
	# keyrite itself in the background (not a shell function), so that the
	# SIGKILL reaches it.
	"$KEYRITE" fw sign --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --package-version 7 --signer firmware \
		--out "$T/fwout" "$T"/imgs/*.bin 2>/dev/null &
	local pid=$! n=0
	for _ in $(seq 500); do
		n=$(db_poll "SELECT count(*) FROM firmware")
		[ "${n:-0}" -ge 128 ] && break
		sleep 0.01
	done
	sleep "0.0$((RANDOM % 5))" # anywhere in a chunk
	kill -9 $pid
	wait $pid || true
	[ "$(fw_list | wc -l)" -lt 2000 ] || fail "the batch finished before it was killed"
	after_kill "killed" "$T/fwout" 2000
}

# The same, killed at exact points: in the middle of a transaction, before a
# commit is made durable, before the outputs' data and their names are
# synced, and before the first, a middle and the next chunk's first output
# is named.
test_fw_batch_killed_at_each_durable_step() {
	fw_setup
	small_images 200
	local k=0 out
	for at in pwrite64:20 fdatasync:1 fdatasync:2 syncfs:1 syncfs:2 linkat:1 linkat:30 linkat:65; do
		out=$T/fwout$((k += 1))
		mkdir "$out"
		killed_at "$at" fw sign --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" \
			--package-version 7 --signer firmware --out "$out" "$T"/imgs/*.bin
		after_kill "$at" "$out" 200
	done
}

# A disk that fills up (every write from then on failing) while the store
# records a chunk, while the outputs' data are synced, while they are named
# (the 30th), and while their directory is synced after: each time the run
# ends with one message and exit status 7; the images already named are
# reported, every output has its record, and nothing else is there.
test_fw_full_disk_ends_the_run_with_one_message() {
	fw_setup
	small_images 200
	local k=0 out at want signed rows
	for case in "pwrite64:60|$T/ca/registry.db: database or disk is full|64" \
		"syncfs:1|OUT: sync failed: No space left on device|0" \
		"linkat:30|OUT/fw029.bin.p7s: cannot create: No space left on device|29" \
		"syncfs:2|OUT: sync failed: No space left on device|64"; do
		IFS='|' read -r at want signed <<<"$case"
		out=$T/fwout$((k += 1))
		want=${want//OUT/$out}
		mkdir "$out"
		full_at "$at" fw sign --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" \
			--package-version 7 --signer firmware --out "$out" "$T"/imgs/*.bin
		[ $rc -eq 7 ] || { cat "$T/full.err"; fail "$at: exit status $rc, want 7"; }
		[ "$(head -1 "$T/full.err")" = "keyrite: $want" ] || { cat "$T/full.err"; fail "$at: message"; }
		[ "$(wc -l <"$T/full.err")" -eq 2 ] || { cat "$T/full.err"; fail "$at: want one message"; }
		grep -Eqx "keyrite: $signed signed, [01] failed" "$T/full.err" || { cat "$T/full.err"; fail "$at: summary"; }
		[ "$(ls "$out" | wc -l)" -eq "$signed" ] || fail "$at: want $signed outputs"
		fw_list | { grep -o "\"$out/[^\"]*\"" || true; } | tr -d '"' | sort >"$T/recorded"
		find "$out" -name '*.p7s' | sort | comm -23 - "$T/recorded" >"$T/unrecorded"
		[ ! -s "$T/unrecorded" ] || fail "$at: outputs without a record"
		[ "$(db "pragma integrity_check")" = ok ] || fail "$at: integrity_check"
	done
}

test_fw_signer_refused_when_wrong_key_revoked_or_expired() {
	fw_setup
	# the certificate of another key
	kr hsm keygen "pkcs11:token=keyrite-devices;object=other" --type ec-p256 --pin-file "$T/pin" >/dev/null
	kr hsm csr "pkcs11:token=keyrite-devices;object=other" --cn other --out "$T/other.csr" --pin-file "$T/pin" >/dev/null
	mkdir "$T/o"
	kri firmware_signer --out "$T/o" "$T/other.csr" 2>/dev/null
	cp "$T/ca/firmware-signer.pem" "$T/firmware.pem.good"
	cp "$(ls "$T"/o/*.pem | grep -v chain.pem)" "$T/ca/firmware-signer.pem"
	expect 8 "the key on the token is not the key of" krcms --signer firmware --out "$T/signed" "$T/fw.bin"
	cp "$T/firmware.pem.good" "$T/ca/firmware-signer.pem"
	expect 2 "no firmware signer named 'nobody'" krcms --signer nobody "$T/fw.bin"
	# past its validity (1095 days)
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		expect 8 "has expired" faketime -f '+1200d' "$KEYRITE" fw sign --config "$T/ca/keyrite.cnf" \
		--pin-file "$T/pin" --package-version 7 --signer firmware --out "$T/signed" "$T/fw.bin"
	# revoked
	kr revoke --config "$T/ca/keyrite.cnf" --pin-file "$T/pin" --ca firmware --reason keyCompromise \
		"$(openssl x509 -in "$T/ca/firmware-signer.pem" -noout -serial | cut -d= -f2)" >/dev/null 2>&1
	expect 8 "is revoked" krcms --signer firmware --out "$T/signed" "$T/fw.bin"
	assert_absent "$T/signed/fw.bin.p7s"
}

