#!/usr/bin/env bash
# Find or start the PostgreSQL and Redis that the end-to-end tests need.
#
#   eval "$(scripts/test-services.sh start)"   # prints `export DATABASE_URL=... REDIS_URL=...`
#   scripts/test-services.sh stop [postgres] [redis]
#                                              # stops what `start` started (default: all)
#   scripts/test-services.sh status            # shows what `start` started and is running
#
# For each service, in order:
#   1. $DATABASE_URL / $REDIS_URL, if set and reachable;
#   2. the defaults postgres://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379,
#      if reachable (skipped when HUB_TEST_SERVICES_NO_DEFAULTS=1);
#   3. a throwaway server started by an earlier `start` and still running;
#   4. a new throwaway server from the local binaries (initdb/pg_ctl, redis-server) in a
#      temporary directory on a free loopback port;
#   5. if root with apt-get: `apt-get install postgresql` / `redis-server`, then 4;
#   6. otherwise: exit 1, saying what is missing and how to provide it.
#
# Only `export` lines go to stdout; every diagnostic goes to stderr. Besides the two URLs,
# `start` exports HUB_TEST_SERVICES_STARTED: the services this invocation newly started
# (so that a caller can `stop "$HUB_TEST_SERVICES_STARTED"` and leave alone servers that an
# earlier, manual `start` keeps warm).
#
# The state file naming what was started is $HUB_TEST_SERVICES_DIR/state
# (default ${TMPDIR:-/tmp}/hub-test-services/state); the throwaway servers live in
# directories next to it and are deleted by `stop`.
#
# Environment: DATABASE_URL, REDIS_URL, HUB_TEST_SERVICES_NO_DEFAULTS=1,
# HUB_TEST_SERVICES_NO_INSTALL=1 (never apt-get), HUB_TEST_SERVICES_DIR.

set -euo pipefail

readonly DEFAULT_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test'
readonly DEFAULT_REDIS_URL='redis://127.0.0.1:6379'
STATE_DIR="${HUB_TEST_SERVICES_DIR:-${TMPDIR:-/tmp}/hub-test-services}"
[[ $STATE_DIR == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
STATE_FILE="$STATE_DIR/state"
readonly STATE_DIR STATE_FILE

log() { printf 'test-services: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# Run with a time limit when coreutils' timeout is there (a filtered port must not hang us).
with_timeout() {
    local secs=$1
    shift
    if have timeout; then timeout "$secs" "$@"; else "$@"; fi
}

# ---------------------------------------------------------------------------------------
# State file: `key=value` lines, parsed (never sourced).

declare -A STATE=()

load_state() {
    STATE=()
    [[ -f $STATE_FILE ]] || return 0
    local key value
    while IFS='=' read -r key value; do
        [[ $key =~ ^[a-z_]+$ ]] && STATE[$key]=$value
    done <"$STATE_FILE"
    return 0
}

save_state() {
    local key tmp
    if ((${#STATE[@]} == 0)); then
        rm -f "$STATE_FILE"
        return 0
    fi
    tmp=$(mktemp "$STATE_DIR/state.XXXXXX")
    for key in "${!STATE[@]}"; do
        printf '%s=%s\n' "$key" "${STATE[$key]}"
    done | sort >"$tmp"
    mv -f "$tmp" "$STATE_FILE"
}

clear_state_prefix() {
    local key
    for key in "${!STATE[@]}"; do
        [[ $key == "$1"* ]] && unset "STATE[$key]"
    done
    return 0
}

ensure_state_dir() {
    if [[ ! -d $STATE_DIR ]]; then
        mkdir -p "$STATE_DIR"
        chmod 0755 "$STATE_DIR" # the PostgreSQL user must be able to traverse it
    fi
    if [[ ! -O $STATE_DIR ]]; then
        log "$STATE_DIR belongs to another user; set HUB_TEST_SERVICES_DIR to a directory of yours"
        exit 1
    fi
}

# Serialise concurrent start/stop (e.g. two `make test` at once). The lock is held by fd 9
# until this script exits; commands that may leave daemons behind run with `9>&-`, or the
# daemons would inherit the lock and hold it forever.
LOCKED=0
lock_state() {
    ((LOCKED == 0)) || return 0
    LOCKED=1
    ensure_state_dir
    if have flock; then
        exec 9>"$STATE_DIR/lock"
        flock -w 600 9 || {
            log "timed out waiting for the lock $STATE_DIR/lock"
            exit 1
        }
    fi
}

# A loopback port nobody listens on (best effort: checked by trying to connect).
free_port() {
    local port tries
    for ((tries = 0; tries < 100; tries++)); do
        port=$((20000 + RANDOM % 30000))
        if ! port_open 127.0.0.1 "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

port_open() {
    with_timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

PG_BINDIR=''

# Directory holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin.
find_pg_bindir() {
    local dir
    PG_BINDIR=''
    if have initdb && have pg_ctl; then
        dir=$(dirname "$(readlink -f "$(command -v initdb)")")
        if [[ -x $dir/pg_ctl ]]; then
            PG_BINDIR=$dir
            return 0
        fi
    fi
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin /usr/local/pgsql/bin | sort -rV); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            PG_BINDIR=$dir
            return 0
        fi
    done
    return 1
}

psql_bin() {
    if have psql; then
        command -v psql
    elif find_pg_bindir && [[ -x $PG_BINDIR/psql ]]; then
        echo "$PG_BINDIR/psql"
    else
        return 1
    fi
}

# host and port of a postgres:// URL (for the TCP check when there is no psql).
pg_host_port() {
    local rest=${1#*://}
    rest=${rest%%[/?]*}
    rest=${rest##*@}
    [[ -n $rest ]] || rest=localhost
    if [[ $rest == *:* ]]; then echo "${rest%%:*} ${rest##*:}"; else echo "$rest 5432"; fi
}

pg_reachable() {
    local url=$1 psql host port
    if psql=$(psql_bin); then
        PGCONNECT_TIMEOUT=3 with_timeout 10 "$psql" "$url" -XAtqc 'select 1' >/dev/null 2>&1
    else
        read -r host port < <(pg_host_port "$url")
        if port_open "$host" "$port"; then
            log "note: no psql, so $host:$port was only checked to accept TCP connections"
            return 0
        fi
        return 1
    fi
}

# Run a command as the owner of the throwaway cluster (initdb and pg_ctl refuse root).
PG_USER=''
pg_pick_user() {
    if ((EUID != 0)); then
        PG_USER=$(id -un)
        return 0
    fi
    if id -u postgres >/dev/null 2>&1; then
        PG_USER=postgres
    else
        PG_USER=hub-test-pg
        if ! id -u "$PG_USER" >/dev/null 2>&1; then
            log "creating system user $PG_USER to own the throwaway PostgreSQL cluster"
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" >&2
        fi
    fi
}

as_pg_user() {
    local user=$1
    shift
    # From / so that the user need not be able to read the caller's directory.
    if [[ $user == "$(id -un)" ]]; then
        (cd / && "$@")
    elif have runuser; then
        (cd / && runuser -u "$user" -- "$@")
    else
        # shellcheck disable=SC2016 # expanded by the inner shell
        (cd / && su -s /bin/sh "$user" -c '"$0" "$@"' -- "$@")
    fi
}

pg_state_running() {
    [[ -n ${STATE[pg_dir]:-} && -d ${STATE[pg_dir]} && -n ${STATE[pg_url]:-} ]] &&
        pg_reachable "${STATE[pg_url]}"
}

pg_start_throwaway() {
    local dir port attempt url
    pg_pick_user
    dir=$(mktemp -d "$STATE_DIR/postgres.XXXXXX")
    chmod 0700 "$dir"
    [[ $PG_USER == "$(id -un)" ]] || chown "$PG_USER" "$dir"
    log "initialising a throwaway PostgreSQL cluster in $dir (as $PG_USER, from $PG_BINDIR)"
    if ! as_pg_user "$PG_USER" "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust \
        -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 9>&-; then
        log "initdb failed; its output:"
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    for attempt in 1 2 3 4 5; do
        port=$(free_port) || break
        STATE[pg_dir]=$dir STATE[pg_port]=$port STATE[pg_bindir]=$PG_BINDIR
        STATE[pg_user]=$PG_USER
        if as_pg_user "$PG_USER" "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1 9>&-; then
            url="postgres://postgres@127.0.0.1:$port/test"
            if "$PG_BINDIR/createdb" -h 127.0.0.1 -p "$port" -U postgres test >&2 &&
                pg_reachable "$url"; then
                STATE[pg_url]=$url
                save_state
                log "started PostgreSQL on 127.0.0.1:$port (data in $dir)"
                return 0
            fi
            pg_stop_state
            return 1
        fi
        log "PostgreSQL did not start on port $port (attempt $attempt); server log:"
        tail -n 5 "$dir/server.log" >&2 2>/dev/null || true
    done
    clear_state_prefix pg_
    rm -rf "$dir"
    return 1
}

pg_stop_state() {
    local dir=${STATE[pg_dir]:-}
    [[ -n $dir ]] || return 0
    if [[ -f $dir/data/postmaster.pid ]]; then
        log "stopping the throwaway PostgreSQL on port ${STATE[pg_port]:-?}"
        as_pg_user "${STATE[pg_user]}" "${STATE[pg_bindir]}/pg_ctl" -D "$dir/data" -m immediate \
            -w -t 30 stop >/dev/null 2>&1 9>&- || log "pg_ctl stop failed (already stopped?)"
    fi
    # Only ever remove a directory this script created.
    [[ $dir == "$STATE_DIR"/postgres.* ]] && rm -rf "$dir"
    clear_state_prefix pg_
    save_state
}

# ---------------------------------------------------------------------------------------
# Redis

# host, port and password of a redis:// URL.
redis_parts() {
    local rest=${1#*://} auth='' host port
    rest=${rest%%[/?]*}
    if [[ $rest == *@* ]]; then
        auth=${rest%@*}
        rest=${rest##*@}
        auth=${auth#*:}
    fi
    host=${rest%%:*}
    [[ -n $host ]] || host=127.0.0.1
    if [[ $rest == *:* ]]; then port=${rest##*:}; else port=6379; fi
    printf '%s %s %s\n' "$host" "$port" "$auth"
}

redis_reachable() {
    local url=$1 host port auth reply
    if have redis-cli; then
        reply=$(with_timeout 5 redis-cli -u "$url" --no-auth-warning ping 2>/dev/null) || return 1
        [[ $reply == PONG ]]
        return
    fi
    read -r host port auth < <(redis_parts "$url")
    # shellcheck disable=SC2016 # expanded by the inner bash
    reply=$(with_timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        if [[ -n $3 ]]; then printf "AUTH %s\r\n" "$3" >&3; IFS= read -r -t 3 _ <&3; fi
        printf "PING\r\n" >&3
        IFS= read -r -t 3 line <&3 && printf "%s\n" "$line"' _ "$host" "$port" "$auth" 2>/dev/null) ||
        return 1
    [[ $reply == +PONG* ]]
}

redis_state_running() {
    [[ -n ${STATE[redis_url]:-} && -n ${STATE[redis_pid]:-} ]] &&
        redis_pid_alive "${STATE[redis_pid]}" && redis_reachable "${STATE[redis_url]}"
}

redis_pid_alive() {
    [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null &&
        { [[ ! -r /proc/$1/cmdline ]] || tr '\0' ' ' <"/proc/$1/cmdline" | grep -q redis-server; }
}

redis_start_throwaway() {
    local dir port attempt url pid i
    dir=$(mktemp -d "$STATE_DIR/redis.XXXXXX")
    for attempt in 1 2 3 4 5; do
        port=$(free_port) || break
        if redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' \
            --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log" >&2 9>&-; then
            url="redis://127.0.0.1:$port"
            for ((i = 0; i < 100; i++)); do
                if [[ -s $dir/redis.pid ]] && redis_reachable "$url"; then
                    pid=$(<"$dir/redis.pid")
                    STATE[redis_dir]=$dir STATE[redis_port]=$port STATE[redis_pid]=$pid
                    STATE[redis_url]=$url
                    save_state
                    log "started Redis on 127.0.0.1:$port (pid $pid, dir $dir)"
                    return 0
                fi
                sleep 0.1
            done
            if [[ -s $dir/redis.pid ]]; then
                pid=$(<"$dir/redis.pid")
                redis_pid_alive "$pid" && kill "$pid" 2>/dev/null
            fi
        fi
        log "Redis did not start on port $port (attempt $attempt); log:"
        tail -n 5 "$dir/redis.log" >&2 2>/dev/null || true
    done
    rm -rf "$dir"
    return 1
}

redis_stop_state() {
    local pid=${STATE[redis_pid]:-} dir=${STATE[redis_dir]:-} i
    if [[ -n $pid ]] && redis_pid_alive "$pid"; then
        log "stopping the throwaway Redis on port ${STATE[redis_port]:-?} (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            redis_pid_alive "$pid" || break
            sleep 0.1
        done
        if redis_pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    [[ -n $dir && $dir == "$STATE_DIR"/redis.* ]] && rm -rf "$dir"
    clear_state_prefix redis_
    save_state
}

# ---------------------------------------------------------------------------------------
# Installing with apt

can_apt_install() {
    ((EUID == 0)) && have apt-get && [[ ${HUB_TEST_SERVICES_NO_INSTALL:-} != 1 ]]
}

APT_UPDATED=0
apt_install() {
    log "installing $* with apt-get (root on Debian; set HUB_TEST_SERVICES_NO_INSTALL=1 to forbid)"
    export DEBIAN_FRONTEND=noninteractive
    if ((APT_UPDATED == 0)); then
        apt-get update -q >&2 9>&- || return 1
        APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "$@" >&2 9>&-
}

# ---------------------------------------------------------------------------------------
# Commands

STARTED=()
ERRORS=()

ensure_postgres() {
    local candidate
    if [[ -n ${DATABASE_URL:-} ]]; then
        if pg_reachable "$DATABASE_URL"; then
            log "PostgreSQL: using DATABASE_URL"
            return 0
        fi
        log "PostgreSQL: DATABASE_URL=$DATABASE_URL is not reachable"
    fi
    if [[ ${HUB_TEST_SERVICES_NO_DEFAULTS:-} != 1 ]]; then
        candidate=$DEFAULT_DATABASE_URL
        if pg_reachable "$candidate"; then
            DATABASE_URL=$candidate
            log "PostgreSQL: using $candidate"
            return 0
        fi
        log "PostgreSQL: $candidate is not reachable"
    fi
    lock_state
    load_state
    if pg_state_running; then
        DATABASE_URL=${STATE[pg_url]}
        log "PostgreSQL: reusing the throwaway server started earlier ($DATABASE_URL)"
        return 0
    fi
    [[ -z ${STATE[pg_dir]:-} ]] || pg_stop_state # stale entry: clean it up
    if ! find_pg_bindir; then
        if can_apt_install; then
            apt_install postgresql || log "apt-get install postgresql failed"
        fi
        if ! find_pg_bindir; then
            ERRORS+=("PostgreSQL: no server reachable and no initdb/pg_ctl found (looked in PATH and /usr/lib/postgresql/*/bin).
  Provide one of: DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/DB of a reachable server
  (a database the tests may create tables in); a server at $DEFAULT_DATABASE_URL;
  or the PostgreSQL server binaries (Debian: apt-get install postgresql; run as root to let this script do it).")
            return 1
        fi
    fi
    if pg_start_throwaway; then
        DATABASE_URL=${STATE[pg_url]}
        STARTED+=(postgres)
        return 0
    fi
    ERRORS+=("PostgreSQL: could not start a throwaway server from $PG_BINDIR (see the messages above).
  Set DATABASE_URL=postgres://USER[:PASSWORD]@HOST:PORT/DB to use an existing server.")
    return 1
}

ensure_redis() {
    local candidate
    if [[ -n ${REDIS_URL:-} ]]; then
        if redis_reachable "$REDIS_URL"; then
            log "Redis: using REDIS_URL"
            return 0
        fi
        log "Redis: REDIS_URL=$REDIS_URL is not reachable"
    fi
    if [[ ${HUB_TEST_SERVICES_NO_DEFAULTS:-} != 1 ]]; then
        candidate=$DEFAULT_REDIS_URL
        if redis_reachable "$candidate"; then
            REDIS_URL=$candidate
            log "Redis: using $candidate"
            return 0
        fi
        log "Redis: $candidate is not reachable"
    fi
    lock_state
    load_state
    if redis_state_running; then
        REDIS_URL=${STATE[redis_url]}
        log "Redis: reusing the throwaway server started earlier ($REDIS_URL)"
        return 0
    fi
    [[ -z ${STATE[redis_dir]:-} ]] || redis_stop_state
    if ! have redis-server; then
        if can_apt_install; then
            apt_install redis-server || log "apt-get install redis-server failed"
        fi
        if ! have redis-server; then
            ERRORS+=("Redis: no server reachable and no redis-server found in PATH.
  Provide one of: REDIS_URL=redis://[:PASSWORD@]HOST:PORT of a reachable server;
  a server at $DEFAULT_REDIS_URL; or redis-server (Debian: apt-get install redis-server;
  run as root to let this script do it).")
            return 1
        fi
    fi
    if redis_start_throwaway; then
        REDIS_URL=${STATE[redis_url]}
        STARTED+=(redis)
        return 0
    fi
    ERRORS+=("Redis: could not start a throwaway redis-server (see the messages above).
  Set REDIS_URL=redis://HOST:PORT to use an existing server.")
    return 1
}

cmd_start() {
    local ok=1 service
    ensure_postgres || ok=0
    ensure_redis || ok=0
    if ((ok == 0)); then
        for service in "${ERRORS[@]}"; do log "$service"; done
        if ((${#STARTED[@]})); then
            log "stopping what this run started: ${STARTED[*]}"
            cmd_stop "${STARTED[@]}"
        fi
        exit 1
    fi
    printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
    printf 'export REDIS_URL=%q\n' "$REDIS_URL"
    printf 'export HUB_TEST_SERVICES_STARTED=%q\n' "${STARTED[*]}"
}

cmd_stop() {
    local services=("$@") service
    ((${#services[@]})) || services=(postgres redis)
    if [[ ! -d $STATE_DIR ]]; then
        return 0
    fi
    lock_state
    load_state
    for service in "${services[@]}"; do
        case $service in
        postgres | pg) pg_stop_state ;;
        redis) redis_stop_state ;;
        *)
            log "unknown service '$service' (expected postgres or redis)"
            return 2
            ;;
        esac
    done
}

cmd_status() {
    load_state
    if pg_state_running; then
        log "PostgreSQL: throwaway server running at ${STATE[pg_url]} (${STATE[pg_dir]})"
    else
        log "PostgreSQL: no throwaway server running"
    fi
    if redis_state_running; then
        log "Redis: throwaway server running at ${STATE[redis_url]} (${STATE[redis_dir]})"
    else
        log "Redis: no throwaway server running"
    fi
}

usage() {
    cat >&2 <<'EOF'
usage: scripts/test-services.sh start          print `export` lines for DATABASE_URL and REDIS_URL
       scripts/test-services.sh stop [SERVICE] stop what `start` started (postgres, redis; default both)
       scripts/test-services.sh status         show the throwaway servers that are running
EOF
}

main() {
    local cmd=${1:-}
    [[ $# -eq 0 ]] || shift
    case $cmd in
    start) cmd_start ;;
    stop)
        # Accept `stop "$HUB_TEST_SERVICES_STARTED"` (one space-separated word) too;
        # an explicitly empty list stops nothing.
        local word parts=() services=()
        for word in "$@"; do
            read -ra parts <<<"$word"
            services+=("${parts[@]}")
        done
        if (($# > 0 && ${#services[@]} == 0)); then
            log "nothing to stop"
            return 0
        fi
        cmd_stop "${services[@]}"
        ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *)
        usage
        exit 2
        ;;
    esac
}

main "$@"
