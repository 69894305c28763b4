# The M-of-N paper backup of CA keys (keyrite-ceremony(5) BACKUP, RESTORE,
# SHARE-CHECK): ceremonies run on a terminal that tmux gives them, each
# custodian's page read off the screen and typed back at the prompts.

# shellcheck source=backup_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup_lib.sh"

# ---- the ceremonies -------------------------------------------------------------

# The tokens lost, and new ones with the same labels.
new_tokens() {
	rm -rf "$T/tokens"
	mkdir "$T/tokens"
	init_token keyrite-root
	init_token keyrite-devices
}

no_key_on() {
	kr hsm keys "pkcs11:token=$1" --pin-file "$T/pin" >"$T/keys" || fail "keyrite hsm keys"
	! grep -q "key '" "$T/keys" || { cat "$T/keys" >&2; fail "a key is on $1"; }
}

# Root and devices keys backed up 3 of 5, the tokens lost, both restored
# onto new tokens from pages 1, 3 and 5 typed at the terminal; the restored
# devices CA then issues a certificate that openssl verify accepts against
# the original root, and both transcripts verify.
test_backup_3_of_5_restored_onto_new_tokens_issues_again() {
	backup_setup
	# keyrite-ceremony(5): pages go to the terminal, never to stdout
	run_backup "$T/backup.cnf" "$T/backup.stdout"
	grep -q "^backed-up root-2026.backup " "$T/backup.stdout" || fail "stdout has no transcript"
	for i in 1 2 3 4 5; do
		! grep -qF -- "$(sed -n 3p "$T/pages/$i")" "$T/backup.stdout" || fail "share $i on stdout"
	done
	has "0 check(s) failed" kr ceremony verify "$T/ca/backup-ceremony.txt"
	# keyrite-ceremony(5): a backup file swapped for another, or altered
	cp "$T/ca/root-2026.backup" "$T/root.backup"
	cp "$T/ca/devices-2026.backup" "$T/ca/root-2026.backup"
	kr ceremony verify "$T/ca/backup-ceremony.txt" >"$T/v.out" || true
	grep -q "^FAILED  output backup root-2026.backup hash" "$T/v.out" || fail "swap: hash"
	grep -q "^FAILED  backup file root-2026.backup .*does not hold key 'iotregistry-root-2026'" \
		"$T/v.out" || fail "swap: the key it holds"
	sed '2s/^\(.\)/\1\1/' "$T/root.backup" >"$T/ca/root-2026.backup"
	expect 8 "root-2026.backup: SHA-256 is" kr ceremony verify "$T/ca/backup-ceremony.txt"
	cp "$T/root.backup" "$T/ca/root-2026.backup"
	for i in 1 2 3 4 5; do
		! grep -rqF -- "$(sed -n 1p "$T/pages/$i")" "$T/ca" || fail "share $i is in a file"
	done
	grep -q "^step .* share-given index=3 custodian='Fatima Haddad' on the terminal" \
		"$T/ca/backup-ceremony.txt" || fail "the transcript does not say who got share 3"

	new_tokens
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore.cnf"
	for i in 1 3 5; do type_share "$T/pages/$i"; done
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -8 >&2; fail "the restore failed"; }
	has "0 check(s) failed" kr ceremony verify "$T/ca/restore-ceremony.txt"
	grep -qx "shares-used 1 'Dana Chen', 3 'Fatima Haddad', 5 'Hana Sato'" \
		"$T/ca/restore-ceremony.txt" || fail "the transcript does not name the shares used"
	grep -c "^step .* signature-tested" "$T/ca/restore-ceremony.txt" | grep -qx 2 ||
		fail "not both keys tested"
	# sensitive, and not extractable at all any more (for_backup is off)
	kr hsm keys "pkcs11:token=keyrite-root" --pin-file "$T/pin" >"$T/after"
	grep -q "CKA_SENSITIVE=true CKA_EXTRACTABLE=false" "$T/after" || fail "restored extractable"
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label keyrite-root --login \
		--pin "$KR_TEST_PIN" -O 2>/dev/null | grep -q "label: *iotregistry-root-2026" ||
		fail "pkcs11-tool does not see the restored root key"

	mkcsr --cn 3000000000000001 --der --out "$T/a.der"
	printf 'device_id,model,version,csr\n3000000000000001,SParkometer,1.1,%s\n' \
		"$(base64 -w0 "$T/a.der")" >"$T/m.csv"
	kri device --out "$T/certs" "$T/m.csv" >/dev/null
	openssl verify -CAfile "$T/ca/root.pem" -untrusted "$T/ca/subca-devices.pem" \
		"$T/certs/"*.pem | grep -q ": OK" || fail "openssl verify refused the certificate"
	# restored without for_backup: not to be backed up again
	sed -e 's/backup-ceremony.txt/again.txt/' -e 's/backup-2026/again/' \
		-e 's/\(root\|devices\)-2026.backup/\1-again.backup/' "$T/backup.cnf" >"$T/again.cnf"
	expect 3 "key 'iotregistry-root-2026' was not made for backup" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/again.cnf"
}

# Each bad input of a backup or a restore: one message, and nothing left
# behind, on a token or on disk. The refusals a script's checks make come
# before any terminal is needed; the shares' come at the terminal.
test_backup_and_restore_refuse_bad_input_and_leave_nothing() {
	backup_setup
	# a key not made for backup (the firmware CA's): refused before anything
	sed -e 's/^keys *=.*/keys = fw_key/' -e '/^\[root_key\]/,$d' "$T/backup.cnf" >"$T/fw.cnf"
	printf '[fw_key]\nuri = pkcs11:token=keyrite-devices;object=iotregistry-firmware-2026\noutput = fw.backup\n' \
		>>"$T/fw.cnf"
	expect 3 "key 'iotregistry-firmware-2026' was not made for backup (CKA_EXTRACTABLE=false" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/fw.cnf"
	[ ! -e "$T/ca/backup-ceremony.txt" ] && [ ! -e "$T/ca/backup-2026.verifier" ] ||
		fail "a refused backup left a file"
	# keyrite(1): without a terminal, refused before anything is drawn
	expect 3 "the custodians' pages: no terminal" \
		setsid -w "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/backup.cnf"
	for f in backup-ceremony.txt backup-2026.verifier root-2026.backup devices-2026.backup; do
		[ ! -e "$T/ca/$f" ] || fail "a backup without a terminal left $f"
	done

	run_backup "$T/backup.cnf"
	mv "$T/pages" "$T/pages-a"
	# a second backup of the same keys: other shares, another verifier
	sed -e 's/backup-ceremony.txt/backup-b.txt/' -e 's/backup-2026/backup-b/' \
		-e 's/\(root\|devices\)-2026.backup/\1-b.backup/' "$T/backup.cnf" >"$T/backup-b.cnf"
	run_backup "$T/backup-b.cnf"
	mv "$T/pages" "$T/pages-b"

	# the labels still on the tokens: refused before anyone types
	expect 6 "[root_key] uri: token 'keyrite-root' already holds an object labelled 'iotregistry-root-2026'" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore.cnf"
	# a backup file altered (one base64 character): refused by its hash
	new_tokens
	cp "$T/ca/root-2026.backup" "$T/root.backup.orig"
	# in the last base64 line: the wrapped key
	awk -v at="$(($(wc -l <"$T/root.backup.orig") - 1))" \
		'NR == at { c = substr($0, 3, 1); $0 = substr($0, 1, 2) (c == "A" ? "B" : "A") substr($0, 4) } 1' \
		"$T/root.backup.orig" >"$T/ca/root-2026.backup"
	cmp -s "$T/ca/root-2026.backup" "$T/root.backup.orig" && fail "the test did not alter the file"
	expect 8 "root-2026.backup: the backup transcript" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore.cnf"
	cp "$T/root.backup.orig" "$T/ca/root-2026.backup"
	# another backup's verifier
	sed 's/^verifier *=.*/verifier = backup-b.verifier/' "$T/restore.cnf" >"$T/restore-b.cnf"
	expect 8 "not the verifier of the backup transcript" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore-b.cnf"
	# the devices CA's certificate given for the root key
	sed '0,/^certificate *=.*/s//certificate = subca-devices.pem/' "$T/restore.cnf" >"$T/restore-c.cnf"
	expect 8 "subca-devices.pem: certifies another key than 'iotregistry-root-2026'" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore-c.cnf"
	# a target URI that names an object: the label comes from the backup file
	sed 's|^uri *= pkcs11:token=keyrite-root$|uri = pkcs11:token=keyrite-root;object=other|' \
		"$T/restore.cnf" >"$T/restore-u.cnf"
	expect 3 "name the token only (no object= or id=)" \
		kr ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore-u.cnf"

	# At the terminal: a typo, named by its line and typed again; the same
	# share twice; a share of the other backup; then too few shares.
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore.cnf"
	local n
	for n in 1 2 3 4 5; do
		tty_wait "line $n:"
		if [ $n -eq 3 ]; then
			# the first digit of the line changed: its checksum catches it
			tty_type "$(sed -n 3p "$T/pages-a/1" | sed 's/^3: \(.\)/3: \1/' |
				awk '{ d = substr($2, 1, 1); $2 = (d == "0" ? "1" : "0") substr($2, 2); print }')"
			tty_wait "refused: line 3: its checksum does not match"
			tty_wait "type line 3 again"
		fi
		tty_type "$(sed -n "${n}p" "$T/pages-a/1")"
	done
	tty_wait "share 1 (Dana Chen): matches the verifier"
	type_share "$T/pages-a/1"
	tty_wait "refused: share 1 (Dana Chen) was entered already"
	type_share "$T/pages-b/2"
	tty_wait "refused: share 2 does not match this backup's verifier"
	type_share "$T/pages-a/3"
	tty_wait "share 3 (Fatima Haddad): matches the verifier"
	tty_wait "line 1:"
	tty_type ""
	[ "$(tty_rc)" -eq 3 ] || fail "too few shares: exit $(cat "$T/tty.rc"), want 3"
	screen | grep -qF "2 good share(s) of the 3 needed: nothing was rebuilt" ||
		fail "too few shares: not said"
	tmx kill-server
	no_key_on keyrite-root
	no_key_on keyrite-devices
	[ ! -e "$T/ca/restore-ceremony.txt" ] || fail "a restore that rebuilt nothing left a transcript"

	# The devices token's SO PIN wrong: the root key, restored already, is
	# destroyed again and the transcript says so.
	printf %s wrong-so-pin >"$T/bad.pin"
	chmod 600 "$T/bad.pin"
	awk -v bad="$T/bad.pin" '/^\[devices_key\]/ { d = 1 } d && /^so_pin_file/ { $0 = "so_pin_file = " bad } 1' \
		"$T/restore.cnf" >"$T/restore-so.cnf"
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore-so.cnf"
	for n in 2 2 4 5; do type_share "$T/pages-a/$n"; done
	[ "$(tty_rc)" -eq 4 ] || { screen | tail -5 >&2; fail "wrong SO PIN: exit $(cat "$T/tty.rc"), want 4"; }
	no_key_on keyrite-root
	no_key_on keyrite-devices
	grep -q "^step .* key-destroyed label='iotregistry-root-2026' ok" "$T/ca/restore-ceremony.txt" ||
		fail "the transcript does not record the restored key's destruction"
	grep -q "^step .* share-refused share 2 (Eric Roy) was entered already" \
		"$T/ca/restore-ceremony.txt" || fail "the refused share is not recorded"
	expect 8 "the ceremony did not complete (it was aborted)" \
		kr ceremony verify "$T/ca/restore-ceremony.txt"
}

# A share-check: two custodians' shares checked against the verifier,
# nothing rebuilt, and the transcript says whose were good. Then a restore
# for a further backup, and the re-split it allows.
test_share_check_checks_shares_and_rebuilds_nothing() {
	local i
	backup_setup
	run_backup "$T/backup.cnf"
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/share-check.cnf"
	type_share "$T/pages/2"
	type_share "$T/pages/4"
	tty_wait "line 1:"
	tty_type ""
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -5 >&2; fail "the share-check failed"; }
	screen | grep -qF "2 of the 5 shares checked good; 3 rebuild the key." || fail "no summary"
	grep -qx "shares-checked 2 'Eric Roy', 4 'Gilles Tremblay'" "$T/ca/share-check-2027.txt" ||
		fail "the transcript does not say whose shares were checked"
	has "0 check(s) failed" kr ceremony verify "$T/ca/share-check-2027.txt"
	! grep -q "trusted-key-made\|backup-key-rebuilt" "$T/ca/share-check-2027.txt" ||
		fail "a share-check rebuilt the key"

	# restored with for_backup: extractable under a trusted key again, so
	# the new tokens' keys can be backed up anew (a re-split)
	new_tokens
	sed 's/^keys *=.*/&\nfor_backup = true/' "$T/restore.cnf" >"$T/restore-fb.cnf"
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/restore-fb.cnf"
	for i in 1 2 3; do type_share "$T/pages/$i"; done
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -5 >&2; fail "the restore for backup failed"; }
	tmx kill-server
	kr hsm keys "pkcs11:token=keyrite-root" --pin-file "$T/pin" |
		grep -q "CKA_EXTRACTABLE=true .*CKA_WRAP_WITH_TRUSTED=true" || fail "not restored for backup"
	sed -e 's/backup-ceremony.txt/resplit.txt/' -e 's/backup-2026/resplit/' \
		-e 's/\(root\|devices\)-2026.backup/\1-resplit.backup/' "$T/backup.cnf" >"$T/resplit.cnf"
	run_backup "$T/resplit.cnf"
	has "0 check(s) failed" kr ceremony verify "$T/ca/resplit.txt"
}

# A day's rehearsal: root, devices CA, backup and restore on throwaway
# tokens (the restore onto new ones, as on the day), pages shown and typed
# back as in the real run. A real restore refuses the rehearsal's backup.
test_backup_and_restore_rehearsed_like_the_real_run() {
	mkdir -p "$T/real"
	on_tty "$KEYRITE" ceremony run --dry-run --dir "$T/real" "$EX/root.cnf" \
		"$EX/subca-devices.cnf" "$EX/backup.cnf" "$EX/restore.cnf"
	copy_pages
	local i
	for i in 2 4 5; do type_share "$T/pages/$i"; done
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -8 >&2; fail "the rehearsal failed"; }
	local scratch
	scratch=$(find "$T" -maxdepth 1 -name 'keyrite-rehearsal.*' | head -1)
	[ -n "$scratch" ] || fail "no scratch directory"
	for f in backup restore; do
		grep -q "^rehearsal " "$scratch/$f-ceremony.txt" || fail "$f: not marked a rehearsal"
		has "0 check(s) failed" kr ceremony verify "$scratch/$f-ceremony.txt"
	done
	[ "$(grep -c '^step .* signature-tested' "$scratch/restore-ceremony.txt")" -eq 2 ] ||
		fail "the rehearsed restore did not test both keys"
	[ -z "$(ls -A "$T/real")" ] || fail "a rehearsal wrote to the real directory"
	# the rehearsal's backup, taken for a real one
	mkdir "$T/fake"
	cp "$scratch/"*.pem "$scratch/"*.backup "$scratch/"*.verifier "$scratch/backup-ceremony.txt" \
		"$T/fake/"
	init_token keyrite-root
	init_token keyrite-devices
	expect 3 "the transcript of a rehearsal: its shares protect nothing" \
		kr ceremony run --dir "$T/fake" --pin-file "$T/pin" "$EX/restore.cnf"
}

# shares_dir: each page a file of its own (0600), named in the transcript.
# A custodian the operator does not confirm ends the ceremony: the pages
# given, the backup files and the verifier removed, the abort recorded.
test_backup_pages_into_shares_dir_and_an_unconfirmed_custodian_aborts() {
	backup_setup
	mkdir "$T/spool"
	sed "s|^verifier *=.*|&\nshares_dir = $T/spool|" "$T/backup.cnf" >"$T/spool.cnf"
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/spool.cnf"
	local i
	for i in 1 2; do
		tty_wait "Share $i of 5 is for"
		tty_type yes
		tty_wait "Share $i is in $T/spool/share-$i-of-5.txt"
	done
	tty_wait "Share 3 of 5 is for"
	tty_type no
	[ "$(tty_rc)" -eq 3 ] || fail "an unconfirmed custodian: exit $(cat "$T/tty.rc"), want 3"
	[ -z "$(ls -A "$T/spool")" ] || fail "the pages given stayed in the spool"
	for f in backup-2026.verifier root-2026.backup devices-2026.backup; do
		[ ! -e "$T/ca/$f" ] || fail "$f stayed"
	done
	grep -q "^abort .* the operator did not confirm custodian 3 (Fatima Haddad)" \
		"$T/ca/backup-ceremony.txt" || fail "the abort is not recorded"
	grep -q "^step .* share-given index=2 custodian='Eric Roy' file=$T/spool/share-2-of-5.txt" \
		"$T/ca/backup-ceremony.txt" || fail "the page's file is not recorded"
	grep -q "^step .* output-removed $T/spool/share-1-of-5.txt" "$T/ca/backup-ceremony.txt" ||
		fail "the page's removal is not recorded"

	rm "$T/ca/backup-ceremony.txt"
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$T/spool.cnf"
	for i in 1 2 3 4 5; do
		tty_wait "Share $i of 5 is for"
		tty_type yes
	done
	[ "$(tty_rc)" -eq 0 ] || fail "the backup into the spool failed"
	for i in 1 2 3 4 5; do
		[ "$(stat -c %a "$T/spool/share-$i-of-5.txt")" = 600 ] || fail "page $i: not owner-only"
		[ "$(grep -cE '^  [1-5]: ' "$T/spool/share-$i-of-5.txt")" -eq 5 ] || fail "page $i: no share"
	done
	has "0 check(s) failed" kr ceremony verify "$T/ca/backup-ceremony.txt"
}
