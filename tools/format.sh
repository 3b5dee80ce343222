#!/usr/bin/env bash
# The tree's one style (.clang-format):
#   tools/format.sh           reformat every tracked .c and .h in place (clang-format 19)
#   tools/format.sh --check   list the files that differ, exit 1 if any
# --check asks clang-format 19 (what tools/deps.sh installs) and the plain
# `clang-format` of the machine (Debian 12's is 14) when it is there: the
# tree passes `clang-format --dry-run -Werror` with either. Where the two
# versions disagree (a few braced macro bodies), the lines sit between
# /* clang-format off */ and /* clang-format on */.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format-19}
command -v "$cf" >/dev/null || { echo "format: $cf not found (tools/deps.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ "${1:-}" = "--check" ]; then
  checkers=("$cf")
  if [ -z "${CLANG_FORMAT:-}" ] && command -v clang-format >/dev/null &&
     [ "$(readlink -f "$(command -v clang-format)")" != "$(readlink -f "$(command -v "$cf")")" ]; then
    checkers+=(clang-format)
  fi
  rc=0
  for c in "${checkers[@]}"; do
    ver=$("$c" --version | sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p')
    # One clang-format process for the whole tree (one per file took minutes
    # on a loaded 2-core machine); its complaints name file:line:col.
    out=$("$c" --dry-run -Werror "${files[@]}" 2>&1) && r=0 || r=$?
    if [ $r -ne 0 ]; then
      bad=$(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error:.*/\1/p' | sort -u)
      [ -n "$bad" ] || { printf '%s\n' "$out" >&2; exit 1; }
      printf "format: %s differs from .clang-format under $c $ver (run tools/format.sh)\n" $bad
      rc=1
    else
      echo "format: ${#files[@]} files match .clang-format under $c $ver"
    fi
  done
  exit $rc
fi
"$cf" -i "${files[@]}"
