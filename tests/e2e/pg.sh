#!/bin/bash
# A throwaway PostgreSQL 15 server for the tests: initdb and pg_ctl in a
# temporary directory, listening on 127.0.0.1 and a free port, fsync on.
# PostgreSQL refuses to run as root, so as root the server runs as the
# postgres user (the directory is theirs).
#   tests/e2e/pg.sh start DIR   prints "HOST PORT" once it answers
#   tests/e2e/pg.sh stop DIR
#   tests/e2e/pg.sh again DIR   the stopped server started again, its port
#                               the same (a test's restart of the database)
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/pg_ctl" ] || { echo "pg.sh: $bin/pg_ctl missing (scripts/deps.sh installs postgresql-15)" >&2; exit 1; }
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
dir=$2
cd / # the server's user may not enter the caller's directory
# serve PORT: the server of DIR started on 127.0.0.1:PORT.
serve() {
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		-o "-k $dir -h 127.0.0.1 -p $1 -c fsync=on -c max_connections=200" start >/dev/null 2>&1
}
case $1 in
start)
	mkdir -p "$dir"
	[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
	as_owner "$bin/initdb" -A trust -U keyrite --locale=C.UTF-8 -D "$dir/data" >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	for try in 1 2 3 4 5 6 7 8; do
		port=$(shuf -i 20000-60000 -n 1)
		if serve "$port"; then
			echo "$port" >"$dir/port"
			echo "127.0.0.1 $port"
			exit 0
		fi
	done
	cat "$dir/server.log" >&2
	exit 1
	;;
stop)
	as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	;;
again)
	serve "$(cat "$dir/port")" || { cat "$dir/server.log" >&2; exit 1; }
	;;
*)
	echo "usage: pg.sh start|stop|again DIR" >&2
	exit 2
	;;
esac
