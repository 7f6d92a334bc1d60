#!/usr/bin/env bash
# Fuzzing (fuzz/, cargo-fuzz + libFuzzer): runs every target for SECONDS each (default 60) on the nightly
# toolchain (libFuzzer's instrumentation needs -Z flags), installing cargo-fuzz once. No sanitizer (the code
# the targets reach has no unsafe block of its own: the only ones are gethostname, flock, the listeners' socket
# options and the UDP socket's recvmmsg, none of them on a target's path; libFuzzer's coverage guidance stays),
# debug assertions on. Corpora live in
# fuzz/corpus/<target> (committed: seeds and what earlier runs found interesting); a crash stops the run and
# leaves its input in fuzz/artifacts/<target>. Prints each target's executions.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   PLUTOS_FUZZ_RUNS=10000000 scripts/fuzz.sh 1800     stop each target after that many executions (or SECONDS)
#   PLUTOS_FUZZ_MAX_LEN=512 ...                         inputs up to that many bytes (libFuzzer's default: 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(framing framing_vs_hyper query json_body body_decoding spool_repair protocols)
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly): libFuzzer's instrumentation" \
    "uses -Z flags that stable rustc refuses" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  status=0
  started=$SECONDS
  (cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -runs="${PLUTOS_FUZZ_RUNS:--1}" \
    ${PLUTOS_FUZZ_MAX_LEN:+-max_len="$PLUTOS_FUZZ_MAX_LEN"} -print_final_stats=1 >"$log" 2>&1) || status=$?
  grep -E 'DONE|ERROR|panicked|SUMMARY|Test unit written' "$log" | tail -8 || true
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  echo "fuzz $target: $runs executions in $((SECONDS - started))s, exit $status"
  rm -f "$log"
  [ "$status" -eq 0 ] || exit "$status"
done
