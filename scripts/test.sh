#!/usr/bin/env bash
# Every test (what `make test` runs):
#   0. install Chromium for the browser tests (tests/browser.rs) when /usr/bin/chromium is
#      missing, if root with apt-get (not with HUB_TEST_SERVICES_NO_INSTALL=1 or
#      HUB_TEST_CHROMIUM set); otherwise those tests fail saying what to install;
#   1. find or start PostgreSQL and Redis (scripts/test-services.sh);
#   2. cargo test --workspace --all-targets --locked "$@"
#      (unit tests of each crate, end-to-end journeys on the default in-process backends);
#   3. HUB_TEST_BACKEND=postgres cargo test --workspace --locked --test tests "$@"
#      (the end-to-end suite again, against PostgreSQL and Redis; without arguments the
#      scale, proxy and fleet key-rotation tests, which always use PostgreSQL and Redis,
#      are skipped here);
#   4. promtool check rules ops/prometheus/alerts.yml and its unit tests (alerts.test.yml),
#      when promtool is on PATH (Debian's `prometheus` package); skipped with a message
#      otherwise.
# Arguments are passed to both cargo runs, e.g. `scripts/test.sh journey -- --nocapture`.
# Both runs happen even if the first fails; the exit code is the first failure's.
# Throwaway servers started here are stopped on exit; servers that were already running
# (including ones left up by a manual `scripts/test-services.sh start`) are left alone.
# The tests' scratch databases carry this run's name (HUB_TEST_RUN, chosen here), and only
# those are dropped on exit: other runs on the same server (another developer, CI) keep theirs.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO=${CARGO:-cargo}

if [[ ! -e /usr/bin/chromium && -z ${HUB_TEST_CHROMIUM:-} ]] && ((EUID == 0)) &&
    command -v apt-get >/dev/null 2>&1 && [[ ${HUB_TEST_SERVICES_NO_INSTALL:-} != 1 ]]; then
    echo "test.sh: installing chromium with apt-get (for tests/browser.rs)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q chromium >&2; } ||
        echo "test.sh: could not install chromium: the browser tests will fail" >&2
fi

services=$(scripts/test-services.sh start) || {
    rc=$?
    echo "test.sh: PostgreSQL and Redis are needed for the tests (see above)" >&2
    exit "$rc"
}
eval "$services"

# Tests create one scratch database per hub, named hub_test_<run>_<random> after
# HUB_TEST_RUN (crates/store/src/test_support.rs); drop this run's when done, and nothing
# else: another run may be using its databases right now.
HUB_TEST_RUN=r$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export HUB_TEST_RUN

drop_scratch_databases() {
    command -v psql >/dev/null 2>&1 || return 0
    psql "$DATABASE_URL" -Atc "select datname from pg_database where datname like 'hub\_test\_${HUB_TEST_RUN}\_%'" 2>/dev/null |
        while read -r db; do
            psql "$DATABASE_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
        done
}

stop_services() {
    drop_scratch_databases
    if [[ -n ${HUB_TEST_SERVICES_STARTED:-} ]]; then
        scripts/test-services.sh stop "$HUB_TEST_SERVICES_STARTED" || true
    fi
}
trap stop_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "test.sh: DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL HUB_TEST_RUN=$HUB_TEST_RUN" >&2

status=0
echo "test.sh: cargo test --workspace --all-targets --locked $*" >&2
"$CARGO" test --workspace --all-targets --locked "$@" || status=$?

# The second run repeats the journey suite on PostgreSQL + Redis; the scale, proxy and
# fleet key-rotation tests always use those already, so they are not run twice.
second=("$@")
if ((${#second[@]} == 0)); then second=(-- --skip scale:: --skip proxy:: --skip key_rotation::a_fleet); fi
echo "test.sh: HUB_TEST_BACKEND=postgres cargo test --workspace --locked --test tests ${second[*]}" >&2
rc=0
HUB_TEST_BACKEND=postgres "$CARGO" test --workspace --locked --test tests "${second[@]}" || rc=$?
if ((status == 0)); then status=$rc; fi

# The alert rules as Prometheus reads them (tests/ops_kit.rs checks their metric names).
if command -v promtool >/dev/null 2>&1; then
    echo "test.sh: promtool check rules / test rules on ops/prometheus/" >&2
    rc=0
    { promtool check rules ops/prometheus/alerts.yml &&
        promtool test rules ops/prometheus/alerts.test.yml; } >&2 || rc=$?
    if ((status == 0)); then status=$rc; fi
else
    echo "test.sh: promtool not found: skipping the alert rules check (apt-get install prometheus)" >&2
fi

exit "$status"
