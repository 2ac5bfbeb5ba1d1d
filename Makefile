# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint deny advisories cargo-deny fmt build fuzz bench

## Build and start the demo: hub :8080, demo IdP :8081, demo RP :8082 (SQLite under ./data).
run:
	$(CARGO) run -p devkit --bin hub-demo

## Every test: unit tests of each crate and the end-to-end journeys over loopback HTTP, then
## the journeys again against PostgreSQL and Redis (found, or started and stopped, by
## scripts/test-services.sh; set DATABASE_URL / REDIS_URL to use your own).
test:
	CARGO="$(CARGO)" scripts/test.sh

## Lints as CI enforces them, and the supply-chain checks.
lint: deny
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## Licences, sources and banned crates of every dependency (deny.toml), with cargo-deny
## (installed from crates.io when missing). RustSec advisories need the advisory database
## from GitHub: `make advisories` where GitHub is reachable.
CARGO_DENY_VERSION ?= 0.20.2
deny: cargo-deny
	$(CARGO) deny --locked check bans licenses sources

advisories: cargo-deny
	$(CARGO) deny --locked check advisories

cargo-deny:
	$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny@$(CARGO_DENY_VERSION)

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace --locked

## Criterion micro-benchmarks of the hot paths with short settings (figures in
## docs/performance.md; reports under target/criterion/), then a short journey benchmark.
## Not part of `make test`. BENCH_ARGS=--measurement-time 10 for steadier figures.
BENCH_ARGS ?= --warm-up-time 1 --measurement-time 3
bench:
	$(CARGO) bench --locked -p token -p matching -p audit -p store -p hub -p devkit \
		--bench tokens --bench decision --bench proofs --bench append \
		--bench audit_sqlite --bench journey --bench matching_retrieval \
		--bench idp_id_token -- $(BENCH_ARGS)
	if [ -x scripts/bench-journeys.sh ]; then scripts/bench-journeys.sh --short; fi

## Fuzz every target in fuzz/ for FUZZ_SECS seconds each (nightly and cargo-fuzz;
## docs/fuzzing.md). Not part of `make test`. A crash stops with its input in
## fuzz/artifacts/<target>/.
FUZZ_SECS ?= 60
FUZZ_CARGO ?= cargo +nightly
fuzz:
	cd fuzz && for t in $$($(FUZZ_CARGO) fuzz list); do \
		mkdir -p corpus/$$t; \
		seeds=; if [ -d seeds/$$t ]; then seeds=seeds/$$t; fi; \
		$(FUZZ_CARGO) fuzz run $$t corpus/$$t $$seeds -- -max_total_time=$(FUZZ_SECS) || exit 1; \
	done
