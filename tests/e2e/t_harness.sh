# The harness itself: a check that fails inside a helper whose output a test
# reads through $(...) fails the test. (Bash turns errexit off inside command
# substitution unless inherit_errexit is on; verify_all's openssl verify was
# then ignored and the certificate counted as verified.)

# harness_ca DIR: an openssl-made root and sub-CA in DIR/ca (the names
# verify_all reads), and in DIR/good and DIR/broken one leaf each, signed by
# the sub-CA; the broken one asserts keyCertSign without CA:TRUE, which
# openssl verify -x509_strict refuses (RFC 5280 4.2.1.9) and GnuTLS's
# certtool accepts.
harness_ca() {
	local d=$1 ext=$1/ext.cnf
	mkdir -p "$d/ca" "$d/good" "$d/broken"
	printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[broken]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$ext"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/root.key" \
		-subj /CN=Harness-Root -days 2 -extensions ca -config "$ext" -out "$d/ca/root.pem" 2>/dev/null
	local name
	for name in sub good broken; do
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$name.key" \
			-subj "/CN=Harness-$name" -out "$d/$name.csr" 2>/dev/null
	done
	openssl x509 -req -in "$d/sub.csr" -CA "$d/ca/root.pem" -CAkey "$d/root.key" -CAcreateserial \
		-days 1 -extfile "$ext" -extensions ca -out "$d/ca/subca-devices.pem" 2>/dev/null
	openssl x509 -req -in "$d/good.csr" -CA "$d/ca/subca-devices.pem" -CAkey "$d/sub.key" \
		-CAcreateserial -days 1 -extfile "$ext" -extensions leaf -out "$d/good/leaf.pem" 2>/dev/null
	openssl x509 -req -in "$d/broken.csr" -CA "$d/ca/subca-devices.pem" -CAkey "$d/sub.key" \
		-CAcreateserial -days 1 -extfile "$ext" -extensions broken -out "$d/broken/leaf.pem" 2>/dev/null
}

test_harness_fails_a_test_whose_helper_meets_a_broken_certificate() {
	harness_ca "$T/h"
	# the premise: only openssl refuses the broken one
	cat "$T/h/broken/leaf.pem" "$T/h/ca/subca-devices.pem" "$T/h/ca/root.pem" >"$T/chain.pem"
	has "Chain verification output: Verified" certtool --verify-chain --infile "$T/chain.pem"
	! openssl verify -x509_strict -CAfile "$T/h/ca/root.pem" -untrusted "$T/h/ca/subca-devices.pem" \
		"$T/h/broken/leaf.pem" >/dev/null 2>&1 || fail "openssl accepts the broken certificate"
	# tests as the suite writes them, run by the suite's own runner
	mkdir "$T/meta"
	cat >"$T/meta/t_meta.sh" <<EOT
meta_check() { cp -r "$T/h/ca" "\$T/ca"; [ "\$(verify_all "$T/h/\$1")" -eq 1 ] || fail "want 1 verified"; }
meta_assign() { cp -r "$T/h/ca" "\$T/ca"; local n; n=\$(verify_all "$T/h/\$1"); [ "\$n" -eq 1 ]; }
test_meta_good() { meta_check good; meta_assign good; }
test_meta_broken_in_a_test() { meta_check broken; }
test_meta_broken_in_an_assignment() { meta_assign broken; }
EOT
	rc=0
	E2E_DIR=$T/meta "$REPO/tests/e2e/run.sh" >"$T/meta.out" 2>&1 || rc=$?
	cat "$T/meta.out"
	grep -q "^PASS test_meta_good" "$T/meta.out" || fail "the intact certificate's test did not pass"
	grep -q "^FAIL test_meta_broken_in_a_test" "$T/meta.out" ||
		fail "the broken certificate was counted as verified in [ \"\$(...)\" ... ] || fail"
	grep -q "^FAIL test_meta_broken_in_an_assignment" "$T/meta.out" ||
		fail "the broken certificate was counted as verified in n=\$(...)"
	grep -q "e2e: 1 passed, 2 failed" "$T/meta.out" || fail "summary"
	[ $rc -eq 1 ] || fail "the runner exited $rc, want 1"
}

# make lint's layering check (scripts/layers.sh) on a copy of the tree:
# clean as it is; an include from a folder above, or a folder it does not
# know, fails with the file, line and rule.
test_layering_check_refuses_an_include_from_above() {
	mkdir "$T/tree"
	cp -r "$REPO/util" "$REPO/crypto" "$REPO/hsm" "$REPO/store" "$T/tree/"
	"$REPO/scripts/layers.sh" "$T/tree" || fail "the tree as it is fails the layering check"
	sed -i '1i #include "../hsm/hsm.h"' "$T/tree/store/log.c"
	expect 1 "store/log.c:1 includes hsm/: store/ may include only util crypto" \
		"$REPO/scripts/layers.sh" "$T/tree"
	sed -i '1d' "$T/tree/store/log.c"
	mkdir "$T/tree/webui" && echo 'int x;' >"$T/tree/webui/r.c"
	expect 1 "webui/ holds C sources but has no place in scripts/layers.sh" \
		"$REPO/scripts/layers.sh" "$T/tree"
}
