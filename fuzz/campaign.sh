#!/usr/bin/env bash
# One fuzz campaign: `fuzz/campaign.sh TARGET [RUNS]` runs the target for RUNS executions
# (default 1,000,000; at most FUZZ_SECONDS, default 1800) with its dictionary and bounds (10 s per input, 2 GiB RSS, 512 MiB per
# allocation), then merges what it found into the committed corpus, minimized.
# FUZZ_TIMEOUT (seconds per input, default 10) is wall-clock time: a campaign under `nice -n 19`
# on a busy machine can be descheduled that long, so give it more there.
# Built without a sanitizer (augur's one unsafe call, malloc_trim, is in no harness) but with overflow checks and debug
# assertions. Needs the nightly toolchain and `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
target=$1
runs=${2:-1000000}
case $target in
  selector) max_len=512 ;;
  template|router) max_len=1024 ;;
  onnx) max_len=16384 ;;
  *) max_len=4096 ;;
esac
work=${FUZZ_WORK:-/tmp/augur-fuzz}/$target
mkdir -p "$work" "corpus/$target" "artifacts/$target"
flags=(-O -a -s none --codegen-units 16)
# FUZZ_NO_BUILD=1 runs the binary as built last (while the sources change); FUZZ_FLAGS adds
# libFuzzer flags (e.g. -fork=1 -ignore_crashes=1 to go on past a known crash).
[[ ${FUZZ_NO_BUILD:-} == 1 ]] || cargo +nightly fuzz build "${flags[@]}" "$target"
bin=target/x86_64-unknown-linux-gnu/release/$target
"$bin" ${FUZZ_FLAGS:-} "$work" "corpus/$target" -runs="$runs" -dict="dict/$target.dict" -max_len="$max_len" \
  -len_control=0 -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -malloc_limit_mb=512 -max_total_time="${FUZZ_SECONDS:-1800}" \
  -artifact_prefix="artifacts/$target/" -print_final_stats=1
# Keep only inputs that add an edge (hit counts ignored): the committed corpus stays small
# enough to replay in seconds; the full one stays in $work for the next campaign.
merged=$(mktemp -d)
"$bin" -merge=1 -use_counters=0 "$merged" "corpus/$target" "$work" -max_len="$max_len" -timeout="${FUZZ_TIMEOUT:-10}" \
  -rss_limit_mb=2048 -malloc_limit_mb=512 >/dev/null 2>&1
rm -rf "corpus/$target"
mv "$merged" "corpus/$target"
echo "corpus/$target: $(ls "corpus/$target" | wc -l) inputs"
