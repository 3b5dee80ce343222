#!/usr/bin/env bash
# Golden tests of cnncc's diagnostics: runs one case (or all) and diffs.
#
#   tests/diag/run.sh CNNCC WORKDIR [CASE...]     check (all cases if none given)
#   tests/diag/run.sh --update CNNCC WORKDIR [CASE...]   rewrite the .stderr files
#
# A case NAME is tests/diag/cases/NAME.stderr, the exact expected stderr, plus
#   NAME.yaml   the spec (optional when NAME.args names another file)
#   NAME.args   the command line after "cnncc" (default: NAME.yaml -o @W@/NAME.so)
#   NAME.exit   the expected exit status (default 1)
# cnncc runs in tests/diag/cases/, so diagnostics show relative paths; @W@
# in NAME.args and in the output stands for WORKDIR, where make_weights.py
# wrote the safetensors files (the runner writes them if they are missing).
# stdout must be empty. On a mismatch the runner prints the command and a
# unified diff (expected -> actual) and exits 1.
set -uo pipefail
update=0
if [ "${1:-}" = --update ]; then update=1; shift; fi
if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
cnncc=$(realpath "$1")
work=$(mkdir -p "$2" && realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
cases="$here/cases"
if [ ! -f "$work/good.safetensors" ]; then
  python3 "$here/make_weights.py" "$work" || exit 2
fi
if [ $# -eq 0 ]; then
  set -- $(cd "$cases" && ls *.stderr | sed 's/\.stderr$//')
fi

failed=0
for name in "$@"; do
  if [ ! -f "$cases/$name.stderr" ] && [ $update -eq 0 ]; then
    echo "diag: no case '$name' ($cases/$name.stderr)" >&2
    failed=$((failed + 1))
    continue
  fi
  if [ -f "$cases/$name.args" ]; then
    args=$(sed "s|@W@|$work|g" "$cases/$name.args")
  else
    args="$name.yaml -o $work/$name.so"
  fi
  want_rc=1
  [ -f "$cases/$name.exit" ] && want_rc=$(cat "$cases/$name.exit")
  # shellcheck disable=SC2086  # args is a word list by design
  (cd "$cases" && exec "$cnncc" $args) >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  sed -i "s|$work|@W@|g" "$work/$name.err"
  if [ $update -eq 1 ]; then
    cp "$work/$name.err" "$cases/$name.stderr"
    echo "diag: updated $name (exit $rc)"
    continue
  fi
  ok=1
  if ! diff -u --label "$name.stderr (expected)" --label "$name.stderr (actual)" \
      "$cases/$name.stderr" "$work/$name.err" >"$work/$name.diff"; then
    ok=0
  fi
  if [ $rc -ne "$want_rc" ] || [ -s "$work/$name.out" ]; then ok=0; fi
  if [ $ok -eq 1 ]; then
    echo "diag: ok   $name"
  else
    failed=$((failed + 1))
    echo "diag: FAIL $name"
    echo "  command: (cd tests/diag/cases && cnncc $(cat "$cases/$name.args" 2>/dev/null || echo "$name.yaml -o @W@/$name.so"))"
    [ $rc -ne "$want_rc" ] && echo "  exit status $rc, expected $want_rc"
    [ -s "$work/$name.out" ] && { echo "  unexpected stdout:"; sed 's/^/    /' "$work/$name.out"; }
    [ -s "$work/$name.diff" ] && cat "$work/$name.diff"
  fi
  rm -f "$work/$name.so"
done
[ $failed -eq 0 ] || { echo "diag: $failed case(s) failed"; exit 1; }
