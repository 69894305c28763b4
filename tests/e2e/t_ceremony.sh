# Ceremonies that succeed, checked with tools keyrite did not write.

test_root_subca_crl_chain_verifies_independently() {
	standard_ceremonies
	cd "$T/out"
	openssl verify -x509_strict -CAfile root.pem root.pem subca-devices.pem
	has "Chain verification output: Verified" certtool --verify-chain --infile <(cat subca-devices.pem root.pem)
	has "verify OK" openssl crl -in root.crl -CAfile root.pem -noout -verify
	# RFC 5280 method-1 SKI and an AKI on the root too (DANE PKIX discovery).
	ski=$(openssl x509 -in root.pem -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :')
	aki=$(openssl x509 -in root.pem -noout -ext authorityKeyIdentifier | tail -1 | tr -d ' :' | sed 's/^keyid//')
	[ -n "$ski" ] && [ "${ski^^}" = "${aki^^}" ] || fail "root AKI ($aki) != SKI ($ski)"
	has "DNS:iotregistry.ca" openssl x509 -in subca-devices.pem -noout -ext nameConstraints
	has "pathlen:0" openssl x509 -in subca-devices.pem -noout -ext basicConstraints
}

# The example CA keys are made for backup (backup = true): sensitive, and
# extractable only under a trusted key; the firmware-signing key is never
# extractable.
test_private_keys_are_sensitive_and_extractable_only_for_backup() {
	standard_ceremonies
	run_ceremony "$EX/firmware-key.cnf" >/dev/null
	for tok in keyrite-root keyrite-devices; do
		out=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label $tok --login \
			--pin env:KR_TEST_PIN --list-objects --type privkey)
		echo "$out"
		grep -q "Usage: *sign$" <<<"$out"
	done
	[ "$(grep -c '^Private Key Object' <<<"$out")" -eq 2 ] || fail "two keys on keyrite-devices"
	grep -A4 "label: *iotregistry-devices-2026" <<<"$out" |
		grep -q "Access: *sensitive, always sensitive, extractable, local" || fail "devices CA key"
	grep -A4 "label: *firmware-signer-2026" <<<"$out" |
		grep -q "Access: *sensitive, always sensitive, never extractable, local" || fail "firmware key"
	kr hsm keys "pkcs11:token=keyrite-root" --pin-file "$T/pin" |
		grep -q "CKA_EXTRACTABLE=true .*CKA_WRAP_WITH_TRUSTED=true" || fail "root key: not for backup"
}

test_transcripts_verify_and_record_everything() {
	standard_ceremonies
	for t in root subca-devices root-crl; do
		kr ceremony verify "$T/out/$t-ceremony.txt" >"$T/v.out"
		grep -q "0 check(s) failed" "$T/v.out"
	done
	tr=$T/out/subca-devices-ceremony.txt
	grep -q "^operator Alice Operator$" "$tr"
	grep -q "^witness Bob Witness$" "$tr"
	grep -q "^witness Carol Auditor$" "$tr"
	grep -q "^input certificate root.pem sha256 $(sha256sum "$T/out/root.pem" | cut -d' ' -f1)$" "$tr"
	grep -q "^output certificate subca-devices.pem sha256 $(sha256sum "$T/out/subca-devices.pem" | cut -d' ' -f1)$" "$tr"
	# made for backup (backup = true): extractable under a trusted key only
	grep -q "^key-attributes .*CKA_SENSITIVE=true CKA_EXTRACTABLE=true .*CKA_WRAP_WITH_TRUSTED=true" "$tr"
	grep -q "^step .* lint-passed " "$tr"
	grep -q "^step .* hsm-signed " "$tr"
	# The certificate fingerprint as hex groups matches OpenSSL's.
	fp=$(openssl x509 -in "$T/out/subca-devices.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
	got=$(grep "^fingerprint subca-devices.pem" "$tr" | cut -d' ' -f4- | tr -d ' ')
	[ "$fp" = "$got" ] || fail "fingerprint $got != openssl $fp"
	# The last line is the SHA-256 of everything before it.
	want=$(head -n -1 "$tr" | sha256sum | cut -d' ' -f1)
	[ "$(tail -1 "$tr")" = "transcript-sha256 $want" ] || fail "transcript self-hash"
}

test_verify_fails_after_one_byte_changes() {
	standard_ceremonies
	cp "$T/out/subca-devices.pem" "$T/keep.pem"
	flip_byte "$T/out/subca-devices.pem" 200
	expect 8 "SHA-256 is" kr ceremony verify "$T/out/subca-devices-ceremony.txt"
	cp "$T/keep.pem" "$T/out/subca-devices.pem"
	kr ceremony verify "$T/out/subca-devices-ceremony.txt" >/dev/null
	sed -i 's/^witness Bob Witness$/witness Bob Witnesz/' "$T/out/subca-devices-ceremony.txt"
	expect 8 "transcript has been altered" kr ceremony verify "$T/out/subca-devices-ceremony.txt"
}

test_dry_run_rehearses_on_throwaway_tokens() {
	cd "$T"
	kr ceremony run --dry-run "$EX/root.cnf" "$EX/subca-devices.cnf" "$EX/root-crl.cnf" \
		"$EX/firmware-key.cnf" >"$T/dry.out"
	scratch=$(tail -1 "$T/dry.out" | awk '{print $NF}')
	assert_exists "$scratch/root.pem" "$scratch/subca-devices.pem" "$scratch/root.crl" \
		"$scratch/firmware-signer.pub.pem" "$scratch/root-ceremony.txt"
	assert_absent "$T/root.pem" "$T/out/root.pem"
	grep -q "^rehearsal " "$scratch/root-ceremony.txt"
	openssl verify -x509_strict -CAfile "$scratch/root.pem" "$scratch/subca-devices.pem"
	has "0 check(s) failed" kr ceremony verify "$scratch/subca-devices-ceremony.txt"
	# No real token was touched (none exists in this test's token directory).
	[ -z "$(ls "$T/tokens")" ] || fail "real token directory was used"
}

test_cross_sign_between_two_roots() {
	init_token keyrite-root
	init_token other-root
	run_ceremony "$EX/root.cnf" >/dev/null
	edit root 's/keyrite-root;object=iotregistry-root-2026/other-root;object=other/' \
		's/= root-ceremony.txt/= other-ceremony.txt/' 's/= root.pem/= other.pem/' \
		's/= root.pub.pem/= other.pub.pem/' 's/Root CA 2026/Other Root/' 's/ec-p384/rsa-3072/'
	run_ceremony "$T/root.cnf" >/dev/null
	cat >"$T/cross.cnf" <<-'EOS'
	[ceremony]
	type = cross-sign
	operator = Alice Operator
	witnesses = Bob Witness
	transcript = cross-ceremony.txt
	[issuer]
	certificate = root.pem
	uri = pkcs11:token=keyrite-root;object=iotregistry-root-2026
	[certificate]
	from_certificate = other.pem
	validity_days = 1825
	extensions = cross_ext
	output = other-by-root.pem
	[cross_ext]
	basicConstraints = critical, CA:TRUE, pathlen:1
	keyUsage = critical, keyCertSign, cRLSign
	EOS
	run_ceremony "$T/cross.cnf" >/dev/null
	cd "$T/out"
	openssl verify -x509_strict -CAfile root.pem other-by-root.pem
	[ "$(openssl x509 -in other.pem -noout -subject -ext subjectKeyIdentifier)" = \
	  "$(openssl x509 -in other-by-root.pem -noout -subject -ext subjectKeyIdentifier)" ] ||
		fail "cross certificate must keep the subject and SKI"
	has "0 check(s) failed" kr ceremony verify cross-ceremony.txt
}

test_rsa_pss_and_ed25519_roots() {
	slow_unwind # Ed25519 on SoftHSM
	init_token keyrite-root
	edit root 's/ec-p384/rsa-3072/' 's/^public_key.*/rsa_pss = yes/'
	run_ceremony "$T/root.cnf" >/dev/null
	has "Signature Algorithm: rsassaPss" openssl x509 -in "$T/out/root.pem" -noout -text
	openssl verify -x509_strict -CAfile "$T/out/root.pem" "$T/out/root.pem"
	has "Verified" certtool --verify --load-ca-certificate "$T/out/root.pem" --infile "$T/out/root.pem"
	edit root 's/ec-p384/ed25519/' 's/object=iotregistry-root-2026/object=ed/' \
		's/= root.pem/= ed.pem/' 's/= root.pub.pem/= ed.pub.pem/' 's/= root-ceremony.txt/= ed.txt/'
	run_ceremony "$T/root.cnf" >/dev/null
	has "Signature Algorithm: ED25519" openssl x509 -in "$T/out/ed.pem" -noout -text
	openssl verify -x509_strict -CAfile "$T/out/ed.pem" "$T/out/ed.pem"
	has "Verified" certtool --verify --load-ca-certificate "$T/out/ed.pem" --infile "$T/out/ed.pem"
}

test_crl_with_revoked_entries() {
	standard_ceremonies
	serial=$(openssl x509 -in "$T/out/subca-devices.pem" -noout -serial | cut -d= -f2)
	# A .pem name: verify must know it is a CRL from the transcript.
	edit root-crl 's/^number .*/number = 2/' 's/= root\.crl$/= root-2-crl.pem/' \
		's/= root-crl-ceremony.txt/= crl2.txt/' 's/^output .*/&\nrevoked = revoked_list/'
	printf '[revoked_list]\n%s = cACompromise\n' "$serial" >>"$T/root-crl.cnf"
	run_ceremony "$T/root-crl.cnf" >/dev/null
	has "verify OK" openssl crl -in "$T/out/root-2-crl.pem" -CAfile "$T/out/root.pem" -noout -verify
	has "CA Compromise" openssl crl -in "$T/out/root-2-crl.pem" -noout -text
	has "0 check(s) failed" kr ceremony verify "$T/out/crl2.txt"
	grep -q "^chain crl root-2-crl.pem root.pem$" "$T/out/crl2.txt"
	cat "$T/out/root.pem" "$T/out/root-2-crl.pem" >"$T/bundle.pem"
	! openssl verify -crl_check -CAfile "$T/bundle.pem" "$T/out/subca-devices.pem" 2>"$T/err" ||
		fail "revoked sub-CA still verifies"
	grep -q "certificate revoked" "$T/err"
}

test_subca_key_on_the_same_token_as_the_root() {
	init_token keyrite-root
	run_ceremony "$EX/root.cnf" >/dev/null
	edit subca-devices 's/token=keyrite-devices/token=keyrite-root/'
	run_ceremony "$T/subca-devices.cnf" >/dev/null
	openssl verify -x509_strict -CAfile "$T/out/root.pem" "$T/out/subca-devices.pem"
	[ "$(count_private_keys keyrite-root)" -eq 2 ] || fail "want root and sub-CA keys"
}
