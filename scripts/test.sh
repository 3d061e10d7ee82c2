#!/usr/bin/env bash
# The test command: installs what the tests need (only what is missing), builds the
# workspace once, runs the Rust suite (nextest) and the Python interop suite
# (tests/interop, real rill-broker processes driven by kafka-python, confluent-kafka, kcat).
# Idempotent; meant for root on Debian 12 with Rust, cargo-nextest, Python 3 + pip present.
#
#   bash scripts/test.sh              # everything
#   SKIP_INSTALL=1 bash scripts/test.sh   # do not touch apt/pip
#   PYTEST_ARGS='-k kcat' bash scripts/test.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
START=$SECONDS

log() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------
# 1. Install what is missing.
# ---------------------------------------------------------------------------------
# command -> Debian package. kcat for the interop suite; the rest builds librdkafka
# (rdkafka-sys, a dev-dependency) and the codec crates from source.
APT_CMDS=(kcat:kcat make:make gcc:gcc g++:g++ perl:perl pkg-config:pkg-config)
APT_LIBS=(zlib1g-dev)

install_system_packages() {
  local missing=() entry cmd pkg
  for entry in "${APT_CMDS[@]}"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  for pkg in "${APT_LIBS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    echo "system packages: all present"
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing system packages (${missing[*]}) and not root: install them first" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_python_packages() {
  local extra=()
  # Debian's own python3 is "externally managed" (PEP 668); this machine is a test box.
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    extra+=(--break-system-packages)
  fi
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${extra[@]}" \
    -r tests/interop/requirements.txt
}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  log "install: system packages"
  install_system_packages
  log "install: python packages (tests/interop/requirements.txt)"
  install_python_packages
fi

# ---------------------------------------------------------------------------------
# 2. Build once; every later step reuses target/.
# ---------------------------------------------------------------------------------
declare -A RESULT=()
STEPS=(build rust interop)
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
    printf '    %-8s %s\n' "$s" "${RESULT[$s]:-skipped}"
  done
  if ((FAILED)); then
    echo "scripts/test.sh: FAILED"
  else
    echo "scripts/test.sh: all steps passed"
  fi
}

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
  # 4. Python interop suite against the freshly built broker.
  # -----------------------------------------------------------------------------
  TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$REPO_ROOT/$TARGET_DIR"
  export RILL_BROKER_BIN="${RILL_BROKER_BIN:-$TARGET_DIR/debug/rill-broker}"
  log "interop: python3 -m pytest -q tests/interop (broker: $RILL_BROKER_BIN)"
  interop() {
    local rc=0
    # shellcheck disable=SC2086 # PYTEST_ARGS is a word list on purpose
    python3 -m pytest -q tests/interop ${PYTEST_ARGS:-} || rc=$?
    if ((rc == 5)); then
      echo "interop: pytest collected no tests (exit 5): treated as a failure" >&2
    fi
    return "$rc"
  }
  run_step interop interop
fi

summary
exit "$FAILED"
