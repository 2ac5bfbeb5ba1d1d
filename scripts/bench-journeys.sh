#!/usr/bin/env bash
# Journey benchmark scenarios (issue 7; docs/performance.md, "Scenarios").
#
#   scripts/bench-journeys.sh [--short] [--scenario NAME]... [--users N] [--duration S]
#                             [--warmup S] [--records N] [--citizens new|returning]
#                             [--dataset-from userinfo|id-token] [--audit-check]
#                             [--workers N] [--profile] [--rate R] [--out DIR] [--base-port P]
#                             [--no-build]
#
# Scenarios (default: all four, in this order):
#   embedded         one `hub serve` on SQLite with journeys in process
#   production-1     one `hub serve` on PostgreSQL + Redis
#   production-3     three `hub serve` on the same PostgreSQL + Redis behind a round-robin
#                    TCP balancer (`journey-balance`); public_url is the balancer's URL
#   remote-matching  production-1, but the RP matches at a `hub matching-service` process
#                    holding the department records in its own PostgreSQL database
#
# Each scenario gets a fresh database holding config/demo-records.csv plus --records
# synthetic records (devkit's corpus generator, seed 7, cached under target/bench/), a
# fresh Redis key prefix, and the demo IdP and RP in a separate process
# (`hub-demo --peers-only`), so that only the hub's own process(es) are measured. Then
# journey-load warms up for --warmup seconds (a separate, unrecorded run) and measures for
# --duration seconds with `--pid` of the hub instance(s) only; the matching service's and
# the balancer's CPU over the measured run are read from /proc by this script and reported
# apart.
#
# --citizens new (default): every journey is a first-time citizen, so matching cycle 1
#   (candidate retrieval among the records + scoring) runs in every journey. The demo IdP
#   has a single Alice, so the script makes the hub's database forget record links (a
#   trigger that skips inserts into record_links) to keep cycle 0 from answering.
# --citizens returning: links are kept; after the first journey every journey is answered
#   by cycle 0 (the stored link), and the records are never searched again.
#
# --dataset-from userinfo (default): the hub reads the matching dataset from the demo IdP's
#   userinfo, as from any certified IdP. id-token: the demo IdP is configured with
#   `claims_in_id_token` (it honours the `claims` request parameter), so the dataset comes in
#   the ID token and the callback makes one call to the IdP instead of two.
# --audit-check: after each scenario's run, once its processes have stopped, verify the
#   whole verification log (`hub audit check`: every event and tree node) and print its
#   events by type (PostgreSQL scenarios), so an overload run shows that every answer was
#   audited and nothing was lost.
# --workers N: the hub's request threads (`server.workers`; default: the hub's default,
#   one per CPU core).
# --rate R: the measured run is open loop, R journey starts per second in total among the
#   --users (journey-load --rate; the warm-up stays closed loop). For latency at a chosen
#   load, e.g. half of the saturation throughput.
# --profile: also record the hub instance(s) with `perf record -g` during the measured run
#   and fold the samples into <scenario>.svg, a flamegraph (needs perf, and inferno:
#   `cargo install inferno`). Profiling costs the hub CPU: the figures of a profiled run
#   are not comparable with others.
#
# --short: embedded and production-1, 5 s measured after 2 s warm-up (what `make bench`
# runs). Explicit --scenario/--duration/--warmup win over --short.
#
# Output: DIR (default target/bench/<UTC timestamp>/) gets <scenario>.json (journey-load's
# JSON plus a "bench" object: parameters, side processes, machine load), <scenario>.txt
# (journey-load's table), logs/ and summary.txt, the table printed at the end:
#   scenario | journeys/s | p50 | p99 | hub CPU-ms per journey | hub peak RSS | failed
#
# Needs: curl, jq, a Rust toolchain (builds hub, journey-load, journey-balance and corpus in
# release unless --no-build); for the PostgreSQL scenarios psql and a server at
# $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; the role must be
# allowed to CREATE DATABASE), and redis-cli and a Redis at $REDIS_URL (default
# redis://127.0.0.1:6379); sqlite3 (or python3) for embedded with --citizens new.
# Everything it starts is stopped, and every database and Redis key it made removed, on
# exit (also on Ctrl+C).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CARGO=${CARGO:-cargo}
# BENCH_BIN: where hub, journey-load, journey-balance and corpus are (A/B runs of two builds).
BIN=${BENCH_BIN:-$ROOT/target/release}
ALL_SCENARIOS=(embedded production-1 production-3 remote-matching)

log() { printf 'bench-journeys: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
}

# ---------------------------------------------------------------------------------------
# Arguments

SCENARIOS=()
USERS=8
DURATION='' WARMUP=''
RECORDS=10000
CITIZENS=new
DATASET_FROM=userinfo
OUT=''
BASE_PORT=18180
BUILD=1
SHORT=0
WORKERS=''
PROFILE=0
AUDIT_CHECK=0
RATE=()

# positive_int OPTION VALUE MIN (a trailing "s" is allowed: --duration 20s).
positive_int() { [[ ${2%s} =~ ^[0-9]+$ ]] && ((${2%s} >= $3)) || die "$1 needs an integer >= $3, got '$2'"; }

while (($#)); do
    case $1 in
    --short) SHORT=1 ;;
    --scenario)
        (($# >= 2)) || die "--scenario needs a name"
        case $2 in
        embedded | production-1 | production-3 | remote-matching) SCENARIOS+=("$2") ;;
        all) SCENARIOS+=("${ALL_SCENARIOS[@]}") ;;
        *) die "unknown scenario '$2' (expected ${ALL_SCENARIOS[*]} or all)" ;;
        esac
        shift
        ;;
    --users) positive_int "$1" "${2:-}" 1 && USERS=$2 && shift ;;
    --rate) positive_int "$1" "${2:-}" 1 && RATE=(--rate "$2") && shift ;;
    --duration) positive_int "$1" "${2:-}" 1 && DURATION=${2%s} && shift ;;
    --warmup) positive_int "$1" "${2:-}" 0 && WARMUP=${2%s} && shift ;;
    --records) positive_int "$1" "${2:-}" 0 && RECORDS=$2 && shift ;;
    --citizens)
        [[ ${2:-} == new || ${2:-} == returning ]] || die "--citizens is new or returning"
        CITIZENS=$2
        shift
        ;;
    --dataset-from)
        [[ ${2:-} == userinfo || ${2:-} == id-token ]] || die "--dataset-from is userinfo or id-token"
        DATASET_FROM=$2
        shift
        ;;
    --out)
        [[ -n ${2:-} ]] || die "--out needs a directory"
        OUT=$2
        shift
        ;;
    --base-port) positive_int "$1" "${2:-}" 1024 && BASE_PORT=$2 && shift ;;
    --workers) positive_int "$1" "${2:-}" 1 && WORKERS=$2 && shift ;;
    --profile) PROFILE=1 ;;
    --audit-check) AUDIT_CHECK=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage
        die "unknown argument '$1'"
        ;;
    esac
    shift
done

if ((SHORT)); then
    ((${#SCENARIOS[@]})) || SCENARIOS=(embedded production-1)
    DURATION=${DURATION:-5}
    WARMUP=${WARMUP:-2}
fi
((${#SCENARIOS[@]})) || SCENARIOS=("${ALL_SCENARIOS[@]}")
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
((BASE_PORT + 20 < 65536)) || die "--base-port too high"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/target/bench/$STAMP}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)

# Ports: the hub (or the balancer) on BASE, the demo IdP on +1, the demo RP on +2, the
# matching service on +3, the three instances of production-3 on +11..+13.
PORT_PUBLIC=$BASE_PORT
PORT_IDP=$((BASE_PORT + 1))
PORT_RP=$((BASE_PORT + 2))
PORT_MS=$((BASE_PORT + 3))
PORT_INSTANCE=($((BASE_PORT + 11)) $((BASE_PORT + 12)) $((BASE_PORT + 13)))

DEMO_RECORDS=$(($(wc -l <config/demo-records.csv) - 1))
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

# ---------------------------------------------------------------------------------------
# Requirements, checked before anything starts.

needs_pg=0
for s in "${SCENARIOS[@]}"; do [[ $s == embedded ]] || needs_pg=1; done

missing=()
have curl || missing+=("curl (apt-get install curl)")
have jq || missing+=("jq (apt-get install jq)")
if ((BUILD)); then have "$CARGO" || missing+=("cargo (a Rust toolchain), or build first and pass --no-build"); fi
if ((needs_pg)); then
    have psql || missing+=("psql (apt-get install postgresql-client) for the PostgreSQL scenarios")
    have redis-cli || missing+=("redis-cli (apt-get install redis-tools) for the Redis scenarios")
fi
if ((PROFILE)); then
    have perf || missing+=("perf (apt-get install linux-perf) for --profile")
    { have inferno-collapse-perf && have inferno-flamegraph; } || missing+=("inferno (cargo install inferno) for --profile")
fi
if [[ $CITIZENS == new ]] && [[ " ${SCENARIOS[*]} " == *" embedded "* ]]; then
    have sqlite3 || have python3 || missing+=("sqlite3 or python3 (embedded with --citizens new)")
fi
if ((${#missing[@]})); then
    for m in "${missing[@]}"; do log "missing: $m"; done
    die "install what is missing (or choose other scenarios: --scenario embedded needs neither PostgreSQL nor Redis)"
fi
if ((needs_pg)); then
    PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL" -XAtqc 'select 1' >/dev/null 2>&1 ||
        die "PostgreSQL is not reachable at DATABASE_URL=$DATABASE_URL (start one, or set DATABASE_URL=postgres://USER@HOST:PORT/DB of a role that may CREATE DATABASE; scripts/test-services.sh start can start a throwaway one)"
    [[ $(timeout 5 redis-cli -u "$REDIS_URL" ping 2>/dev/null) == PONG ]] ||
        die "Redis is not reachable at REDIS_URL=$REDIS_URL (start one, or set REDIS_URL=redis://HOST:PORT)"
fi
if env | grep -q '^HUB_'; then
    log "warning: HUB_* variables are set in the environment and override the generated configurations: $(env | grep -o '^HUB_[A-Z_]*' | tr '\n' ' ')"
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$PORT_PUBLIC" "$PORT_IDP" "$PORT_RP" "$PORT_MS" "${PORT_INSTANCE[@]}")
for p in "${ports[@]}"; do
    if port_busy "$p"; then
        die "port $p is already in use (this script uses ${ports[*]}); pass another --base-port"
    fi
done

# ---------------------------------------------------------------------------------------
# Cleanup: every process started, every database created, every Redis prefix used.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-journeys.XXXXXX")
PIDS=()
DATABASES=()
REDIS_PREFIXES=()
RUN_ID=$$

stop_processes() {
    local pid i alive
    ((${#PIDS[@]})) || return 0
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

drop_databases() {
    local db
    ((${#DATABASES[@]})) || return 0
    for db in "${DATABASES[@]}"; do
        psql "$DATABASE_URL" -XAtqc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 ||
            log "could not drop database $db"
    done
    DATABASES=()
}

forget_redis_prefixes() {
    local prefix
    ((${#REDIS_PREFIXES[@]})) || return 0
    for prefix in "${REDIS_PREFIXES[@]}"; do
        redis-cli -u "$REDIS_URL" --scan --pattern "$prefix:*" 2>/dev/null |
            xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    done
    REDIS_PREFIXES=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_processes
    drop_databases
    forget_redis_prefixes
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: in the background, output to logs/NAME.log; sets STARTED_PID.
STARTED_PID=''
start() {
    local name=$1
    shift
    "$@" >"$OUT/logs/$name.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# wait_http URL PID NAME: until URL answers 2xx; fails if PID exits or after 60 s.
wait_http() {
    local url=$1 pid=$2 name=$3 i
    for ((i = 0; i < 300; i++)); do
        if curl -sf -o /dev/null --max-time 2 "$url"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited while starting; the end of logs/$name.log:"
            tail -n 20 "$OUT/logs/$name.log" >&2 || true
            die "$name did not start"
        fi
        sleep 0.2
    done
    tail -n 20 "$OUT/logs/$name.log" >&2 || true
    die "$name did not answer at $url within 60 s"
}

# run_quiet NAME CMD...: in the foreground, output to logs/NAME.log, shown if it fails.
run_quiet() {
    local name=$1
    shift
    if ! "$@" >>"$OUT/logs/$name.log" 2>&1; then
        tail -n 20 "$OUT/logs/$name.log" >&2 || true
        die "$name failed: $*"
    fi
}

pg_url() { local base=${DATABASE_URL%%\?*}; printf '%s/%s' "${base%/*}" "$1"; }
psql_admin() { psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------------------------------
# /proc readings for the processes journey-load does not measure.

CLK_TCK=$(getconf CLK_TCK)
# user + system clock ticks of PID (fields 14 and 15 of /proc/PID/stat, after the comm).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# busy and total jiffies of the whole machine.
machine_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------------------------------
# Binaries and the synthetic records

if ((BUILD)); then
    log "building release binaries (hub, hub-demo, journey-load, journey-balance, corpus)"
    "$CARGO" build --release --locked -p identity-hub -p journey-load -p devkit \
        --bin hub --bin hub-demo --bin journey-load --bin journey-balance --bin corpus >&2 ||
        die "cargo build failed"
fi
for b in hub hub-demo journey-load journey-balance; do
    [[ -x $BIN/$b ]] || die "$BIN/$b is missing (run without --no-build)"
done
if ((RECORDS > 0)) && [[ ! -x $BIN/corpus ]]; then
    die "$BIN/corpus is missing (run without --no-build)"
fi

CORPUS_CSV=''
if ((RECORDS > 0)); then
    corpus_dir=$ROOT/target/bench/corpus-seed7-$RECORDS
    CORPUS_CSV=$corpus_dir/records.csv
    if [[ ! -f $corpus_dir/done ]]; then
        log "generating $RECORDS synthetic department records into $corpus_dir (cached for later runs)"
        rm -rf "$corpus_dir"
        run_quiet corpus "$BIN/corpus" --seed 7 --records "$RECORDS" --queries-per-set 1 --out "$corpus_dir"
        touch "$corpus_dir/done"
    fi
fi

# import_records CONFIG: demo records (Alice is record 123) and the corpus, for demo-rp.
import_records() {
    local config=$1 name=$2 started
    started=$(date +%s)
    run_quiet "$name-import" "$BIN/hub" --config "$config" records import --rp demo-rp config/demo-records.csv
    if [[ -n $CORPUS_CSV ]]; then
        log "$name: importing $RECORDS records (SQLite takes ~40 s, PostgreSQL ~50 s per million)"
        run_quiet "$name-import" "$BIN/hub" --config "$config" records import --rp demo-rp "$CORPUS_CSV"
    fi
    log "$name: records imported in $(($(date +%s) - started)) s"
}

# flamegraph SCENARIO PERF_PID: stops the perf recording of the measured run and folds it
# into SCENARIO.svg (and SCENARIO.folded, for other tools).
flamegraph() {
    kill -INT "$2" 2>/dev/null || true
    wait "$2" 2>/dev/null || true
    if perf script -i "$OUT/$1.perf.data" 2>>"$OUT/logs/$1-perf.log" |
        inferno-collapse-perf >"$OUT/$1.folded" 2>>"$OUT/logs/$1-perf.log" &&
        inferno-flamegraph --title "hub: $1, $USERS users" <"$OUT/$1.folded" >"$OUT/$1.svg" 2>>"$OUT/logs/$1-perf.log"; then
        log "$1: flamegraph $OUT/$1.svg"
    else
        log "$1: could not fold the profile (see $OUT/logs/$1-perf.log)"
    fi
}

# ---------------------------------------------------------------------------------------
# Configuration files

# hub_config FILE DATA_DIR DATABASE_URL SESSIONS_URL KEY_PREFIX PUBLIC_URL BIND REMOTE(0|1)
hub_config() {
    local file=$1 data=$2 db=$3 sessions=$4 prefix=$5 public=$6 bind=$7 remote=$8
    cat >"$file" <<EOF
# Generated by scripts/bench-journeys.sh
[server]
bind = "$bind"
public_url = "$public"
workers = ${WORKERS:-0}

[data]
dir = "$data"

[database]
url = "$db"

[sessions]
url = "$sessions"
key_prefix = "$prefix"

[rate_limits]
enabled = false

[demo]
idp_bind = "127.0.0.1:$PORT_IDP"
rp_bind = "127.0.0.1:$PORT_RP"

[[relying_parties]]
client_id = "demo-rp"
name = "Demo Licensing Service"
redirect_uris = ["http://127.0.0.1:$PORT_RP/callback"]
token_endpoint_auth_method = "client_secret_basic"
client_secret = "demo-rp-secret"
default_level = "P2"
cycle3_attribute = "nino"
account_creation = true
EOF
    if ((remote)); then
        cat >>"$file" <<EOF

[relying_parties.matching_service]
url = "http://127.0.0.1:$PORT_MS"
jwks_uri = "http://127.0.0.1:$PORT_MS/jwks"
EOF
    fi
    cat >>"$file" <<EOF

[[identity_providers]]
id = "demo-idp"
name = "Demo Identity Provider"
issuer = "http://127.0.0.1:$PORT_IDP"
client_id = "hub"
token_endpoint_auth_method = "private_key_jwt"
max_level = "P2"
claims_in_id_token = $([[ $DATASET_FROM == id-token ]] && echo true || echo false)
EOF
}

# service_config FILE DATA_DIR DATABASE_URL HUB_PUBLIC_URL
service_config() {
    cat >"$1" <<EOF
# Generated by scripts/bench-journeys.sh
[data]
dir = "$2"

[database]
url = "$3"

[matching_service]
bind = "127.0.0.1:$PORT_MS"
public_url = "http://127.0.0.1:$PORT_MS"
hub_issuer = "$4"
hub_jwks_uri = "$4/jwks"

[[matching_service.relying_parties]]
client_id = "demo-rp"
EOF
}

# ---------------------------------------------------------------------------------------
# Databases

# forget_links_sqlite FILE / forget_links_pg DB: inserts into record_links are skipped,
# so matching cycle 0 never answers (--citizens new).
forget_links_sqlite() {
    local sql='CREATE TRIGGER bench_forget_links BEFORE INSERT ON record_links BEGIN SELECT RAISE(IGNORE); END;'
    if have sqlite3; then
        sqlite3 "$1" "$sql"
    else
        python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.close()' "$1" "$sql"
    fi
}
forget_links_pg() {
    psql "$(pg_url "$1")" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
CREATE FUNCTION bench_forget_link() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER bench_forget_links BEFORE INSERT ON record_links
    FOR EACH ROW EXECUTE FUNCTION bench_forget_link();
EOF
}

# A PostgreSQL database with the migrations and the records, copied (CREATE DATABASE ...
# TEMPLATE) for each scenario rather than imported again.
PG_TEMPLATE=''
pg_template() {
    [[ -z $PG_TEMPLATE ]] || return 0
    local name=bench_${RUN_ID}_template dir=$WORK/template
    mkdir -p "$dir"
    psql_admin -c "create database \"$name\"" >/dev/null
    DATABASES+=("$name")
    hub_config "$dir/hub.toml" "$dir/data" "$(pg_url "$name")" memory unused \
        "http://127.0.0.1:$PORT_PUBLIC" "127.0.0.1:$PORT_PUBLIC" 0
    run_quiet template-migrate "$BIN/hub" --config "$dir/hub.toml" migrate
    import_records "$dir/hub.toml" template
    PG_TEMPLATE=$name
}

# pg_database NAME records|empty: creates bench_<pid>_NAME (a copy of the template, or
# empty) and sets PG_DB to its name. Not in $(...): it records what to drop.
PG_DB=''
pg_database() {
    PG_DB=bench_${RUN_ID}_$1
    if [[ $2 == records ]]; then
        pg_template
        psql_admin -c "create database \"$PG_DB\" template \"$PG_TEMPLATE\"" >/dev/null
    else
        psql_admin -c "create database \"$PG_DB\"" >/dev/null
    fi
    DATABASES+=("$PG_DB")
}

# ---------------------------------------------------------------------------------------
# One scenario

# Results of the scenarios, for the summary: "scenario|json" lines.
RESULTS=()

run_scenario() {
    local scenario=$1 dir=$WORK/$1 instances=1 remote=0 storage public db_name='' db_url
    local sessions=memory prefix=unused ms_pid='' balancer_pid='' i
    local hub_pids=() hub_configs=()
    mkdir -p "$dir"
    case $scenario in
    embedded) storage=sqlite ;;
    production-1) storage=pg ;;
    production-3)
        storage=pg
        instances=3
        ;;
    remote-matching)
        storage=pg
        remote=1
        ;;
    esac
    public=http://127.0.0.1:$PORT_PUBLIC
    log "== $scenario: setting up ($instances hub instance(s), $storage, records: demo + $RECORDS, citizens: $CITIZENS)"

    # Storage.
    if [[ $storage == sqlite ]]; then
        db_url="sqlite://$dir/data/hub.db"
    else
        if ((remote)); then pg_database "${scenario//-/_}" empty; else pg_database "${scenario//-/_}" records; fi
        db_name=$PG_DB
        db_url=$(pg_url "$db_name")
        sessions=$REDIS_URL
        prefix=bench-$RUN_ID-$scenario
        REDIS_PREFIXES+=("$prefix")
    fi
    hub_config "$dir/hub.toml" "$dir/data" "$db_url" "$sessions" "$prefix" "$public" \
        "127.0.0.1:$PORT_PUBLIC" "$remote"
    run_quiet "$scenario-keys" "$BIN/hub" --config "$dir/hub.toml" keys init
    run_quiet "$scenario-migrate" "$BIN/hub" --config "$dir/hub.toml" migrate
    if [[ $storage == sqlite ]]; then
        import_records "$dir/hub.toml" "$scenario"
        [[ $CITIZENS == returning ]] || forget_links_sqlite "$dir/data/hub.db"
    elif [[ $CITIZENS == new ]]; then
        forget_links_pg "$db_name"
    fi

    # The demo IdP and RP, in their own process.
    start "$scenario-peers" "$BIN/hub-demo" --config "$dir/hub.toml" --peers-only
    local peers_pid=$STARTED_PID
    wait_http "http://127.0.0.1:$PORT_IDP/.well-known/openid-configuration" "$peers_pid" "$scenario-peers"

    # The matching service, with the records in its own database.
    if ((remote)); then
        local ms_db ms_dir=$dir/matching-service
        mkdir -p "$ms_dir"
        pg_database "${scenario//-/_}_service" records
        ms_db=$PG_DB
        service_config "$ms_dir/service.toml" "$ms_dir/data" "$(pg_url "$ms_db")" "$public"
        start "$scenario-matching-service" "$BIN/hub" --config "$ms_dir/service.toml" matching-service
        ms_pid=$STARTED_PID
        wait_http "http://127.0.0.1:$PORT_MS/healthz" "$ms_pid" "$scenario-matching-service"
    fi

    # The hub instance(s).
    if ((instances == 1)); then
        start "$scenario-hub" "$BIN/hub" --config "$dir/hub.toml" serve
        hub_pids+=("$STARTED_PID")
        wait_http "$public/.well-known/openid-configuration" "$STARTED_PID" "$scenario-hub"
    else
        local to=()
        for ((i = 0; i < instances; i++)); do
            start "$scenario-hub-$((i + 1))" env HUB_SERVER__BIND="127.0.0.1:${PORT_INSTANCE[i]}" \
                "$BIN/hub" --config "$dir/hub.toml" serve
            hub_pids+=("$STARTED_PID")
            to+=(--to "127.0.0.1:${PORT_INSTANCE[i]}")
        done
        for ((i = 0; i < instances; i++)); do
            wait_http "http://127.0.0.1:${PORT_INSTANCE[i]}/.well-known/openid-configuration" \
                "${hub_pids[i]}" "$scenario-hub-$((i + 1))"
        done
        start "$scenario-balancer" "$BIN/journey-balance" --listen "127.0.0.1:$PORT_PUBLIC" "${to[@]}"
        balancer_pid=$STARTED_PID
        wait_http "$public/.well-known/openid-configuration" "$balancer_pid" "$scenario-balancer"
    fi

    # `env` execs the hub: its pid is the hub's. Check, since --pid must name the hub.
    for i in "${hub_pids[@]}"; do
        [[ $(cat "/proc/$i/comm" 2>/dev/null) == hub ]] || die "pid $i is not a hub process"
    done

    local load=("$BIN/journey-load" --hub "$public" --redirect-uri "http://127.0.0.1:$PORT_RP/callback"
        --users "$USERS")
    if ((WARMUP > 0)); then
        log "$scenario: warming up for ${WARMUP} s ($USERS users)"
        run_quiet "$scenario-warmup" "${load[@]}" --duration "${WARMUP}s"
    fi

    # The measured run: journey-load measures the hub pids; the rest is read around it:
    # the matching service, the balancer, this scenario's PostgreSQL backends (their pool
    # connections, open since the warm-up) and the whole Redis server (shared with anything
    # else using it: an upper bound).
    local roles=() role_pids=() pid_args=() m_before m_after load_before load_after pid
    [[ -z $ms_pid ]] || { roles+=(matching-service); role_pids+=("$ms_pid"); }
    [[ -z $balancer_pid ]] || { roles+=(balancer); role_pids+=("$balancer_pid"); }
    if [[ $storage == pg ]]; then
        local backends redis_pid
        backends=$(psql_admin -c "select coalesce(string_agg(pid::text, ' '), '') from pg_stat_activity
            where datname like 'bench_${RUN_ID}_${scenario//-/_}%'")
        [[ -z $backends ]] || { roles+=(postgres-backends); role_pids+=("$backends"); }
        redis_pid=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
        if [[ -n $redis_pid && -r /proc/$redis_pid/stat ]]; then
            roles+=(redis-server-shared)
            role_pids+=("$redis_pid")
        fi
    fi
    local -A ticks_before=()
    for i in "${!roles[@]}"; do
        for pid in ${role_pids[i]}; do ticks_before[$pid]=$(cpu_ticks "$pid"); done
    done
    for i in "${hub_pids[@]}"; do pid_args+=(--pid "$i"); done
    m_before=$(machine_jiffies)
    load_before=$(loadavg)
    log "$scenario: measuring for ${DURATION} s ($USERS users; load average $load_before)"
    local perf_pid=''
    if ((PROFILE)); then
        local hub_list
        hub_list=$(IFS=,; echo "${hub_pids[*]}")
        perf record -F 499 -g --call-graph dwarf,16384 -p "$hub_list" -o "$OUT/$scenario.perf.data" \
            >>"$OUT/logs/$scenario-perf.log" 2>&1 &
        perf_pid=$!
    fi
    if ! "${load[@]}" "${RATE[@]}" --duration "${DURATION}s" "${pid_args[@]}" --json "$OUT/$scenario.load.json" \
        >"$OUT/$scenario.txt" 2>>"$OUT/logs/$scenario-load.log"; then
        cat "$OUT/$scenario.txt" >&2 || true
        tail -n 20 "$OUT/logs/$scenario-load.log" >&2 || true
        die "$scenario: journey-load failed"
    fi
    m_after=$(machine_jiffies)
    load_after=$(loadavg)
    [[ -z $perf_pid ]] || flamegraph "$scenario" "$perf_pid"
    for i in "${hub_pids[@]}" $ms_pid $balancer_pid; do
        kill -0 "$i" 2>/dev/null || die "$scenario: process $i exited during the measured run (logs: $OUT/logs/$scenario-*.log)"
    done

    # Side processes and machine load, added to journey-load's JSON as "bench".
    local side='[]' busy ticks n rss after
    busy=$(awk -v a="$m_before" -v b="$m_after" 'BEGIN {split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0)}')
    for i in "${!roles[@]}"; do
        ticks=0 n=0 rss=0
        for pid in ${role_pids[i]}; do
            # A process gone by now (a pool connection closed) is left out.
            after=$(cpu_ticks "$pid" || true)
            [[ -n $after && -n ${ticks_before[$pid]:-} ]] || continue
            ticks=$((ticks + after - ticks_before[$pid]))
            rss=$((rss + $(peak_rss_kib "$pid" || echo 0)))
            n=$((n + 1))
        done
        side=$(jq -c --arg role "${roles[i]}" --argjson t "$ticks" --argjson hz "$CLK_TCK" \
            --argjson n "$n" --argjson rss "$rss" \
            '. + [{role: $role, processes: $n, cpu_secs: ($t / $hz), peak_rss_kib: $rss}]' <<<"$side")
    done
    jq --arg scenario "$scenario" --argjson instances "$instances" --arg storage "$storage" \
        --argjson records "$RECORDS" --argjson demo "$DEMO_RECORDS" --arg citizens "$CITIZENS" --arg dataset_from "$DATASET_FROM" --argjson warmup "$WARMUP" \
        --argjson duration "$DURATION" --argjson side "$side" --arg busy "$busy" \
        --arg load_before "$load_before" --arg load_after "$load_after" \
        --arg commit "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
        --argjson cpus "$(nproc)" '
        . as $r
        | . + {bench: {
            scenario: $scenario, hub_instances: $instances, storage: $storage,
            department_records: ($records + $demo), synthetic_records: $records,
            citizens: $citizens, dataset_from: $dataset_from, warmup_secs: $warmup, duration_secs: $duration,
            side_processes: [$side[] | . + {cpu_ms_per_journey:
                (if $r.completed > 0 then (.cpu_secs * 1000 / $r.completed * 1000 | round) / 1000 else null end)}],
            machine: {cpus: $cpus, busy_percent_during_run: ($busy | tonumber),
                      loadavg_before: $load_before, loadavg_after: $load_after},
            git_commit: $commit}}' "$OUT/$scenario.load.json" >"$OUT/$scenario.json"
    rm -f "$OUT/$scenario.load.json"
    RESULTS+=("$scenario|$OUT/$scenario.json")
    jq -r '"\(.bench.scenario): \(.completed) journeys, \(.failed) failed, \(.journeys_per_sec) journeys/s, hub \(.cpu_ms_per_journey) CPU-ms per journey"' \
        "$OUT/$scenario.json" >&2

    stop_processes
    if [[ -n $balancer_pid ]]; then
        grep 'connections' "$OUT/logs/$scenario-balancer.log" >&2 || true
    fi
    if ((AUDIT_CHECK)); then audit_check "$scenario" "$dir/hub.toml" "$db_name"; fi
    drop_databases_of "$scenario"
    forget_redis_prefixes
    # The hub logs every request (some MB per 1000 journeys).
    if have gzip; then gzip -f "$OUT/logs/$scenario"-*.log 2>/dev/null || true; fi
}

# audit_check SCENARIO CONFIG DB_NAME: verifies the scenario's verification log; on
# PostgreSQL (DB_NAME set) also prints its events by type.
audit_check() {
    local scenario=$1 config=$2 db=$3
    if "$BIN/hub" --config "$config" audit check >"$OUT/logs/$scenario-audit-check.log" 2>&1; then
        log "$scenario: $(tail -n 1 "$OUT/logs/$scenario-audit-check.log")"
    else
        tail -n 5 "$OUT/logs/$scenario-audit-check.log" >&2 || true
        die "$scenario: the verification log does not verify (logs/$scenario-audit-check.log)"
    fi
    [[ -n $db ]] || return 0
    psql "$(pg_url "$db")" -XAtq -F ' ' -c \
        "select event_type, count(*) from audit_events group by event_type order by count(*) desc" |
        while read -r kind count; do log "$scenario: audit events $kind: $count"; done
}

# Drops this scenario's databases now (the template stays for the next scenario).
drop_databases_of() {
    local keep=() db
    ((${#DATABASES[@]})) || return 0
    for db in "${DATABASES[@]}"; do
        if [[ $db == "bench_${RUN_ID}_${1//-/_}" || $db == "bench_${RUN_ID}_${1//-/_}_service" ]]; then
            psql "$DATABASE_URL" -XAtqc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 ||
                log "could not drop database $db"
        else
            keep+=("$db")
        fi
    done
    DATABASES=(${keep[@]+"${keep[@]}"})
}

# ---------------------------------------------------------------------------------------

log "scenarios: ${SCENARIOS[*]}; $USERS users, ${WARMUP} s warm-up, ${DURATION} s measured; records: demo + $RECORDS; citizens: $CITIZENS; dataset from: $DATASET_FROM; output: $OUT"
log "machine: $(nproc) CPUs, load average $(loadavg)"
for scenario in "${SCENARIOS[@]}"; do
    run_scenario "$scenario"
done

{
    printf 'Journey benchmark %s: %s users, %s s warm-up, %s s measured, department records: demo + %s, citizens: %s\n' \
        "$STAMP" "$USERS" "$WARMUP" "$DURATION" "$RECORDS" "$CITIZENS"
    printf '%-16s | %10s | %8s | %8s | %22s | %12s | %6s\n' scenario journeys/s 'p50 ms' 'p99 ms' \
        'hub CPU-ms per journey' 'hub peak RSS' failed
    printf '%s\n' '-----------------|------------|----------|----------|------------------------|--------------|-------'
    for r in "${RESULTS[@]}"; do
        jq -r '[.bench.scenario, .journeys_per_sec, .journey.p50_ms, .journey.p99_ms,
                .cpu_ms_per_journey, ((.peak_rss_kib_total // 0) / 1024 * 10 | round / 10), .failed] | @tsv' "${r#*|}" |
            while IFS=$'\t' read -r name jps p50 p99 cpu rss failed; do
                printf '%-16s | %10.1f | %8.1f | %8.1f | %22.3f | %8.1f MiB | %6s\n' \
                    "$name" "$jps" "$p50" "$p99" "$cpu" "$rss" "$failed"
            done
    done
    for r in "${RESULTS[@]}"; do
        jq -r '.bench as $b | $b.side_processes[] |
            "\($b.scenario): \(.role) (\(.processes) process(es)): \(.cpu_ms_per_journey) CPU-ms per journey (not in the hub column)" + (if .role == "postgres-backends" or .role == "redis-server-shared" then "" else ", peak RSS \((.peak_rss_kib // 0) / 1024 * 10 | round / 10) MiB" end)' "${r#*|}"
        jq -r '"\(.bench.scenario): machine \(.bench.machine.busy_percent_during_run)% busy over the run (all \(.bench.machine.cpus) CPUs, everything on the machine), load average \(.bench.machine.loadavg_before) -> \(.bench.machine.loadavg_after)"' "${r#*|}"
        jq -r 'select(.journey_at_op) | "\(.bench.scenario): latency added by the hub (its steps of each journey, summed): p50 \(.journey_at_op.p50_ms) ms, p99 \(.journey_at_op.p99_ms) ms"' "${r#*|}"
        jq -r 'select(.failed > 0) | "\(.bench.scenario): FAILED journeys by kind: \(.errors | tostring)"' "${r#*|}"
    done
    printf 'JSON and logs: %s\n' "$OUT"
} | tee "$OUT/summary.txt"
