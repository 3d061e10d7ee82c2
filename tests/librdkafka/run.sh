#!/usr/bin/env bash
# librdkafka's own regression tests against a real Rill cluster (see README.md here).
#
#   bash tests/librdkafka/run.sh [BROKER_BIN] [SCRATCH_DIR]
#
# BROKER_BIN   the rill-broker to test (default: target/debug/rill-broker)
# SCRATCH_DIR  where librdkafka is copied, built and the clusters keep their data and logs
#              (default: ${TMPDIR:-/tmp}/rill-librdkafka); never inside the repository
#
# Environment:
#   RDK_TESTS           test numbers to run (default: "0055 0061 0103 0129 0137")
#   RDK_JOBS            make -j for the librdkafka build (default: 2)
#   RDK_TEST_TIMEOUT    seconds one test-runner may take before it is killed (default: 600)
#   RILL_LOG            the brokers' log level (default: info; debug for troubleshooting)
#   TEST_KAFKA_VERSION  the Kafka version librdkafka's tests assume (default: 3.7.0)
#   TEST_CONSUMER_GROUP_PROTOCOL  `consumer` runs the tests' consumers with the KIP-848
#                       protocol (librdkafka's own switch; unset: classic)
#   RDK_EXPECTED_SKIPS  sub-test names librdkafka skips by itself in this configuration
#                       (e.g. those "meaningful only with classic protocol"): not failures
#   RDK_RETRY           test numbers that get a second attempt (on a fresh cluster) when the
#                       first fails for a reason other than a broker exiting; both attempts'
#                       outcomes are printed. Only for client-side races shown in the logs
#                       (see scripts/test.sh for which and why)
#   TEST_DEBUG, TEST_LEVEL, SUBTESTS   passed to librdkafka's test-runner as usual
#
# The librdkafka source is the one rdkafka-sys vendors (found with `cargo metadata`, so the
# cargo registry must hold it: any `cargo build` of the workspace fetches it). It is copied
# to SCRATCH_DIR and built there once (PLAINTEXT only: no SSL, SASL, curl, zlib or zstd),
# then reused while the copy is complete. Each test gets a fresh 3-node cluster (the
# "default" scenario of librdkafka's trivup clusters: auto topic creation, 4 partitions,
# replication factor 3); its logs stay in SCRATCH_DIR/runs/<time>/<test>/.
#
# Prints one `PASS <test>` / `FAIL <test>: <reason>` line per test and exits non-zero when
# any test did not pass (a test librdkafka skips counts as a failure: it was not run).
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BROKER_BIN="${1:-$REPO_ROOT/target/debug/rill-broker}"
SCRATCH="${2:-${TMPDIR:-/tmp}/rill-librdkafka}"
TESTS_LIST="${RDK_TESTS:-0055 0061 0103 0129 0137}"
JOBS="${RDK_JOBS:-2}"
TEST_TIMEOUT="${RDK_TEST_TIMEOUT:-600}"
export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.7.0}"
export RILL_LOG="${RILL_LOG:-info}"
READY_TIMEOUT=90

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 2; }

[[ -x "$BROKER_BIN" ]] || die "no broker binary at $BROKER_BIN (cargo build -p rill-broker --bin rill-broker)"
BROKER_BIN="$(cd "$(dirname "$BROKER_BIN")" && pwd)/$(basename "$BROKER_BIN")"
mkdir -p "$SCRATCH" || die "cannot create $SCRATCH"
SCRATCH="$(cd "$SCRATCH" && pwd)"
case "$SCRATCH/" in "$REPO_ROOT"/*) die "SCRATCH_DIR must be outside the repository" ;; esac
for cmd in cargo python3 make gcc g++ perl pkg-config timeout; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is needed"
done

# ---------------------------------------------------------------------------------------
# 1. librdkafka and its test-runner, built out of tree from rdkafka-sys's vendored copy.
# ---------------------------------------------------------------------------------------
RDKAFKA_SYS_DIR="$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --locked 2>/dev/null |
  python3 -c '
import json, os, sys
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "rdkafka-sys"]
if pkgs:
    print(os.path.dirname(max(pkgs, key=lambda p: p["version"])["manifest_path"]))
')" || true
if [[ -z "$RDKAFKA_SYS_DIR" ]]; then
  # cargo metadata wants every package's manifest (other platforms' too) and may want the
  # network for them; the lock file's rdkafka-sys version in the registry is enough.
  ver="$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/^version = "|"$/, ""); print; exit }' \
    "$REPO_ROOT/Cargo.lock")"
  [[ -n "$ver" ]] && RDKAFKA_SYS_DIR="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$ver" 2>/dev/null | head -n 1)"
fi
[[ -n "$RDKAFKA_SYS_DIR" && -f "$RDKAFKA_SYS_DIR/librdkafka/tests/test.c" ]] ||
  die "rdkafka-sys's librdkafka source not found through cargo metadata (run a cargo build first)"
RDK_NAME="$(basename "$RDKAFKA_SYS_DIR")"   # rdkafka-sys-<ver>+<librdkafka ver>
BUILD="$SCRATCH/$RDK_NAME"
RUNNER="$BUILD/tests/test-runner"
STAMP="$BUILD/.rill-built"

build_start=$SECONDS
if [[ -f "$STAMP" && -x "$RUNNER" ]]; then
  log "librdkafka: reusing $BUILD"
else
  log "librdkafka: copying $RDKAFKA_SYS_DIR/librdkafka to $BUILD and building (make -j$JOBS)"
  rm -rf "$BUILD" "$BUILD.tmp"
  cp -R "$RDKAFKA_SYS_DIR/librdkafka" "$BUILD.tmp" && chmod -R u+w "$BUILD.tmp" &&
    mv "$BUILD.tmp" "$BUILD" || die "copying the librdkafka source failed"
  (
    cd "$BUILD" &&
      nice -n 19 ./configure --no-download --disable-ssl --disable-gssapi --disable-curl \
        --disable-zstd --disable-zlib --disable-lz4-ext --disable-syslog &&
      nice -n 19 make -j"$JOBS" libs &&
      nice -n 19 make -j"$JOBS" -C tests test-runner
  ) >"$SCRATCH/build.log" 2>&1 || { tail -n 40 "$SCRATCH/build.log" >&2; die "librdkafka build failed (log: $SCRATCH/build.log)"; }
  touch "$STAMP"
fi
log "librdkafka build: $((SECONDS - build_start))s"

# ---------------------------------------------------------------------------------------
# 2. A 3-node Rill cluster per test.
# ---------------------------------------------------------------------------------------
PIDS=()
stop_cluster() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PIDS=()
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

# Free ports below the kernel's ephemeral range (as tests/interop/conftest.py's free_port):
# the controller listeners need fixed ports known to every node before any starts.
free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
floor, got = min(10000, low - 1000), []
while len(got) < int(sys.argv[1]):
    port = random.randrange(floor, low)
    if port in got:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    got.append(port)
print(" ".join(map(str, got)))
EOF
}

# start_cluster DIR: starts nodes 1..3 with data and logs in DIR, sets BOOTSTRAP.
start_cluster() {
  local dir="$1" cports voters i
  read -r -a cports <<<"$(free_ports 3)"
  voters="1@127.0.0.1:${cports[0]},2@127.0.0.1:${cports[1]},3@127.0.0.1:${cports[2]}"
  for i in 1 2 3; do
    mkdir -p "$dir/data-$i"
    NO_COLOR=1 RUST_BACKTRACE=1 "$BROKER_BIN" \
      --override node.id=$i \
      --override cluster.id=rill-librdkafka-tests \
      --override "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:${cports[$((i - 1))]}" \
      --override "controller.quorum.voters=$voters" \
      --override http.listener=127.0.0.1:0 \
      --override "log.dirs=$dir/data-$i" \
      --override auto.create.topics.enable=true \
      --override num.partitions=4 \
      --override default.replication.factor=3 \
      --override offsets.topic.replication.factor=3 \
      --override offsets.topic.num.partitions=3 \
      --override transaction.state.log.replication.factor=3 \
      --override transaction.state.log.min.isr=2 \
      --override transaction.state.log.num.partitions=3 \
      --override group.initial.rebalance.delay.ms=0 \
      </dev/null >"$dir/node-$i.stdout" 2>"$dir/node-$i.log" &
    PIDS+=($!)
  done
  local deadline=$((SECONDS + READY_TIMEOUT)) ready addrs
  while :; do
    ready=0 addrs=()
    for i in 1 2 3; do
      kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null ||
        { tail -n 20 "$dir/node-$i.log" >&2; echo "node $i exited before it was ready"; return 1; }
      local line
      line="$(grep -m1 '^rill-broker ready: ' "$dir/node-$i.stdout" 2>/dev/null)" || continue
      [[ "$line" =~ kafka=([^ ]+) ]] && { addrs+=("${BASH_REMATCH[1]}"); ready=$((ready + 1)); }
    done
    ((ready == 3)) && break
    ((SECONDS < deadline)) || { echo "cluster not ready within ${READY_TIMEOUT}s"; return 1; }
    sleep 0.2
  done
  BOOTSTRAP="$(IFS=,; echo "${addrs[*]}")"
}

# ---------------------------------------------------------------------------------------
# 3. The tests: one test-runner per test number, local (mock cluster) variants left out (-L).
# ---------------------------------------------------------------------------------------
# reason_of OUT NUM: why test NUM failed, from test-runner's output: its summary line's
# failure string, else the first failure message ("### Test ... failed at ...: ###" and the
# line after it), else the last lines.
reason_of() {
  local out="$1" num="$2" msg
  msg="$(sed 's/\x1b\[[0-9;]*m//g' "$out" |
    grep -E "^\| +${num}_[^ ]* +\| +(FAILED|RUNNING|SKIPPED|NOT_STARTED) " |
    grep -v 'Filtered due to negative test flags' |
    sed -E 's/^\| +([^ ]+) +\| +([A-Z_]+) +\| +[0-9.]+s +\|/\1 \2:/' | tr '\n' ' ')"
  if [[ -z "${msg// /}" || "$msg" =~ (FAILED|RUNNING):\ *$ ]]; then
    msg+="$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -A1 -m1 -E '^### Test .* failed at ' | tr '\n' ' ')"
  fi
  [[ -n "${msg// /}" ]] || msg="$(sed 's/\x1b\[[0-9;]*m//g' "$out" | tail -n 3 | tr '\n' ' ')"
  printf '%s' "$msg" | tr -s ' ' | cut -c1-600
}

RUN_DIR="$SCRATCH/runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN_DIR"
# A copy of the binary: a cargo build in the shared target dir during the run must not
# change the broker between (or within) tests.
cp "$BROKER_BIN" "$RUN_DIR/rill-broker" || die "cannot copy $BROKER_BIN"
log "broker: $BROKER_BIN (copied to $RUN_DIR); TEST_KAFKA_VERSION=$TEST_KAFKA_VERSION"
BROKER_BIN="$RUN_DIR/rill-broker"

run_start=$SECONDS
failed=0
RESULTS=()
for num in $TESTS_LIST; do
 attempt=1 first_failure=""
 while :; do
  dir="$RUN_DIR/$num"
  ((attempt > 1)) && dir="$RUN_DIR/$num-attempt$attempt"
  mkdir -p "$dir"
  t0=$SECONDS
  if ! start_cluster "$dir" >"$dir/cluster-start.err"; then
    stop_cluster
    RESULTS+=("FAIL $num: cluster did not start: $(cat "$dir/cluster-start.err") (logs: $dir)")
    failed=1
    break
  fi
  printf 'metadata.broker.list=%s\n' "$BOOTSTRAP" >"$dir/test.conf"
  log "$num: cluster up in $((SECONDS - t0))s at $BOOTSTRAP; running test-runner"
  # CI unset: 0055 skips itself on CI and CI stretches every timeout; the same run everywhere.
  # rc from a command substitution: its shell, not this one, notes a test-runner that
  # aborted (librdkafka's tests abort() on a failed assertion), on a stderr sent nowhere.
  rc="$( {
    (
      cd "$dir" && # test-runner's stats_*.json files land beside its output
        exec env -u CI TESTS="$num" RDKAFKA_TEST_CONF="$dir/test.conf" RDKAFKA_GITVER="$RDK_NAME" \
          LD_LIBRARY_PATH="$BUILD/src:$BUILD/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
          timeout -k 10 "$TEST_TIMEOUT" "$RUNNER" -L -p1
    ) >"$dir/test-runner.out" 2>&1
    echo $?
  } 2>/dev/null )"
  dead=""
  for i in 1 2 3; do kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null || dead+=" $i"; done
  stop_cluster
  secs=$((SECONDS - t0))
  # The summary lines of this test number, but for its local variants that -L filtered out.
  summary="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/test-runner.out" | grep -E "^\| +${num}_[^ ]* +\| " |
    grep -v 'Filtered due to negative test flags' || true)"
  for expected in ${RDK_EXPECTED_SKIPS:-}; do
    summary="$(grep -vE "^\| +${expected} +\| +SKIPPED " <<<"$summary" || true)"
  done
  if ((rc == 0)) && grep -qE '\| +PASSED +\|' <<<"$summary" && ! grep -qE '\| +(FAILED|RUNNING|SKIPPED) +\|' <<<"$summary"; then
    if [[ -n "$first_failure" ]]; then
      RESULTS+=("PASS $num (${secs}s) on attempt $attempt; attempt 1: $first_failure")
    else
      RESULTS+=("PASS $num (${secs}s)")
    fi
  else
    why="$(reason_of "$dir/test-runner.out" "$num")"
    ((rc == 124 || rc == 137)) && why="killed after ${TEST_TIMEOUT}s; $why"
    [[ -n "$dead" ]] && why="broker node(s)$dead exited during the test (node-N.log); $why"
    # A second attempt only for a test named in RDK_RETRY, and never after a broker died.
    if ((attempt == 1)) && [[ -z "$dead" && " ${RDK_RETRY:-} " == *" $num "* ]]; then
      first_failure="FAIL (exit $rc): $why [logs: $dir]"
      log "$num: attempt 1 failed ($why); one more attempt (RDK_RETRY)"
      attempt=2
      continue
    fi
    failed=1
    RESULTS+=("FAIL $num (${secs}s, exit $rc): $why [logs: $dir]${first_failure:+; attempt 1: $first_failure}")
  fi
  log "${RESULTS[-1]}"
  break
 done
done

rm -f "$RUN_DIR/rill-broker"   # 60 MB (debug); its source is the BROKER_BIN logged above
log "tests: $((SECONDS - run_start))s; total: $((SECONDS - build_start))s"
printf '%s\n' "${RESULTS[@]}"
exit "$failed"
