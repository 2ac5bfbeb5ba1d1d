# The two commands a newcomer needs: `make run` and `make test`.
CARGO ?= cargo

.PHONY: run test lint fmt build

## Build and start the demo: hub :8080, demo IdP :8081, demo RP :8082 (SQLite under ./data).
run:
	$(CARGO) run -p hub --bin hub -- demo

## Every test: unit tests of each crate and the end-to-end journeys over loopback HTTP.
test:
	$(CARGO) test --workspace --all-targets --locked

## Lints as CI enforces them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace --locked
