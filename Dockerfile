# mcp-auth-broker container image.
#
#   docker build -t mcp-auth-broker .
#   docker run --rm -p 127.0.0.1:8080:8080 mcp-auth-broker serve --dev   # try it (SQLite, dev sign-in)
#
# The image runs `mcp-auth-broker serve` as a non-root user and listens on
# 0.0.0.0:8080. Everything else is configuration: BROKER__SECTION__KEY
# environment variables, or a file named by BROKER_CONFIG / --config (k8s/
# mounts one from a ConfigMap). No HEALTHCHECK: orchestrators probe
# GET /healthz (liveness) and GET /readyz (readiness) themselves.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# --- build -------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_PROFILE_RELEASE_STRIP=symbols

# 1. Dependencies only, against placeholder sources: this layer is rebuilt
#    only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src \
              target/release/mcp-auth-broker* \
              target/release/.fingerprint/mcp-auth-broker-* \
              target/release/deps/mcp_auth_broker-* \
              target/release/deps/libmcp_auth_broker-*

# 2. The crate. Compile-time inputs besides src/: build.rs (if any; the
#    bracket makes it optional), askama.toml + the templates under
#    src/web/templates, sqlx::migrate!("migrations/…"), and
#    include_str!("../config/default.toml").
COPY askama.toml build.r[s] ./
COPY config ./config
COPY migrations ./migrations
COPY src ./src
# A data directory the non-root user owns, for SQLite when run outside k8s.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin mcp-auth-broker \
    && mkdir -p /out/data \
    && cp target/release/mcp-auth-broker /out/ \
    && /out/mcp-auth-broker --version

# --- runtime -----------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates, tzdata; no shell. The
# :nonroot tag runs as uid/gid 65532.
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="mcp-auth-broker" \
      org.opencontainers.image.description="OAuth 2.1 authorization broker for MCP servers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/mcp-auth-broker /usr/local/bin/mcp-auth-broker
COPY --from=builder --chown=65532:65532 /out/data /var/lib/mcp-auth-broker
# The default SQLite URL (sqlite://mcp-auth-broker.db) is relative: it lands here.
WORKDIR /var/lib/mcp-auth-broker
USER 65532:65532
ENV BROKER__SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["mcp-auth-broker"]
CMD ["serve"]
