# The registry's helpers for the tests that keep one (t_registry.sh,
# t_nodes.sh): keyrite registry with the test CA, a registry of n meters,
# the owner's codes, more accounts.

# krr COMMAND ARGS...: keyrite registry COMMAND with the test CA ("transfer
# request" and the like are one COMMAND), under $CNF if set (kri's).
krr() {
	local sub=$1
	shift
	case $sub in transfer) sub="transfer $1" && shift ;; esac
	# shellcheck disable=SC2086 # "transfer request" is two words
	kr registry $sub --config "${CNF:-$T/ca/keyrite.cnf}" --pin-file "$T/pin" "$@"
}

# reg_list ACCOUNT: the registry's JSON listing as ACCOUNT.
reg_list() { krr list --as "$1" --json || fail "registry list as $1"; }

# A registry of n meters (1000000000000001 on), imported by Ottawa with
# Telus as their MNO, registered with ParkoServ and activated by it from the
# CSRs Telus relays (a manifest of mkcsr's), profile ids 11 on.
registry_setup() {
	ca_setup
	registry_fill "$1"
}

# registry_fill N: registry_setup's meters in the test CA's registry.
registry_fill() {
	local n=$1
	mkdir -p "$T/mno"
	mkcsr --manifest "$n" --start 1000000000000001 >"$T/mno/relay.csv"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/relay.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	has "registry import: $n done" krr import --as Ottawa --mno Telus "$T/ottawa.csv"
	has "registry register: $n done" krr register --as Ottawa --asp ParkoServ "$T/ottawa.csv"
	has "registry activate: $n done" krr activate --as ParkoServ --csr "$T/mno/relay.csv"
}

# codes_for ACCOUNT FILE DEVICE...: the owner's new codes, as it hands them
# over: "device,code".
codes_for() {
	local as=$1 out=$2
	shift 2
	krr authcode --as "$as" "$@" >"$T/codes.out" || fail "authcode $*"
	{ echo "device,code"; awk '$2 == "code" {print $1 "," $4}' "$T/codes.out"; } >"$out"
}

# ThirdServ, another ASP; Gatineau, another owner; a transfer that waits
# DAYS for the losing ASP (0: at once).
more_accounts() {
	sed -i 's/^accounts *=.*/&, ThirdServ, Gatineau/; s/^transfer_auto_approve_days *=.*/transfer_auto_approve_days = '"${1:-0}"'/' \
		"$T/ca/keyrite.cnf"
	printf '\n[account_ThirdServ]\nkind = asp\n\n[account_Gatineau]\nkind = owner\n' >>"$T/ca/keyrite.cnf"
}
