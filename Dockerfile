# Rill image: `rill-broker` (one node) and `rill` (console, CLI, dev cluster).
# Used by docker-compose.yml; build alone with `docker build -t rill:local .`.

# ---- build -------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rill-broker -p rill-admin --bins \
 && install -D -m 0755 target/release/rill-broker /out/rill-broker \
 && install -D -m 0755 target/release/rill /out/rill

# ---- run ---------------------------------------------------------------------------
FROM debian:bookworm-slim
# curl: the compose healthchecks (GET /readyz); ca-certificates for TLS endpoints.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/rill --create-home --shell /usr/sbin/nologin rill
COPY --from=build /out/rill-broker /out/rill /usr/local/bin/
USER rill
WORKDIR /var/lib/rill
VOLUME ["/var/lib/rill"]
# Kafka, controller (metadata quorum), broker HTTP API, console.
EXPOSE 9092 9093 9644 8080
ENV RILL_LOG=info
# With no arguments: a one-node cluster listening on every interface. Its HTTP API is open
# (http.auth.allow.unauthenticated=true), for a container on a private network; anywhere else
# set http.auth.token or http.auth.basic.users.file (a broker refuses an open API beyond
# loopback unless told it is intended).
CMD ["rill-broker", "--override", "listeners=PLAINTEXT://0.0.0.0:9092", "--override", "http.listener=0.0.0.0:9644", "--override", "http.auth.allow.unauthenticated=true", "--override", "log.dirs=/var/lib/rill/data"]
