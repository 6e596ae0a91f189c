#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: builds one target of fuzz/ with libFuzzer's
# SanitizerCoverage instrumentation (the flags cargo-fuzz passes, minus the nightly-only
# -Zsanitizer) and runs it for a bounded time.
#
#   fuzz/run.sh TARGET [SECONDS]      # targets: yaml_load jsonrpc token webhook
#
# New inputs go to fuzz/target/corpus/TARGET (not committed); crashes to fuzz/artifacts/.
# A crash found is fixed, then its input is added to fuzz/corpus/TARGET so the gateway's
# replay test (every_fuzz_seed_passes_its_target) keeps it fixed. Env: JOBS (cargo -j, 1);
# FUZZ_TARGET_DIR (where it builds, fuzz/target); RUNS=N for CI's bounded run: exactly N
# inputs with a fixed seed from the committed seeds only (a scratch corpus, deleted after), so the
# run is the same every time and is bounded by count, not by the machine's speed.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
secs="${2:-60}"
case "$target" in yaml_load|jsonrpc|token|webhook) ;; *) echo "unknown target $target" >&2; exit 1 ;; esac
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros (as cargo-fuzz does).
triple="$(rustc -vV | awk '/^host:/ {print $2}')"
cargo build --release --locked --target "$triple" --bin "$target" -j "${JOBS:-1}"
bin="$CARGO_TARGET_DIR/$triple/release/$target"
seeds=("corpus/$target")
if [ "$target" = yaml_load ]; then
  # Every example and schema fixture is a seed too (libFuzzer reads directories recursively).
  seeds+=(../examples ../schema/tests/fixtures)
fi
mkdir -p artifacts
opts=(-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$target-")
if [ -n "${RUNS:-}" ]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  "$bin" -runs="$RUNS" -seed=1 "${opts[@]}" "$scratch" "${seeds[@]}"
else
  work="$CARGO_TARGET_DIR/corpus/$target"
  mkdir -p "$work"
  exec "$bin" -max_total_time="$secs" "${opts[@]}" "$work" "${seeds[@]}"
fi
