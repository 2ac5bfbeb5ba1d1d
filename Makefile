# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint fmt build

## Build and start the demo: hub :8080, demo IdP :8081, demo RP :8082 (SQLite under ./data).
run:
	$(CARGO) run --bin hub -- demo

## Every test: unit tests of each crate and the end-to-end journeys over loopback HTTP, then
## the journeys again against PostgreSQL and Redis (found, or started and stopped, by
## scripts/test-services.sh; set DATABASE_URL / REDIS_URL to use your own).
test:
	CARGO="$(CARGO)" scripts/test.sh

## Lints as CI enforces them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace --locked
