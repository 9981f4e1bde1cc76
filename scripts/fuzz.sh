#!/usr/bin/env bash
# A short fuzzing run of every cargo-fuzz target in fuzz/: FUZZ_SECONDS each
# (default 10). The seeds in fuzz/corpus/<target>/ are copied to a temporary
# directory first, so what the fuzzer adds is not written into the repo. Any
# crash is a bug: the run goes on with the other targets, then fails and
# names each crash's input (fuzz/artifacts/<target>/…) and how to replay it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-10}"
# Its own cache: sanitizer and coverage flags would rebuild the main one.
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/mcp-auth-broker/fuzz-target}"
export CARGO_TARGET_DIR="$target_dir"
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); the stable
# toolchain accepts them with this.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# -a: debug assertions (integer overflow checks) in the library as well.
flags=(--debug-assertions --target-dir "$target_dir")
cargo fuzz build "${flags[@]}"
# fuzz/Cargo.lock follows the broker's: a dependency added there lands here
# at the build above (cargo-fuzz has no --locked), and is worth committing.
git diff --quiet -- Cargo.lock 2>/dev/null ||
  echo "note: fuzz/Cargo.lock changed with the broker's dependencies; commit it"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crashes=()
for target in $(cargo fuzz list); do
  corpus="$work/corpus/$target"
  mkdir -p "$corpus"
  cp corpus/"$target"/* "$corpus"/
  log="$work/$target.log"
  printf '\n--- %s (%ss)\n' "$target" "$seconds"
  if cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    grep -E '^Done [0-9]+ runs' "$log" || true
    echo "$target: ${runs:-?} inputs, $(ls "$corpus" | wc -l) in the corpus, no crash"
  else
    tail -n 60 "$log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    crashes+=("$target: ${artifact:-no artifact, see the log above}")
  fi
done

if [ "${#crashes[@]}" -gt 0 ]; then
  printf '\nFUZZING FOUND CRASHES (each is a bug):\n'
  for crash in "${crashes[@]}"; do
    printf '  %s\n' "$crash"
  done
  printf 'Replay one: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> <artifact>\n'
  exit 1
fi
