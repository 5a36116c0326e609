# shellcheck shell=bash
# Sourced by .ci/run: starts a private, throwaway PostgreSQL cluster for the tests and
# exports CHIPI_TEST_POSTGRES_URL. The cluster is stopped and deleted on shell exit
# (chipi_pg_stop, chained onto any existing EXIT trap). Debian's system cluster is
# never used or touched: its port, config and data are not ours to rely on.

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
# Versioned path rather than /usr/local/bin or /usr/bin, where Debian only has wrappers.
CHIPI_PG_BIN="$(dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
CHIPI_PG_RUN=""

# PostgreSQL refuses to run as root, so as root the server runs as the package's
# `postgres` user; `cd /` because that user may not be able to read the cwd.
_chipi_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# The command of an existing trap, from `trap -p` output: trap -- 'command' EXIT
_chipi_pg_trap_cmd() {
  eval "set -- $1"
  printf '%s' "${3:-}"
}

chipi_pg_stop() {
  [ -n "${CHIPI_PG_RUN:-}" ] || return 0
  if [ -f "$CHIPI_PG_RUN/data/postmaster.pid" ]; then
    _chipi_pg_as "$CHIPI_PG_BIN/pg_ctl" -D "$CHIPI_PG_RUN/data" -m fast -t 30 stop >/dev/null 2>&1 \
      || _chipi_pg_as "$CHIPI_PG_BIN/pg_ctl" -D "$CHIPI_PG_RUN/data" -m immediate stop >/dev/null 2>&1 \
      || true
  fi
  rm -rf "$CHIPI_PG_RUN"
  CHIPI_PG_RUN=""
  unset CHIPI_TEST_POSTGRES_URL
}

_chipi_pg_start() {
  local base="$CARGO_TARGET_DIR/ci-postgres" dir owner port prev

  # Clean up after earlier runs that were killed before their EXIT trap ran. Run dirs
  # are named after the sourcing shell's PID; leave those of live shells alone (except
  # our own PID, which in a container can be the same on every run).
  for dir in "$base"/run-* /tmp/chipi-postgres-*; do
    [ -d "$dir" ] || continue
    owner="${dir##*/}"; owner="${owner#run-}"; owner="${owner#chipi-postgres-}"; owner="${owner%%-*}"
    if [ "$owner" = "$$" ] || ! kill -0 "$owner" 2>/dev/null; then
      _chipi_pg_as "$CHIPI_PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
  done

  # The run dir holds the data dir, the server log and the unix socket. The server user
  # must be able to reach it: the target dir can live under /root (mode 700), so fall
  # back to a private dir under /tmp when it cannot.
  mkdir -p "$base"
  CHIPI_PG_RUN="$base/run-$$"
  mkdir -p "$CHIPI_PG_RUN"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$CHIPI_PG_RUN"
    if ! _chipi_pg_as test -w "$CHIPI_PG_RUN"; then
      rm -rf "$CHIPI_PG_RUN"
      CHIPI_PG_RUN="$(mktemp -d "/tmp/chipi-postgres-$$-XXXXXX")"
      chown postgres: "$CHIPI_PG_RUN"
    fi
  fi

  # Install the trap before initdb so a failure from here on still cleans up. Ours runs
  # first: under `set -e` a failing command in the old trap would end the trap early.
  prev="$(_chipi_pg_trap_cmd "$(trap -p EXIT)")"
  trap -- "chipi_pg_stop${prev:+
$prev}" EXIT

  _chipi_pg_as "$CHIPI_PG_BIN/initdb" -D "$CHIPI_PG_RUN/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C >"$CHIPI_PG_RUN/initdb.log" 2>&1 \
    || { cat "$CHIPI_PG_RUN/initdb.log" >&2; return 1; }
  # Throwaway data: durability off for speed; TCP on loopback only.
  cat >>"$CHIPI_PG_RUN/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CHIPI_PG_RUN'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
EOF

  # Pick a random port nothing answers on; another process can still take it before the
  # server binds it, so retry the start on a new port.
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if ! (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
      && _chipi_pg_as "$CHIPI_PG_BIN/pg_ctl" -D "$CHIPI_PG_RUN/data" -l "$CHIPI_PG_RUN/server.log" \
        -o "-p $port" -w -t 60 start >/dev/null; then
      break
    fi
    _chipi_pg_as "$CHIPI_PG_BIN/pg_ctl" -D "$CHIPI_PG_RUN/data" -m immediate stop >/dev/null 2>&1 || true
    port=""
  done
  if [ -n "$port" ]; then
    for _ in $(seq 30); do
      "$CHIPI_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
      sleep 1
    done
  fi
  if [ -z "$port" ] || ! "$CHIPI_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "== postgres: failed to start; server log:" >&2
    tail -n 40 "$CHIPI_PG_RUN/server.log" >&2 2>/dev/null || true
    return 1
  fi

  export CHIPI_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== postgres: $("$CHIPI_PG_BIN/psql" -XAtc 'show server_version' "$CHIPI_TEST_POSTGRES_URL") on 127.0.0.1:$port"
}

_chipi_pg_start
