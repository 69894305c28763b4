# The command line itself: --help everywhere, misuse in keyrite's own words.

# Every command of keyrite's table, and every subcommand its usage names
# ("keyrite hsm keygen ..."), answers --help with its usage on standard
# output and exit status 0, and nothing on standard error.
test_every_subcommand_takes_help() {
	local cmds=() cmd sub words
	while read -r cmd _; do cmds+=("$cmd"); done < <(kr --help | sed -n 's/^  \([a-z]*\)  .*/\1/p')
	[ ${#cmds[@]} -ge 10 ] || fail "keyrite --help lists ${#cmds[@]} commands"
	: >"$T/forms"
	for cmd in "${cmds[@]}"; do
		[ "$cmd" = version ] && continue
		echo "$cmd" >>"$T/forms"
		kr "$cmd" --help | sed -n "s/^\(usage:\)\? *keyrite $cmd \([a-z][a-z-]*\)\( .*\)\?$/$cmd \2/p" \
			>>"$T/forms"
	done
	grep -qx "issue" "$T/forms" && grep -qx "ceremony verify" "$T/forms" && grep -qx "hsm init-token" "$T/forms" ||
		fail "the subcommands were not found: $(tr '\n' ',' <"$T/forms")"
	sort -u "$T/forms" -o "$T/forms"
	while read -r -a words; do
		rc=0
		kr "${words[@]}" --help >"$T/help.out" 2>"$T/help.err" || rc=$?
		[ $rc -eq 0 ] || fail "keyrite ${words[*]} --help: exit status $rc"
		[ ! -s "$T/help.err" ] || fail "keyrite ${words[*]} --help wrote to standard error: $(cat "$T/help.err")"
		grep -q "^\(usage:\)\? *keyrite ${words[0]} " "$T/help.out" ||
			fail "keyrite ${words[*]} --help: no usage on standard output"
	done <"$T/forms"
}

# A bad option: one line naming the command and the option, the usage, exit 2.
test_misuse_names_the_command_and_option() {
	expect_usage() {
		local want=$1
		shift
		rc=0
		kr "$@" >/dev/null 2>"$T/err" || rc=$?
		[ $rc -eq 2 ] || fail "keyrite $*: exit status $rc, want 2"
		[ "$(head -1 "$T/err")" = "keyrite: $want" ] || fail "keyrite $*: said $(head -1 "$T/err")"
		grep -q "^usage: keyrite" "$T/err" || fail "keyrite $*: no usage"
	}
	expect_usage "issue: unrecognized option '--bogus'" issue --bogus
	expect_usage "issue: option '--ca' needs a value" issue --profile device --ca
	expect_usage "issue: --ca and --profile are needed" issue --ca devices x.csr
	expect_usage "ceremony verify: too many operands" ceremony verify a b
	expect_usage "hsm: unknown subcommand 'keyz'" hsm keyz
	expect_usage "fw sign: unrecognized option '--chunk'" fw sign --chunk 3 x
	expect_usage "issue: --chunk 0: expected a whole number from 1 to 100000" issue --chunk 0
}
