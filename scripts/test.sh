#!/usr/bin/env bash
# The test command: installs what the tests need (only what is missing), builds the
# workspace once, and runs every suite:
#   compose     docker-compose.yml validated by `docker-compose config -q` (no engine needed)
#   rust        the Rust suite (nextest); the console store tests start their own
#               PostgreSQL from Debian's postgresql binaries on loopback
#   interop     tests/interop: real rill-broker processes driven by kafka-python,
#               confluent-kafka and kcat
#   librdkafka  tests/librdkafka: librdkafka's own regression tests 0061, 0103, 0129, 0137,
#               and 0018, 0102, 0045 with group.protocol=consumer (KIP-848)
#               (consumer lag, transactions, aborted fetches, control records) against 3-node
#               clusters, built from the librdkafka rdkafka-sys vendors
#   prometheus  tests/prometheus: Debian's prometheus scraping a real 3-node cluster (and the
#               console): every PromQL expression of dashboards/ returns data; promtool
#   browser     tests/browser: Debian's chromium driven by playwright-core (node --test)
#               through the console against real brokers; screenshots in tests/artifacts/browser
# Idempotent; meant for root on Debian 12 with Rust, cargo-nextest, Python 3 + pip and
# Node.js 20+ with npm present.
#
#   bash scripts/test.sh              # everything
#   SKIP_INSTALL=1 bash scripts/test.sh   # do not touch apt/pip/npm
#   PYTEST_ARGS='-k kcat' bash scripts/test.sh   # passed to the interop suite
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# CI builds a fresh clone once: an incremental cache would only cost disk (it grew to
# tens of GB here). Export CARGO_INCREMENTAL=1 to keep it for edit-test loops.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
START=$SECONDS

log() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------
# 1. Install what is missing.
# ---------------------------------------------------------------------------------
# command -> Debian package. kcat for the interop suite; make..pkg-config build librdkafka
# (rdkafka-sys, a dev-dependency) and the codec crates from source; prometheus/promtool for
# tests/prometheus; postgresql for the console store tests; chromium for tests/browser;
# docker-compose (v1, Python) validates docker-compose.yml without a container engine.
APT_CMDS=(kcat:kcat make:make gcc:gcc g++:g++ perl:perl pkg-config:pkg-config
  prometheus:prometheus promtool:prometheus chromium:chromium docker-compose:docker-compose)
APT_LIBS=(zlib1g-dev)

# initdb/pg_ctl of the newest installed PostgreSQL (Debian keeps them off PATH).
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

install_system_packages() {
  local missing=() entry cmd pkg
  for entry in "${APT_CMDS[@]}"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  for pkg in "${APT_LIBS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  local pgbin; pgbin="$(pg_bindir)"
  [[ -n "$pgbin" && -x "$pgbin/initdb" && -x "$pgbin/pg_ctl" ]] || missing+=(postgresql)
  if ((${#missing[@]} == 0)); then
    echo "system packages: all present"
    return
  fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing system packages (${missing[*]}) and not root: install them first" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start their services (prometheus, postgresql): the tests start their
  # own on loopback. policy-rc.d exit 101 = "not allowed"; only ours is removed afterwards.
  local own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  local rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
  ((own_policy)) && rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

install_python_packages() {
  local extra=()
  # Debian's own python3 is "externally managed" (PEP 668); this machine is a test box.
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    extra+=(--break-system-packages)
  fi
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${extra[@]}" \
    -r tests/interop/requirements.txt -r tests/prometheus/requirements.txt
}

# playwright-core into tests/browser/node_modules from the lockfile; skipped when the locked
# version is already there.
install_node_packages() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node and npm are needed for tests/browser (Node.js 20+)" >&2
    return 1
  fi
  if (cd tests/browser && node -e '
      const want = require("./package-lock.json").packages["node_modules/playwright-core"].version;
      const have = require("./node_modules/playwright-core/package.json").version;
      process.exit(want === have ? 0 : 1)' 2>/dev/null); then
    echo "npm packages: all present"
    return
  fi
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  log "install: system packages"
  install_system_packages
  log "install: python packages (tests/interop, tests/prometheus requirements.txt)"
  install_python_packages
  log "install: npm packages (tests/browser)"
  install_node_packages
fi

# ---------------------------------------------------------------------------------
# 2. Build once; every later step reuses target/.
# ---------------------------------------------------------------------------------
declare -A RESULT=()
STEPS=(compose build rust interop librdkafka librdkafka-kip848 prometheus browser)
FAILED=0

run_step() {  # run_step NAME CMD... : records pass/FAIL, never aborts the script
  local name="$1"; shift
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  if ((rc == 0)); then
    RESULT[$name]="ok ($((SECONDS - t0))s)"
  else
    RESULT[$name]="FAILED (exit $rc, $((SECONDS - t0))s)"
    FAILED=1
  fi
  return 0
}

summary() {
  echo
  echo "==> summary ($((SECONDS - START))s)"
  local s
  for s in "${STEPS[@]}"; do
    printf '    %-10s %s\n' "$s" "${RESULT[$s]:-skipped}"
  done
  if ((FAILED)); then
    echo "scripts/test.sh: FAILED"
  else
    echo "scripts/test.sh: all steps passed"
  fi
}

# docker-compose.yml is only validated here: this machine runs no container engine.
compose_config() {
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f docker-compose.yml config -q
  elif docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config -q
  else
    echo "neither docker-compose nor the docker compose plugin is installed" >&2
    return 1
  fi
}
log "compose: docker-compose config -q"
run_step compose compose_config

log "build: cargo build --workspace --all-targets"
run_step build cargo build --workspace --all-targets

if [[ "${RESULT[build]}" == ok* ]]; then
  # -----------------------------------------------------------------------------
  # 3. Rust suite.
  # -----------------------------------------------------------------------------
  if cargo nextest --version >/dev/null 2>&1; then
    log "rust: cargo nextest run --workspace --no-fail-fast"
    run_step rust cargo nextest run --workspace --no-fail-fast --no-tests=warn
  else
    log "rust: cargo-nextest not found, falling back to cargo test --workspace"
    run_step rust cargo test --workspace --no-fail-fast
  fi

  # -----------------------------------------------------------------------------
  # 4. Python suites against the freshly built binaries.
  # -----------------------------------------------------------------------------
  TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$REPO_ROOT/$TARGET_DIR"
  export RILL_BROKER_BIN="${RILL_BROKER_BIN:-$TARGET_DIR/debug/rill-broker}"
  export RILL_BIN="${RILL_BIN:-$TARGET_DIR/debug/rill}"
  pytest_suite() {  # pytest_suite DIR ARGS...: exit 5 (no tests collected) is a failure
    local dir="$1" rc=0; shift
    python3 -m pytest -q "$dir" "$@" || rc=$?
    if ((rc == 5)); then
      echo "$dir: pytest collected no tests (exit 5): treated as a failure" >&2
    fi
    return "$rc"
  }
  log "interop: python3 -m pytest -q tests/interop (broker: $RILL_BROKER_BIN)"
  # shellcheck disable=SC2086 # PYTEST_ARGS is a word list on purpose
  run_step interop pytest_suite tests/interop ${PYTEST_ARGS:-}

  # librdkafka's own tests of what Rill serves it (transactions, read_committed, lag), built
  # out of tree in a scratch dir. 0055 (producer latency) is left to manual runs
  # (tests/librdkafka/README.md): it compares wall-clock averages with a 5 ms slack.
  log "librdkafka: tests/librdkafka/run.sh (${RDK_TESTS:-0061 0103 0129 0137})"
  run_step librdkafka env RDK_TESTS="${RDK_TESTS:-0061 0103 0129 0137}" \
    bash tests/librdkafka/run.sh "$RILL_BROKER_BIN"

  # The same tests' consumers on the KIP-848 protocol (librdkafka's TEST_CONSUMER_GROUP_PROTOCOL):
  # 0018 (group terminate), 0102 (static members), 0045 (subscription changes, regexes). Two of
  # 0045's sub-tests skip themselves under this protocol ("meaningful only with classic").
  # 0045_subscribe_many_updates (subscribe/unsubscribe/subscribe within a millisecond) races in
  # librdkafka 2.12.1's KIP-848 state machine, about one run in three here: it sends its leave
  # heartbeat while another is in flight and then either never heartbeats again, or rejoins
  # with epoch 0 and no RebalanceTimeoutMs, which Kafka's own validation refuses with
  # INVALID_REQUEST exactly as Rill does (the broker logs the refusal). So 0045 gets a second
  # attempt on a fresh cluster (RDK_RETRY); both outcomes are in the log.
  log "librdkafka-kip848: tests/librdkafka/run.sh (0018 0102 0045, group.protocol=consumer)"
  run_step librdkafka-kip848 env RDK_TESTS="0018 0102 0045" TEST_CONSUMER_GROUP_PROTOCOL=consumer \
    RDK_RETRY="0045" \
    TEST_KAFKA_VERSION=4.0.0 \
    RDK_EXPECTED_SKIPS="0045_subscribe_update_topic_remove 0045_subscribe_update_non_exist_and_partchange" \
    bash tests/librdkafka/run.sh "$RILL_BROKER_BIN"

  # Every PromQL expression in dashboards/ against Debian's prometheus scraping a 3-node
  # cluster (and `rill console` when the build has it); -rs lists what was skipped and why.
  log "prometheus: python3 -m pytest -q -rs tests/prometheus"
  run_step prometheus pytest_suite tests/prometheus -rs

  # -----------------------------------------------------------------------------
  # 5. Browser suite (Debian's chromium, playwright-core).
  # -----------------------------------------------------------------------------
  # Every tests/browser/*.test.mjs, one file at a time (each starts its own brokers and
  # console on ephemeral loopback ports); screenshots of every step and the processes' logs
  # land in tests/artifacts/browser/, emptied first so they are this run's.
  log "browser: node --test (tests/browser)"
  browser() {
    rm -rf tests/artifacts/browser
    (cd tests/browser && node --test --test-concurrency=1 --test-timeout=300000)
  }
  run_step browser browser
fi

summary
exit "$FAILED"
