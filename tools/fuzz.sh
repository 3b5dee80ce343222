#!/usr/bin/env bash
# Fuzzes the spec frontend, the safetensors reader, the ONNX frontend, and
# generated networks down to machine code (codegen) with libFuzzer
# (tests/fuzz/; docs/robustness.md).
#
#   tools/fuzz.sh                      60 s per target (ctest's "fuzz" runs 40)
#   tools/fuzz.sh --time 3600 --jobs 2 the long run: an hour per target, 2 workers
#   tools/fuzz.sh --time 600 spec      one target only (spec | safetensors | onnx | codegen)
#   tools/fuzz.sh --build-dir DIR      build directory (default: build-fuzz)
#
# Configures DIR with CC=clang-19 -DCNNCC_FUZZ=ON (ASan + UBSan + libFuzzer)
# and builds the fuzz targets. The corpus DIR/corpus/TARGET persists between
# runs and starts from the seeds (the zoo, tests/fuzz/seeds/). A crash stops
# the run with status 1 and leaves its input in DIR/artifacts/; copy it to
# tests/fuzz/regressions/TARGET/ (fuzz_replay_TARGET then replays it in every
# build), fix the bug, and name the regression after the input class.
# Exit 77 (ctest: skipped) when clang-19 or libFuzzer is not installed.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
time=60 jobs=1 dir="$src/build-fuzz" targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build-dir) dir="$2"; shift 2 ;;
    spec|safetensors|onnx|codegen) targets+=("$1"); shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(spec safetensors onnx codegen)

cc=$(command -v clang-19 || true)
if [ -z "$cc" ] || ! ls /usr/lib/llvm-19/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: clang-19 with libFuzzer not found (apt-get install clang-19 libclang-rt-19-dev); skipping"
  exit 77
fi

mkdir -p "$dir"
CC="$cc" cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNCC_FUZZ=ON -DCNNCC_TESTS=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

status=0
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t"
  mkdir -p "$corpus" "$dir/artifacts"
  if [ "$t" = spec ]; then
    cp -n "$src"/examples/*.yaml "$src"/examples/blocks/*.yaml "$corpus"/ 2>/dev/null || true
    seeds=("$src/tests/fuzz/seeds/spec" "$src/tests/fuzz/regressions/spec")
    dict="$src/tests/fuzz/spec.dict"
    maxlen=16384
  elif [ "$t" = onnx ]; then
    # ONNX's own test models (Debian libonnx-testdata), named by their case
    for m in /usr/share/libonnx-testdata/data/{node,simple,pytorch-converted,pytorch-operator}/*/model.onnx; do
      [ -f "$m" ] && cp -n "$m" "$corpus/$(basename "$(dirname "$m")").onnx" 2>/dev/null || true
    done
    seeds=("$src/tests/fuzz/regressions/onnx")
    dict=""
    maxlen=65536
  elif [ "$t" = codegen ]; then
    # the generator's choices (tests/difftest/gen.h): any bytes make a network
    seeds=("$src/tests/fuzz/seeds/codegen" "$src/tests/fuzz/regressions/codegen")
    dict=""
    maxlen=1024
  else
    seeds=("$src/tests/fuzz/seeds/safetensors" "$src/tests/fuzz/regressions/safetensors")
    dict="$src/tests/fuzz/safetensors.dict"
    maxlen=4096
  fi
  log="$dir/fuzz-$t.log"
  bin="$dir/tests/fuzz/fuzz_$t"
  echo "fuzz.sh: fuzz_$t for ${time}s ($jobs worker(s)); log $log"
  tmo=20
  [ "$t" = codegen ] && tmo=60 # LLVM at -O3 under ASan
  args=(-max_total_time="$time" -max_len="$maxlen" -timeout="$tmo"
        -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$dir/artifacts/$t-" "$corpus" "${seeds[@]}")
  [ -z "$dict" ] || args=(-dict="$dict" "${args[@]}")
  rc=0
  if [ "$jobs" -gt 1 ]; then
    (cd "$dir" && "$bin" -fork="$jobs" -ignore_crashes=0 "${args[@]}") >"$log" 2>&1 || rc=$?
  else
    "$bin" "${args[@]}" >"$log" 2>&1 || rc=$?
  fi
  execs=$( (grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" || true) |
          awk '{s+=$2} END {print s+0}')
  if [ "$execs" = 0 ]; then
    execs=$( (grep -aoE '^#[0-9]+' "$log" || true) | tail -1 | tr -d '#')
  fi
  cov=$( (grep -aoE 'cov: [0-9]+' "$log" || true) | tail -1)
  echo "fuzz.sh: fuzz_$t: ${execs:-?} executions, $cov, corpus $(ls "$corpus" | wc -l) files, exit $rc"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz.sh: fuzz_$t FAILED; the end of $log:" >&2
    tail -n 60 "$log" >&2
    ls -t "$dir"/artifacts/"$t"-* 2>/dev/null | head -3 >&2 || true
    status=1
  fi
done
exit $status
