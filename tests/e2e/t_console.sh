# The web console (docs/console.md) in a real headless Chromium, driven by
# Selenium (tests/console/console.py), against keyrite serve on 127.0.0.1
# and a free port; each account's browser has its own NSS database with its
# client certificate. Screenshots of each screen go to $KR_ARTIFACTS/console
# (default build/artifacts/console).

# shellcheck source=serve_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/serve_lib.sh"

# browser_home ACCOUNT: an NSS database trusting the root, holding the
# account's client certificate and key ("none": no certificate).
browser_home() {
	local h=$T/browser/$1
	mkdir -p "$h/.pki/nssdb"
	certutil -d "sql:$h/.pki/nssdb" -N --empty-password
	certutil -d "sql:$h/.pki/nssdb" -A -t "C,," -n root -i "$T/ca/root.pem"
	if [ "$1" != none ]; then
		printf 'p12-%s' "$RANDOM" >"$h/p12.pass"
		openssl pkcs12 -export -in "$T/clients/$1.pem" -certfile "$T/ca/subca-devices.pem" \
			-inkey "$T/clients/$1.key" -name "$1" -passout "file:$h/p12.pass" -out "$h/client.p12"
		pk12util -d "sql:$h/.pki/nssdb" -i "$h/client.p12" -w "$h/p12.pass" >/dev/null
	fi
}

# browse ACCOUNT STEP ARGS...: console.py as that account; its output in
# $T/browse.out.
browse() {
	local who=$1 kind
	shift
	[ -d "$T/browser/$who" ] || browser_home "$who"
	case $who in operator) kind=operator ;; *) kind=other ;; esac
	timeout 300 /usr/bin/python3 "$REPO/tests/console/console.py" "$@" --url "https://api.iotregistry.ca:$PORT" \
		--home "$T/browser/$who" --shots "$SHOTS" --kind "$kind" >"$T/browse.out" 2>&1 ||
		{ cat "$T/browse.out"; fail "the console as $who: $*"; }
	cat "$T/browse.out" >>"$T/browse.log"
}

console_setup() {
	serve_setup 0
	SHOTS=${KR_ARTIFACTS:-$REPO/build/artifacts}/console
	mkdir -p "$SHOTS"
	sed -i "s|^\[serve\]|[serve]\nconsole     = $REPO/console|" "$T/ca/keyrite.cnf"
}

# The Ottawa story through the screens: the city's CSV of 1000 meters
# previewed and imported (and registered with ParkoServ); ParkoServ
# activates them from Telus's manifest, with progress; one meter's CERT
# record matches at a live DNS server; CarParkServ enters the city's codes
# for ten of them; ParkoServ's table no longer holds those. CarParkServ
# sees none of ParkoServ's meters before; the operator's dashboard counts.
test_console_ottawa_story_through_the_screens() {
	console_setup
	local n=${KR_E2E_CONSOLE:-1000}
	mkdir -p "$T/mno"
	mkcsr --manifest "$n" --start 1000000000000001 >"$T/mno/manifest.csv"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/mno/manifest.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	# a bad row, named in the preview and never imported
	echo "12345,SParkometer,1.1" >>"$T/ottawa.csv"
	# the zone (with RFC 4398 CERT records, as the seeds show them), served
	# by named; the service checks records there
	sed -i 's/^\[zone_registry\]/&\ncert_records = yes/' "$T/ca/keyrite.cnf"
	kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/pub" --soa >/dev/null
	# ParkoServ's service: its certificate (the payload's server_tlsa) and
	# its TLSA in its own zone, the seed's "Record match"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/parko.key" \
		-subj /CN=iot.parkoserv.ca -addext subjectAltName=DNS:iot.parkoserv.ca -out "$T/parko.csr" 2>/dev/null
	mkdir -p "$T/srv"
	kri server --out "$T/srv" "$T/parko.csr" >/dev/null 2>&1 || fail "ParkoServ's certificate"
	sed -i "s|^\[account_ParkoServ\]|&\nserver_certificate = $(ls "$T"/srv/*.pem | grep -v chain.pem)|" "$T/ca/keyrite.cnf"
	sed -i 's/^zones *=.*/zones   = registry, parko/' "$T/ca/keyrite.cnf"
	printf '\n[zone_parko]\nzone = parkoserv.ca\nserver_port = 8883\nrootcert = no\nsoa_mname = ns1.parkoserv.ca\nsoa_rname = hostmaster.parkoserv.ca\nns = ns1.parkoserv.ca=192.0.2.80\n' >>"$T/ca/keyrite.cnf"
	kr publish --config "$T/ca/keyrite.cnf" --zone parkoserv.ca --out "$T/pub" --soa >/dev/null ||
		fail "publish parkoserv.ca"
	named_start "$T/pub/iotregistry.ca.zone" "parkoserv.ca=$T/pub/parkoserv.ca.zone"
	local dns=$PORT
	sed -i "s|^\[serve\]|[serve]\ndns         = 127.0.0.1:$dns|" "$T/ca/keyrite.cnf"
	trap 'serve_stop; named_stop; teardown' EXIT
	serve_start
	browse Ottawa import "$T/ottawa.csv" Telus ParkoServ
	grep -q "preview rows $((n + 1)) refused 1" "$T/browse.out" || fail "the preview: $(cat "$T/browse.out")"
	grep -q "Imported: $n done, 0 unchanged, 1 refused" "$T/browse.out" || fail "the import"
	grep -q "Registered with ParkoServ: $n done" "$T/browse.out" || fail "the registration"
	[ "$(ksr list --as Ottawa --json | grep -c '"state":"registered"')" -eq "$n" ] || fail "not $n registered"
	# CarParkServ sees nothing of ParkoServ's meters
	browse CarParkServ table
	grep -q '^rows none$' "$T/browse.out" || fail "CarParkServ saw: $(cat "$T/browse.out")"
	browse ParkoServ activate "$T/mno/manifest.csv"
	grep -q "Activated: $n done, 0 unchanged, 0 refused" "$T/browse.out" || fail "the activation"
	[ "$(sed -n 's/^progress seen //p' "$T/browse.out")" -ge 2 ] || fail "no progress shown"
	[ "$(krc --status valid --json | grep -c "\"profile\":\"device\"")" -eq "$n" ] || fail "not $n certificates"
	# published, and the device page's live check
	has "$((2 * n)) added" kr publish --config "$T/ca/keyrite.cnf" --zone iotregistry.ca --out "$T/pub" --soa \
		--changes "$T/changes.txt"
	{ echo "server 127.0.0.1 $dns"; cat "$T/changes.txt"; } | nsupdate -k "$T/named/update.key" >/dev/null ||
		fail "nsupdate"
	browse ParkoServ device 1000000000000001
	grep -q 'record CERT match ✓' "$T/browse.out" && grep -q 'record TLSA match ✓' "$T/browse.out" &&
		grep -q 'record Record match ✓' "$T/browse.out" || fail "no match shown: $(cat "$T/browse.out")"
	# the city's codes for ten meters, entered by CarParkServ
	ksr authcode --as Ottawa $(seq 1000000000000001 1000000000000010) >"$T/codes.out"
	{ echo "device,code"; awk '$2 == "code" {print $1 "," $4}' "$T/codes.out"; } >"$T/codes.csv"
	browse CarParkServ transfer "$T/codes.csv"
	grep -q "Transfer: 10 done, 0 unchanged, 0 refused" "$T/browse.out" || fail "the transfer"
	browse ParkoServ table --shot 09-parkoserv-after
	grep -q '^rows 1000000000000011 ' "$T/browse.out" || fail "ParkoServ's table: $(cat "$T/browse.out")"
	browse CarParkServ table --shot 10-carparkserv-after
	grep -q '^rows 1000000000000001 .*1000000000000010$' "$T/browse.out" || fail "CarParkServ's table"
	browse operator dashboard
	grep -q "^state active $((n - 10))$" "$T/browse.out" && grep -q '^state registered 10$' "$T/browse.out" ||
		fail "the dashboard: $(cat "$T/browse.out")"
	serve_stop
	has "0 problem(s)" kr audit verify --config "$T/ca/keyrite.cnf"
}

# Without a client certificate the browser gets no page; a page of another
# origin, in a browser holding the account's certificate, can change
# nothing (its fetch is stopped at the preflight, its form POST refused);
# a model name holding markup shows as that text.
test_console_no_certificate_cross_origin_and_markup() {
	console_setup
	printf 'Device ID,Model,Version,MNO\n1000000000000001,<script>alert(1)</script><img src=x>,1.1,Telus\n' >"$T/x.csv"
	ksr import --as Ottawa "$T/x.csv" >/dev/null || fail "import"
	mkdir -p "$T/other"
	echo '<!doctype html><title>another site</title><p>another site</p>' >"$T/other/index.html"
	local other
	other=$(shuf -i 20000-60000 -n 1)
	(cd "$T/other" && exec /usr/bin/python3 -m http.server "$other" --bind 127.0.0.1) >/dev/null 2>&1 &
	WEB=$!
	trap 'kill $WEB 2>/dev/null; serve_stop; teardown' EXIT
	serve_start
	browse none nocert
	grep -q '^refused' "$T/browse.out" || fail "no certificate: $(cat "$T/browse.out")"
	browse Ottawa table "" model
	grep -qF 'model <script>alert(1)</script><img src=x>' "$T/browse.out" || fail "the markup: $(cat "$T/browse.out")"
	grep -q 'elements injected 0' "$T/browse.out" || fail "markup became elements"
	browse Ottawa csrf "http://other.example:$other/" 1000000000000001
	grep -q '^fetch blocked' "$T/browse.out" || fail "the cross-origin fetch: $(cat "$T/browse.out")"
	grep -q 'Keyrite-Request' "$T/browse.out" || fail "the form's answer: $(cat "$T/browse.out")"
	grep -q '"event":"csrf-refused"' "$T/serve.log" || fail "the refusal is not logged"
	ksr show 1000000000000001 | grep -q 'listed' || fail "the device changed"
	! ksr show 1000000000000001 | grep -q 'pendingDelete' || fail "the cross-origin delete happened"
	# the console's own headers: no framing, no sniffing, scripts of its own
	curl -sS -D "$T/h" -o /dev/null --cacert "$T/ca/root.pem" --cert "$T/clients/Ottawa.pem" \
		--key "$T/clients/Ottawa.key" --resolve "api.iotregistry.ca:$PORT:127.0.0.1" \
		"https://api.iotregistry.ca:$PORT/console/" || fail "curl the console"
	grep -qi "^content-security-policy: default-src 'none'; script-src 'self'.*frame-ancestors 'none'" "$T/h" &&
		grep -qi '^x-frame-options: DENY' "$T/h" && grep -qi '^x-content-type-options: nosniff' "$T/h" ||
		{ cat "$T/h"; fail "the console's headers"; }
	# nothing in the console writes HTML from data
	! grep -n 'innerHTML\|outerHTML\|insertAdjacentHTML\|document.write' "$REPO"/console/*.js ||
		fail "the console writes HTML"
	serve_stop
}

# axe-core's WCAG 2.1 A and AA rules (npm, installed by the test into
# build/npm) find nothing on the screens of a provider and of the operator,
# at a desktop's width and at a phone's (390 px); the skip link comes
# first, and a screen is reached with Tab and Enter alone.
test_console_accessible_by_keyboard_and_at_a_phone_width() {
	local axe=$REPO/build/npm/node_modules/axe-core/axe.min.js
	if [ ! -e "$axe" ]; then
		npm install --prefix "$REPO/build/npm" --no-audit --no-fund --no-save axe-core@4.10.3 >/dev/null 2>&1 ||
			fail "npm install axe-core"
	fi
	console_setup
	mkcsr --manifest 3 --start 1000000000000001 >"$T/relay.csv"
	{ echo "Device ID,Model,Version"; tail -n +2 "$T/relay.csv" | cut -d, -f1-3; } >"$T/ottawa.csv"
	ksr import --as Ottawa --mno Telus "$T/ottawa.csv" >/dev/null
	ksr register --as Ottawa --asp ParkoServ "$T/ottawa.csv" >/dev/null
	ksr activate --as ParkoServ --csr "$T/relay.csv" >/dev/null
	trap 'serve_stop; teardown' EXIT
	serve_start
	local w
	for w in 1280 390; do
		browse ParkoServ a11y activate devices device/1000000000000001 activate transfer messages \
			--axe "$axe" --width "$w" --shot "11-a11y-$w"
		grep -q '^keyboard activate' "$T/browse.out" || fail "keyboard at $w"
		grep -q "^window $w " "$T/browse.out" || fail "not a $w px window: $(grep ^window "$T/browse.out")"
		browse operator a11y dashboard devices dashboard import --axe "$axe" --width "$w" --shot "12-a11y-$w"
	done
	serve_stop
}
