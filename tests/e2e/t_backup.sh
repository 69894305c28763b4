# The M-of-N paper backup of CA keys (keyrite-ceremony(5) BACKUP, RESTORE,
# SHARE-CHECK): ceremonies run on a terminal that tmux gives them, each
# custodian's page read off the screen and typed back at the prompts.

# ---- a terminal ---------------------------------------------------------------

tmx() { tmux -S "$T/tmux.sock" "$@"; }

# on_tty CMD...: CMD in a tmux window of its own server (its environment:
# this test's); its exit status goes to $T/tty.rc when it ends.
on_tty() {
	rm -f "$T/tty.rc"
	trap 'tmx kill-server 2>/dev/null || true; teardown' EXIT
	local cmd
	printf -v cmd '%q ' "$@"
	tmx -f /dev/null new-session -d -x 160 -y 60 -s kr \
		"cd '$T' && $cmd; echo \$? >'$T/tty.rc'; sleep 30"
	tmx set-option -t kr history-limit 5000 >/dev/null
}

screen() { tmx capture-pane -p -J -S - -t kr; } # the window with its history

# tty_wait TEXT: until the screen shows TEXT (or the command has ended).
tty_wait() {
	local i
	for i in $(seq 600); do
		screen | grep -qF -- "$1" && return 0
		[ -e "$T/tty.rc" ] && break
		sleep 0.1
	done
	screen | tail -20 >&2
	fail "the terminal never showed '$1'"
}

# tty_type LINE: typed at the terminal, then Enter.
tty_type() {
	tmx send-keys -t kr -l -- "$1"
	tmx send-keys -t kr Enter
}

# tty_rc: the command's exit status, once it ends.
tty_rc() {
	local i
	for i in $(seq 600); do
		[ -s "$T/tty.rc" ] && { cat "$T/tty.rc"; return 0; }
		sleep 0.1
	done
	fail "the command on the terminal did not end"
}

# ---- the ceremonies -------------------------------------------------------------

# The root, devices and firmware CAs by ceremony in $T/ca (the examples:
# root and devices keys made for backup, the firmware key not), and the
# backup, restore and share-check scripts with the SO's PIN file.
backup_setup() {
	ca_setup
	local f
	for f in backup restore share-check; do
		sed "s|^\(uri *= pkcs11:.*\)$|\1\nso_pin_file = $T/so.pin|" "$EX/$f.cnf" >"$T/$f.cnf"
	done
}

# run_backup SCRIPT: the backup ceremony on a terminal, each custodian
# confirmed; their pages saved as $T/pages/N (the five lines). Checks that
# the screen is cleared of each page once it is copied.
run_backup() {
	mkdir -p "$T/pages"
	rm -f "$T/pages/"*
	on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$1"
	local i
	for i in 1 2 3 4 5; do
		tty_wait "Share $i of 5 is for"
		tty_type yes
		tty_wait "has copied the page"
		screen | sed -n "/share $i of 5 ====/,/Keep this page/p" | grep -E '^  [1-5]: ' |
			sed 's/^  //' >"$T/pages/$i"
		[ "$(wc -l <"$T/pages/$i")" -eq 5 ] || fail "page $i has no five lines"
		tty_type ""
	done
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -5 >&2; fail "the backup ceremony failed"; }
	# Cleared: no line of any page is left on the screen or in its history.
	for i in 1 2 3 4 5; do
		! screen | grep -qF -- "$(sed -n 2p "$T/pages/$i")" || fail "page $i is still on the screen"
	done
	tmx kill-server
}

# type_share PAGE: its five lines at the prompts.
type_share() {
	local n
	for n in 1 2 3 4 5; do
		tty_wait "line $n:"
		tty_type "$(sed -n "${n}p" "$1")"
	done
}

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
	run_backup "$T/backup.cnf"
	has "0 check(s) failed" kr ceremony verify "$T/ca/backup-ceremony.txt"
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
}
