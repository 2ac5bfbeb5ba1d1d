# syntax=docker/dockerfile:1
# The production image of the `hub` binary (docs/operations.md, "Production deployment").
#
#   docker build -t identity-hub .
#   docker run -p 8080:8080 -e HUB_DATABASE__URL=postgres://... identity-hub
#   docker run ... identity-hub migrate        # one-off jobs: migrate, keys init, ...
#
# The binary carries everything it reads at run time except its keys and configuration:
# config/default.toml, the database migrations, the page templates, GOV.UK Frontend's
# assets and the locales are compiled in. It needs no CA bundle either (rustls with
# webpki's roots).

# At least the highest rust-version among Cargo.lock's packages (1.89: actix-web, uuid).
FROM rust:1.89-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p identity-hub --bin hub \
    && install -D -m 0755 target/release/hub /out/usr/local/bin/hub \
    && install -d -m 0700 /out/var/lib/hub

# glibc and libgcc only (what a Rust binary links), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/hub /usr/local/bin/hub
# data.dir: the keys (keys/, mount the shared key directory or secrets here) and, only
# when no database.url is given, a SQLite file. Owned by the image's non-root user.
COPY --from=builder --chown=65532:65532 /out/var/lib/hub /var/lib/hub
WORKDIR /var/lib/hub
ENV HUB_SERVER__BIND=0.0.0.0:8080 \
    HUB_DATA__DIR=/var/lib/hub \
    HUB_DATABASE__URL=sqlite:///var/lib/hub/hub.db \
    HUB_LOG_JSON=1
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: the image has no shell or HTTP client to run one. Point the
# orchestrator's probes at GET /healthz (liveness) and GET /readyz (readiness: 503 while
# PostgreSQL or Redis does not answer). SIGTERM drains in-flight requests (up to 30 s).
ENTRYPOINT ["/usr/local/bin/hub"]
CMD ["serve"]
