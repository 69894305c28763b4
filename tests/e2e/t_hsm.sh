# keyrite hsm: tokens, keys, keygen.

test_keygen_every_type_read_back_by_pkcs11_tool() {
	init_token lab
	for t in ec-p256 ec-p384 rsa-2048 rsa-3072 ed25519; do
		kr hsm keygen "pkcs11:token=lab;object=k-$t" --type $t --pin-file "$T/pin" \
			--public-key "$T/$t.pub.pem" >"$T/$t.out"
		grep -q "type: $t" "$T/$t.out"
		openssl pkey -pubin -in "$T/$t.pub.pem" -noout
	done
	[ "$(count_private_keys lab)" -eq 5 ] || fail "want 5 keys"
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label lab --login --pin env:KR_TEST_PIN \
		--list-objects --type privkey >"$T/objs"
	[ "$(grep -c 'Access: *sensitive, always sensitive, never extractable, local' "$T/objs")" -eq 5 ]
	! grep -q "Usage: .*decrypt" "$T/objs" || fail "a key may decrypt"
	# The key listing's SPKI hash equals OpenSSL's over the exported key.
	kr hsm keys "pkcs11:token=lab" --pin-file "$T/pin" >"$T/keys"
	want=$(openssl pkey -pubin -in "$T/ec-p256.pub.pem" -outform DER | sha256sum | cut -d' ' -f1)
	grep -A3 "key 'k-ec-p256'" "$T/keys" >"$T/k256"
	grep -q "spki-sha256: $want" "$T/k256"
}

# A key made for backup (--backup): extractable, but only under a trusted
# wrapping key, as keyrite and OpenSC's pkcs11-tool read it back.
test_keygen_for_backup_is_extractable_only_under_a_trusted_key() {
	init_token lab
	kr hsm keygen "pkcs11:token=lab;object=ca-key" --type ec-p256 --backup --pin-file "$T/pin" >/dev/null
	kr hsm keygen "pkcs11:token=lab;object=plain" --type ec-p256 --pin-file "$T/pin" >/dev/null
	kr hsm keys "pkcs11:token=lab" --pin-file "$T/pin" >"$T/keys"
	grep -A4 "key 'ca-key'" "$T/keys" | grep -q 'CKA_EXTRACTABLE=true.*CKA_WRAP_WITH_TRUSTED=true' ||
		{ cat "$T/keys"; fail "the backup key's attributes"; }
	grep -A4 "key 'plain'" "$T/keys" | grep -q 'CKA_EXTRACTABLE=false.*CKA_WRAP_WITH_TRUSTED=false' ||
		{ cat "$T/keys"; fail "the plain key's attributes"; }
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label lab --login --pin env:KR_TEST_PIN \
		--list-objects --type privkey --label ca-key >"$T/obj"
	grep -q 'Access: *sensitive, always sensitive, extractable, local' "$T/obj" || { cat "$T/obj"; fail "pkcs11-tool"; }
	expect 2 "derived from, not backed up" kr hsm keygen "pkcs11:token=lab;object=e" --type aes-256 \
		--backup --pin-file "$T/pin"
}

test_keygen_refusals() {
	init_token lab
	kr hsm keygen "pkcs11:token=lab;object=dup" --type ec-p256 --pin-file "$T/pin" >/dev/null
	expect 6 "already holds an object labelled 'dup'" \
		kr hsm keygen "pkcs11:token=lab;object=dup" --type ec-p256 --pin-file "$T/pin"
	expect 3 "unsupported key type 'dsa-1024'" \
		kr hsm keygen "pkcs11:token=lab;object=x" --type dsa-1024 --pin-file "$T/pin"
	expect 3 "remove id=" kr hsm keygen "pkcs11:token=lab;object=x;id=%01" --type ec-p256 --pin-file "$T/pin"
	expect 3 "add object=LABEL" kr hsm keygen "pkcs11:token=lab" --type ec-p256 --pin-file "$T/pin"
	expect 3 "not a PKCS#11 URI" kr hsm keygen "token=lab" --type ec-p256 --pin-file "$T/pin"
	expect 4 "environment variable KR_NOPE is not set" \
		kr hsm keys "pkcs11:token=lab" --pin-env KR_NOPE
	[ "$(count_private_keys lab)" -eq 1 ] || fail "a refused keygen made a key"
	export KR_PIN_VAR=$KR_TEST_PIN
	has "key 'dup'" kr hsm keys "pkcs11:token=lab" --pin-env KR_PIN_VAR
}

test_tokens_listing_and_init_refusal() {
	init_token alpha
	has "token 'alpha' serial" kr hsm tokens
	expect 6 "a token labelled 'alpha' already exists" \
		kr hsm init-token --label alpha --so-pin-file "$T/so.pin" --pin-file "$T/pin"
}

# SoftHSM rewrites token.object at each login; another process's
# C_Initialize at that instant does not see the token (hsm/hsm.c). Two
# processes opening and logging in to one token over and over must both
# always succeed: without the retry about one open in a hundred failed.
test_token_opens_while_another_process_logs_in() {
	init_token busy
	init_token other
	(for i in $(seq 200); do
		kr hsm keys "pkcs11:token=busy" --pin-file "$T/pin" >/dev/null || fail "B: open $i failed"
	done) &
	local b=$! i
	for i in $(seq 200); do
		kr hsm keys "pkcs11:token=busy" --pin-file "$T/pin" >/dev/null || fail "A: open $i failed"
	done
	wait $b || fail "the other process's opens failed"
}

test_pin_never_in_transcript_or_outputs() {
	standard_ceremonies
	! grep -rqF -- "$KR_TEST_PIN" "$T/out" || fail "the PIN appears in an output"
}

test_pin_prompt_on_a_terminal_does_not_echo() {
	init_token lab
	# script(1) gives keyrite a terminal. keyrite flushes what was typed
	# before its prompt (TCSAFLUSH), so the PIN comes after a pause.
	(sleep 2; echo "$KR_TEST_PIN") |
		script -qec "$KEYRITE hsm keygen 'pkcs11:token=lab;object=k' --type ec-p256" /dev/null \
			>"$T/tty.out"
	grep -q "PIN for token 'lab':" "$T/tty.out"
	grep -q "key 'k'" "$T/tty.out"
	! grep -qF "$KR_TEST_PIN" "$T/tty.out" || fail "the PIN was echoed"
	# Without a terminal and without a PIN source: a clear refusal.
	expect 4 "no terminal to prompt on" setsid -w "$KEYRITE" hsm keys "pkcs11:token=lab" </dev/null
}

# A token whose storage fails (the shim's KR_TOKEN_EIO_AT=N: from the Nth
# open of a key's file on, SoftHSM cannot read or remove one) at every point
# of a key generation, from the first file it opens to the point after which
# keygen succeeds: each failure is one line and exit status 4, and whenever
# part of the key is left on the token (pkcs11-tool lists it afterwards) the
# line says so and names the key. Before, a read-back that failed and a
# destroy that then failed too said nothing of the key left behind.
test_keygen_on_failing_token_storage_names_what_it_leaves() {
	init_token lab
	cp -a "$T/tokens" "$T/clean"
	local n=0 rc left named=0
	while :; do
		n=$((n + 1))
		[ $n -lt 400 ] || fail "keygen never succeeded"
		rm -rf "$T/tokens" && cp -a "$T/clean" "$T/tokens"
		rc=0
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" LD_PRELOAD="$CRASHAT" \
			KR_TOKEN_EIO_AT=$n "$KEYRITE" hsm keygen "pkcs11:token=lab;object=k1" --type ec-p256 \
			--pin-file "$T/pin" >/dev/null 2>"$T/err" || rc=$?
		[ $rc -eq 0 ] && break
		[ $rc -eq 4 ] || { cat "$T/err"; fail "N=$n: exit status $rc, want 4"; }
		[ "$(wc -l <"$T/err")" -eq 1 ] || { cat "$T/err"; fail "N=$n: want one line"; }
		left=$(pkcs11-tool --module "$SOFTHSM_MODULE" --token-label lab --login --pin env:KR_TEST_PIN \
			--list-objects 2>/dev/null | grep -c "label: *k1$" || true)
		if [ "$left" -gt 0 ]; then
			grep -q "the new key (label 'k1', id [0-9a-f]\{32\}) may still be on token 'lab': check with keyrite hsm keys and remove it by hand" "$T/err" ||
				{ cat "$T/err"; fail "N=$n: $left object(s) of the key left, and the message does not say so"; }
			named=$((named + 1))
		fi
	done
	[ $named -gt 0 ] || fail "no fault point left part of a key: the fault did not reach the generation"
	[ "$(count_private_keys lab)" -eq 1 ] || fail "the run that succeeded made no key"
}

# One PIN file, written as keyrite(1) says (no final newline; setup writes
# them so), serves keyrite, the OpenSSL pkcs11 engine (pin-source=file: in
# the URI: libp11 takes the file's bytes as they are, a newline too) and
# GnuTLS's tools (which read GNUTLS_PIN, not pin-source), on one token.
test_one_pin_file_serves_keyrite_the_openssl_engine_and_gnutls() {
	init_token lab
	kr hsm keygen "pkcs11:token=lab;object=k" --type ec-p256 --pin-file "$T/pin" \
		--public-key "$T/k.pub" >/dev/null
	echo "signed on the token by three programs" >"$T/msg"
	openssl dgst -sha256 -binary "$T/msg" >"$T/dgst"
	openssl pkeyutl -sign -engine pkcs11 -keyform engine -in "$T/dgst" -out "$T/sig" \
		-inkey "pkcs11:token=lab;object=k;type=private?pin-source=file:$T/pin" >"$T/engine.out" 2>&1 ||
		{ cat "$T/engine.out"; fail "the OpenSSL pkcs11 engine cannot log in with $T/pin"; }
	has "Signature Verified Successfully" openssl pkeyutl -verify -pubin -inkey "$T/k.pub" \
		-in "$T/dgst" -sigfile "$T/sig"
	echo 'cn = gnutls' >"$T/tmpl"
	GNUTLS_PIN=$(cat "$T/pin") certtool --generate-request --provider "$SOFTHSM_MODULE" \
		--load-privkey "pkcs11:token=lab;object=k;type=private" --template "$T/tmpl" \
		--outfile "$T/req.pem" </dev/null >"$T/gnutls.out" 2>&1 ||
		{ cat "$T/gnutls.out"; fail "GnuTLS cannot log in with $T/pin"; }
	has "verify OK" openssl req -verify -in "$T/req.pem" -noout
	cmp <(openssl req -in "$T/req.pem" -pubkey -noout) "$T/k.pub"
}
