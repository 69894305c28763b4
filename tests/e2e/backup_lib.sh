# The backup and restore ceremonies for the tests (t_backup.sh, t_nodes.sh):
# a terminal of the test's own (a tmux server), its screen read back, each
# custodian's page copied off it and typed back at the prompts.

# ---- a terminal ---------------------------------------------------------------

# Each on_tty starts a server on a socket of its own: a client of the next
# one, started as the last one's server is still exiting, met that dying
# server on the same socket ("server exited unexpectedly").
TTY_N=0
tmx() { tmux -S "$T/tmux.$TTY_N.sock" "$@"; }

# on_tty CMD...: CMD in a tmux window of its own server (its environment:
# this test's); its exit status goes to $T/tty.rc when it ends.
on_tty() {
	tmx kill-server 2>/dev/null || true # the last command's window, if any
	TTY_N=$((TTY_N + 1))
	rm -f "$T/tty.rc"
	TYPED=() # type_share's count of the share prompts answered
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

# copy_pages: at a backup's terminal, each of the five custodians
# confirmed and their page copied off the screen into $T/pages/N (its five
# lines).
copy_pages() {
	mkdir -p "$T/pages"
	rm -f "$T/pages/"*
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
}

# run_backup SCRIPT [STDOUT]: the backup ceremony on a terminal, its pages
# copied (its standard output into STDOUT if given). Checks that the
# screen is cleared of each page once it is copied.
run_backup() {
	if [ $# -gt 1 ]; then
		on_tty sh -c '"$0" ceremony run --dir "$1" --pin-file "$2" "$3" >"$4"' \
			"$KEYRITE" "$T/ca" "$T/pin" "$1" "$2"
	else
		on_tty "$KEYRITE" ceremony run --dir "$T/ca" --pin-file "$T/pin" "$1"
	fi
	copy_pages
	local i
	[ "$(tty_rc)" -eq 0 ] || { screen | tail -5 >&2; fail "the backup ceremony failed"; }
	# Cleared: no line of any page is left on the screen or in its history.
	for i in 1 2 3 4 5; do
		! screen | grep -qF -- "$(sed -n 2p "$T/pages/$i")" || fail "page $i is still on the screen"
	done
	tmx kill-server
}

# type_share PAGE: its five lines at the prompts.
# Each "line N:" prompt is answered once: the screen's history still
# shows the earlier shares' prompts, and a line typed before its own
# prompt is flushed by keyrite (TCSAFLUSH), so each line waits for one
# more prompt than it has answered (TYPED, since on_tty).
type_share() {
	local n i
	for n in 1 2 3 4 5; do
		for i in $(seq 600); do
			[ "$(screen | grep -cF -- "line $n:" || true)" -gt "${TYPED[n]:-0}" ] && break
			[ -e "$T/tty.rc" ] && { screen | grep -v '^$' | tail -20 >&2; fail "the ceremony ended at line $n"; }
			sleep 0.1
		done
		TYPED[n]=$((${TYPED[n]:-0} + 1))
		tty_type "$(sed -n "${n}p" "$1")"
	done
}
