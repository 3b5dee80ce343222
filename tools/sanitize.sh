#!/usr/bin/env bash
# The AddressSanitizer + UBSan run (docs/robustness.md).
#
#   tools/sanitize.sh                    build, unit tests, compile the zoo
#   tools/sanitize.sh --build-dir DIR    (default: build-asan)
#   tools/sanitize.sh --no-zoo           skip compiling the zoo
#   tools/sanitize.sh --quick            what ctest's "asan_quick" runs: only
#       the robustness tests, the fuzz replays and the frontend's unit tests,
#       and three small zoo specs (lenet5, nin, squeezenet1_1)
#
# Configures DIR with -DCNNCC_SANITIZE=ON (cnncc, the libraries and the
# tests instrumented; the runtime linked into generated .so files is not:
# hosts load those without ASan), builds, runs the quick tests
# (ctest -L unit: the unit tests, the robustness tests with LeakSanitizer,
# the fuzz regressions), then compiles every zoo spec (examples/*.yaml) to a
# .so with the instrumented cnncc. Any ASan, UBSan or LSan report fails it.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dir="$src/build-asan" zoo=1 quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) dir="$2"; shift 2 ;;
    --no-zoo) zoo=0; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNCC_SANITIZE=ON >/dev/null
specs=("$src"/examples/*.yaml)
if [ "$quick" = 1 ]; then
  quick_tests=(test_cli test_runtime test_abi fuzz_replay_spec fuzz_replay_safetensors
               test_frontend test_safetensors test_weights)
  cmake --build "$dir" -j"$(nproc)" --target cnncc cnnrt robustness_models "${quick_tests[@]}" >/dev/null
  ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" \
        -R "^($(IFS='|'; echo "${quick_tests[*]}"))\$"
  specs=("$src"/examples/{lenet5,nin,squeezenet1_1}.yaml)
else
  cmake --build "$dir" -j"$(nproc)"
  ctest --test-dir "$dir" --output-on-failure -L unit -j"$(nproc)"
fi

[ "$zoo" = 1 ] || exit 0
out=$(mktemp -d /tmp/cnncc-asan-zoo-XXXXXX)
trap 'rm -rf "$out"' EXIT
fail=0
for spec in "${specs[@]}"; do
  net=$(basename "$spec" .yaml)
  start=$(date +%s)
  if "$dir/cnncc" "$spec" -o "$out/$net.so" --external-weights >"$out/$net.log" 2>&1; then
    echo "sanitize.sh: $net: clean ($(( $(date +%s) - start )) s)"
  else
    echo "sanitize.sh: $net: FAILED" >&2
    tail -n 40 "$out/$net.log" >&2
    fail=1
  fi
  rm -f "$out/$net.so" "$out/$net.so.weights"
done
exit $fail
