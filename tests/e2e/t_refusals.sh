# Bad input: one precise message, a documented exit status, nothing made.

test_wrong_pin_refused_once_nothing_made() {
	init_token keyrite-root
	(umask 077; echo wrong >"$T/bad.pin")
	expect 4 "wrong PIN (keyrite does not retry)" \
		kr ceremony run --dir "$T/out" --pin-file "$T/bad.pin" "$EX/root.cnf"
	assert_absent "$T/out/root-ceremony.txt" "$T/out/root.pem"
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "a key was made"
}

test_missing_module() {
	expect 4 "PKCS#11 module /nonexistent/libpkcs11.so: not found" \
		run_ceremony --module /nonexistent/libpkcs11.so "$EX/root.cnf"
	assert_absent "$T/out/root-ceremony.txt"
}

test_missing_token() {
	init_token some-other-token
	expect 4 "no token matches" run_ceremony "$EX/root.cnf"
	assert_absent "$T/out/root-ceremony.txt"
}

test_unknown_uri_attribute() {
	init_token keyrite-root
	edit root 's/;object=/;objekt=/'
	expect 3 "unknown URI attribute 'objekt'" run_ceremony "$T/root.cnf"
}

test_pin_value_in_uri_refused() {
	init_token keyrite-root
	edit root 's/object=iotregistry-root-2026/&?pin-value=1234/'
	expect 3 "pin-value is refused" run_ceremony "$T/root.cnf"
}

test_world_readable_pin_file_refused() {
	init_token keyrite-root
	cp "$T/pin" "$T/open.pin"
	chmod 644 "$T/open.pin"
	expect 4 "group or others may read it" kr ceremony run --dir "$T/out" --pin-file "$T/open.pin" "$EX/root.cnf"
}

test_existing_label_refused_before_anything() {
	init_token keyrite-root
	run_ceremony "$EX/root.cnf" >/dev/null
	mkdir "$T/second"
	expect 6 "already holds an object labelled 'iotregistry-root-2026'" \
		kr ceremony run --dir "$T/second" --pin-file "$T/pin" "$EX/root.cnf"
	[ -z "$(ls "$T/second")" ] || fail "outputs written: $(ls "$T/second")"
	[ "$(count_private_keys keyrite-root)" -eq 1 ] || fail "key count changed"
}

test_existing_output_refused_before_anything() {
	init_token keyrite-root
	echo precious >"$T/out/root.pem"
	expect 6 "root.pem: already exists" run_ceremony "$EX/root.cnf"
	[ "$(cat "$T/out/root.pem")" = precious ] || fail "output overwritten"
	assert_absent "$T/out/root-ceremony.txt"
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "a key was made"
}

test_unknown_key_names_file_and_line() {
	edit root 's/^type       = ec-p384/&\ncolour = blue/'
	line=$(grep -n '^colour' "$T/root.cnf" | cut -d: -f1)
	expect 3 "root.cnf:$line: [key] colour: unknown key" run_ceremony "$T/root.cnf"
}

test_syntax_error_names_line() {
	edit root 's/^\[certificate\]/[certificate/'
	line=$(grep -n '^\[certificate$' "$T/root.cnf" | cut -d: -f1)
	expect 3 "root.cnf:$line: syntax error" run_ceremony "$T/root.cnf"
}

test_missing_and_mistyped_keys() {
	edit root '/^output /d'
	expect 3 "[certificate]: missing required key 'output'" run_ceremony "$T/root.cnf"
	edit root 's/^validity_days = .*/validity_days = ten years/'
	expect 3 "[certificate] validity_days: expected a whole number" run_ceremony "$T/root.cnf"
	edit root 's/^subject .*/subject = no_such_section/'
	expect 3 "names section [no_such_section]" run_ceremony "$T/root.cnf"
	edit root 's/^type        = root/type = sub-ca/'
	expect 3 "section [issuer] is missing" run_ceremony "$T/root.cnf"
	edit root 's/^type        = root/type = coronation/'
	expect 3 "unknown ceremony type 'coronation'" run_ceremony "$T/root.cnf"
	edit root '$a [stray]\nx = 1'
	expect 3 "[stray]: section is not used by this ceremony type" run_ceremony "$T/root.cnf"
}

test_validity_beyond_cap_refused_before_hsm() {
	init_token keyrite-root
	edit root 's/^validity_days = .*/validity_days = 20000/'
	expect 5 "20000 days exceeds the policy cap of 9132 days for a root" run_ceremony "$T/root.cnf"
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "a key was made"
	# A policy file can lower the cap further, never the script.
	printf '[ceremony]\nroot_max_days = 3650\n' >"$T/policy.cnf"
	edit root 's/^validity_days = .*/validity_days = 4000/'
	expect 5 "exceeds the policy cap of 3650 days" run_ceremony --policy "$T/policy.cnf" "$T/root.cnf"
	printf '[ceremony]\nroot_max_dayz = 3650\n' >"$T/policy.cnf"
	expect 3 "policy.cnf:2: [ceremony] root_max_dayz: unknown key" run_ceremony --policy "$T/policy.cnf" "$T/root.cnf"
}

test_unsupported_key_type() {
	edit root 's/ec-p384/ec-p521/'
	expect 3 "[key] type: unsupported key type 'ec-p521'" run_ceremony "$T/root.cnf"
	edit root 's/ec-p384/rsa-2048/'
	expect 5 "policy does not allow rsa-2048 keys for certificate authorities" run_ceremony "$T/root.cnf"
}

test_lint_refuses_bad_profile_before_hsm() {
	init_token keyrite-root
	edit root 's/keyCertSign, cRLSign/digitalSignature/'
	expect 5 "a CA's keyUsage must include keyCertSign" run_ceremony "$T/root.cnf"
	edit root 's/^basicConstraints = critical, CA:TRUE/basicConstraints = CA:TRUE/'
	expect 5 "a CA needs a critical basicConstraints" run_ceremony "$T/root.cnf"
	edit root 's/^keyUsage .*/&\nnameConstraints = permitted;DNS:.example/'
	expect 5 "nameConstraints must be critical" run_ceremony "$T/root.cnf"
	edit root 's/^keyUsage .*/&\nsubjectKeyIdentifier = hash/'
	expect 3 "keyrite sets the key identifiers itself" run_ceremony "$T/root.cnf"
	edit root 's/^C  = CA/C  = Canada/'
	expect 3 "[root_dn] C: bad attribute" run_ceremony "$T/root.cnf"
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "the HSM acted on a bad profile"
	assert_absent "$T/out/root-ceremony.txt"
}

test_issuer_key_must_match_issuer_certificate() {
	standard_ceremonies
	# The devices key is not the key of root.pem.
	edit subca-devices 's/object=iotregistry-devices-2026/object=second/' \
		's/keyrite-root;object=iotregistry-root-2026/keyrite-devices;object=iotregistry-devices-2026/' \
		's/= subca-devices/= second/'
	expect 8 "is not the key of" run_ceremony "$T/subca-devices.cnf"
	assert_absent "$T/out/second.pem" "$T/out/second-ceremony.txt"
}

test_subca_longer_than_root_refused() {
	init_token keyrite-root
	init_token keyrite-devices
	edit root 's/^validity_days = .*/validity_days = 365/'
	run_ceremony "$T/root.cnf" >/dev/null
	expect 5 "notAfter is later than the issuer's notAfter" run_ceremony "$EX/subca-devices.cnf"
	[ "$(count_private_keys keyrite-devices)" -eq 0 ] || fail "a key was made"
}

# A disk that fills up after the HSM acted (the root certificate written,
# its public key file not): one message, exit 7; the key it generated is
# destroyed, the certificate it wrote removed, and the transcript ends with
# the abort and both clean-ups; keyrite ceremony verify checks the removal
# and reports the ceremony as not complete. The day goes on under a new
# transcript name (here: a new directory, and a description that mentions a
# removal, which verify does not mistake for one).
test_ceremony_aborted_by_full_disk_leaves_no_key() {
	init_token keyrite-root
	full_at linkat:2 ceremony run --dir "$T/out" --pin-file "$T/pin" "$EX/root.cnf"
	[ $rc -eq 7 ] || { cat "$T/full.err"; fail "exit status $rc, want 7"; }
	grep -qx "keyrite: $T/out/root.pub.pem: cannot create: No space left on device" "$T/full.err" ||
		{ cat "$T/full.err"; fail "message"; }
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "the generated key is still on the token"
	[ "$(ls -A "$T/out")" = root-ceremony.txt ] || fail "left: $(ls -A "$T/out")"
	local tr=$T/out/root-ceremony.txt
	grep -q "^step .* key-generated label='iotregistry-root-2026'" "$tr"
	grep -q "^abort .* $T/out/root.pub.pem: cannot create: No space left on device$" "$tr"
	grep -q "^step .* key-destroyed label='iotregistry-root-2026' ok$" "$tr"
	grep -q "^step .* output-removed $T/out/root.pem$" "$tr"
	# what an auditor sees: the removal checked, the ceremony not complete
	expect 8 "the ceremony did not complete (it was aborted)" kr ceremony verify "$tr"
	grep -qx "ok      transcript SHA-256" "$T/expect.out"
	grep -qx "ok      output certificate root.pem removed after the abort" "$T/expect.out"
	grep -q "1 check(s) failed" "$T/expect.out"
	touch "$T/out/root.pem"
	expect 8 "root.pem: exists, but the transcript records its removal" kr ceremony verify "$tr"
	rm "$T/out/root.pem"
	# the same words in a description are not a record of a removal
	edit root 's/^description = .*/description = step 1 output-removed root.pem/'
	mkdir "$T/whole"
	kr ceremony run --dir "$T/whole" --pin-file "$T/pin" "$T/root.cnf" >/dev/null
	rm "$T/whole/root.pem"
	expect 7 "root.pem: cannot open" kr ceremony verify "$T/whole/root-ceremony.txt"
	[ "$(count_private_keys keyrite-root)" -eq 1 ] || fail "want the second run's key"
}

# A disk that fills up between two HSM acts: the transcript line after the
# key generation cannot be made durable (its fsync fails), so the HSM does
# not sign: the ceremony stops with the transcript's own failure (exit 7),
# the new key is destroyed, no certificate is written, and the transcript on
# disk ends with the key generation, never an hsm-signed step.
test_ceremony_stops_before_the_next_hsm_act_when_a_line_is_not_durable() {
	init_token keyrite-root
	full_at fsync:2 ceremony run --dir "$T/out" --pin-file "$T/pin" "$EX/root.cnf"
	[ $rc -eq 7 ] || { cat "$T/full.err"; fail "exit status $rc, want 7"; }
	grep -qx "keyrite: $T/out/root-ceremony.txt: fsync failed: No space left on device" "$T/full.err" ||
		{ cat "$T/full.err"; fail "message"; }
	local tr=$T/out/root-ceremony.txt
	tail -1 "$tr" | grep -q "^step .* key-generated label='iotregistry-root-2026'" ||
		fail "the transcript goes on after the line that failed: $(tail -1 "$tr")"
	! grep -q "hsm-signed" "$tr" || fail "the HSM signed after a transcript line failed"
	assert_absent "$T/out/root.pem" "$T/out/root.pub.pem"
	[ "$(count_private_keys keyrite-root)" -eq 0 ] || fail "the generated key is still on the token"
}

# A ceremony killed after its key was made and its certificate written:
# the transcript stops short (verify says so), the next run refuses the
# label before the HSM acts, and the recovery the ceremony guide gives
# (check the key's SPKI against the transcript, delete it with pkcs11-tool)
# lets the ceremony run again under a new transcript.
test_ceremony_killed_midway_then_the_guides_recovery() {
	init_token keyrite-root
	killed_at linkat:2 ceremony run --dir "$T/out" --pin-file "$T/pin" "$EX/root.cnf"
	local tr=$T/out/root-ceremony.txt
	assert_exists "$tr"
	expect 8 "transcript does not end with its transcript-sha256 line" kr ceremony verify "$tr"
	mkdir "$T/again"
	expect 6 "token 'keyrite-root' already holds an object labelled 'iotregistry-root-2026'" \
		kr ceremony run --dir "$T/again" --pin-file "$T/pin" "$EX/root.cnf"
	[ "$(count_private_keys keyrite-root)" -eq 1 ] || fail "want the interrupted ceremony's key"
	local spki
	spki=$(sed -n 's/^key-spki-sha256 //p' "$tr")
	has "spki-sha256: $spki" kr hsm keys "pkcs11:token=keyrite-root" --pin-file "$T/pin"
	for type in privkey pubkey; do
		pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-root --login \
			--pin env:KR_TEST_PIN --delete-object --type $type --label iotregistry-root-2026 \
			>/dev/null 2>&1 || fail "pkcs11-tool could not delete the $type"
	done
	[ -z "$(ls -A "$T/again")" ] || fail "the refused run wrote $(ls -A "$T/again")"
	kr ceremony run --dir "$T/again" --pin-file "$T/pin" "$EX/root.cnf" >/dev/null
	has "0 check(s) failed" kr ceremony verify "$T/again/root-ceremony.txt"
	[ "$(count_private_keys keyrite-root)" -eq 1 ] || fail "want one key"
}

# A sub-CA whose extendedKeyUsage mixes TLS servers and code (the old
# example's; zlint's e_ca_invalid_eku, CA/B BR 7.1.2.2) is refused by the
# profile lint before any key is made; so is anyExtendedKeyUsage with more.
# The examples' two sub-CAs pass.
test_subca_mixing_server_and_code_signing_refused_before_hsm() {
	init_token keyrite-root
	init_token keyrite-devices
	run_ceremony "$EX/root.cnf" >/dev/null
	edit subca-devices 's/^extendedKeyUsage = clientAuth, serverAuth$/extendedKeyUsage = clientAuth, serverAuth, codeSigning/'
	grep -q "^extendedKeyUsage = clientAuth, serverAuth, codeSigning$" "$T/subca-devices.cnf"
	expect 5 "a CA's extendedKeyUsage with serverAuth must not include codeSigning" run_ceremony "$T/subca-devices.cnf"
	edit subca-devices 's/^extendedKeyUsage = clientAuth, serverAuth$/extendedKeyUsage = anyExtendedKeyUsage, clientAuth/'
	expect 5 "anyExtendedKeyUsage must stand alone" run_ceremony "$T/subca-devices.cnf"
	[ "$(count_private_keys keyrite-devices)" -eq 0 ] || fail "a key was made"
	assert_absent "$T/out/subca-devices.pem" "$T/out/subca-devices-ceremony.txt"
	run_ceremony "$EX/subca-devices.cnf" >/dev/null
	run_ceremony "$EX/subca-firmware.cnf" >/dev/null
	has "TLS Web Client Authentication, TLS Web Server Authentication$" \
		openssl x509 -in "$T/out/subca-devices.pem" -noout -ext extendedKeyUsage
	has "Code Signing$" openssl x509 -in "$T/out/subca-firmware.pem" -noout -ext extendedKeyUsage
}
