# Shared by the bench/ scripts: a scratch directory with its own SoftHSM
# token directory, the example root and sub-CAs made by ceremony, and
# the example CA configuration. Sourced from the repository's top directory.
K=$PWD/build/keyrite
SRC=$PWD
W=$(mktemp -d)
trap '[ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"' EXIT
cd "$W"

mkdir -p tokens ca
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$W" >softhsm2.conf
export SOFTHSM2_CONF=$W/softhsm2.conf
(umask 077; openssl rand -hex 8 | tr -d "\n" >pin) # no newline: keyrite(1), PIN FILES
export KEYRITE_BENCH_PIN_FILE=$W/pin
"$K" hsm init-token --label keyrite-root --so-pin-file pin --pin-file pin >/dev/null
"$K" hsm init-token --label keyrite-devices --so-pin-file pin --pin-file pin >/dev/null
"$K" ceremony run --dir ca --pin-file pin "$SRC/docs/examples/root.cnf" >/dev/null
"$K" ceremony run --dir ca --pin-file pin "$SRC/docs/examples/subca-devices.cnf" >/dev/null
"$K" ceremony run --dir ca --pin-file pin "$SRC/docs/examples/subca-firmware.cnf" >/dev/null
cp "$SRC/docs/examples/keyrite.cnf" ca/

# conf_value SECTION KEY: KEY's value in [SECTION] of ca/keyrite.cnf.
conf_value() {
	awk -v s="[$1]" -v k="$2" '/^\[/ { in_s = ($1 == s) }
		in_s && $1 == k { sub(/^[^=]*= */, ""); print; exit }' ca/keyrite.cnf
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# Elapsed seconds from a /usr/bin/time -v report.
seconds() { awk '/Elapsed/ { n = split($NF, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$1"; }
rss_mib() { awk '/Maximum resident/ { printf "%.1f", $NF / 1024 }' "$1"; }

# The pkcs11 engine's OpenSSL configuration, for the peers that sign through
# it (its PIN in this owner-only file, not on a command line).
engine_conf() {
	(umask 077; cat <<EOC
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = /usr/lib/softhsm/libsofthsm2.so
PIN = $(cat "$W/pin")
init = 0
EOC
	)
}

# serve_accounts ACCOUNT...: keyrite serve's key on the token and its
# certificate (ca/registry-service.pem), and a client certificate for each
# account in clients/ACCOUNT.{key,pem}.
serve_accounts() {
	local uri="pkcs11:token=keyrite-devices;object=registry-service-2026" a
	"$K" hsm keygen "$uri" --type ec-p256 --pin-file pin >/dev/null
	"$K" hsm csr "$uri" --cn api.iotregistry.ca --dns api.iotregistry.ca --out service.csr \
		--pin-file pin >/dev/null
	mkdir -p svc clients
	"$K" issue --config ca/keyrite.cnf --ca devices --profile registry_service --out svc \
		--pin-file pin service.csr >/dev/null 2>&1
	cat "$(ls svc/*.pem | grep -v chain.pem)" ca/subca-devices.pem >ca/registry-service.pem
	for a in "$@"; do
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "clients/$a.key" \
			-subj "/CN=$a" -out "clients/$a.csr" 2>/dev/null
		"$K" registry client "$a" --config ca/keyrite.cnf --pin-file pin --csr "clients/$a.csr" \
			--out "clients/$a.pem" >/dev/null
	done
}
