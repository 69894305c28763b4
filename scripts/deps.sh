#!/bin/bash
# Installs the Debian 12 packages keyrite needs to build, test and demo.
# Usage: scripts/deps.sh [lint]
set -euo pipefail

pkgs=(
	gcc make pkg-config openssl libssl-dev      # build; OpenSSL 3
	p11-kit libp11-kit-dev                       # PKCS#11 module loading, RFC 7512 URIs
	softhsm2                                     # the default and test HSM
	libsqlite3-dev sqlite3                       # the issuance store (and its CLI, for tests)
	libpq-dev postgresql-15 postgresql-client-15 # the store shared by several nodes; a server for its tests
	libldns-dev                                  # DNS records and DNSSEC (publish)
	libjansson-dev                               # JSON documents (the registry payload, the API)
	libevent-dev                                 # keyrite serve: evhttp over OpenSSL bufferevents
	curl                                         # tests: the JSON API and EST over mutual TLS
	libjson-validator-perl                       # tests: docs/openapi.json and the answers against it
	systemd                                      # tests: systemd-analyze checks docs/keyrite-serve.service
	ldnsutils bind9-utils knot-dnssecutils       # independent zone checkers
	hash-slinger nsd                             # tlsa --create; a DNS server for publish check
	bind9 bind9-dnsutils                         # named taking dynamic updates; nsupdate, dig
	libcriterion-dev                             # unit tests
	opensc gnutls-bin                            # independent checkers: pkcs11-tool, certtool
	libengine-pkcs11-openssl                     # the OpenSSL pkcs11 engine, on keyrite's tokens
	faketime xxd                                 # tests: a signer past its expiry; hex to binary
	tmux bsdutils                                # a terminal for the custodians (backup, restore); script(1)
	chromium chromium-driver python3-selenium    # tests: the web console in a real headless browser
	libnss3-tools                                # its client certificates (certutil, pk12util)
	clang libclang-rt-14-dev                     # fuzz targets: libFuzzer (a Recommends of clang)
)
if [ "${1:-}" = lint ]; then
	pkgs=(clang-tidy cppcheck clang-format)
elif [ "${1:-}" = bench ]; then
	# /usr/bin/time -v; the peer, openssl ca on the HSM; serve.sh's load (cmpload)
	pkgs=(time libengine-pkcs11-openssl libcurl4-openssl-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm, which the console's accessibility test installs axe-core with:
# Debian's, unless one is there already (NodeSource's nodejs has its own)
[ -n "${1:-}" ] || command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "keyrite: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "keyrite: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
