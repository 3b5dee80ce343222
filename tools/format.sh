#!/usr/bin/env bash
# The tree's one style (.clang-format, clang-format 19):
#   tools/format.sh           reformat every tracked .c and .h in place
#   tools/format.sh --check   list the files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format-19}
command -v "$cf" >/dev/null || { echo "format: $cf not found (tools/deps.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ "${1:-}" = "--check" ]; then
  # One clang-format process for the whole tree (one per file took minutes
  # on a loaded 2-core machine); its complaints name file:line:col.
  out=$("$cf" --dry-run -Werror "${files[@]}" 2>&1) && rc=0 || rc=$?
  if [ $rc -ne 0 ]; then
    bad=$(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error:.*/\1/p' | sort -u)
    [ -n "$bad" ] || { printf '%s\n' "$out" >&2; exit 1; }
    printf 'format: %s differs from .clang-format (run tools/format.sh)\n' $bad
    exit 1
  fi
  echo "format: ${#files[@]} files match .clang-format"
  exit 0
fi
"$cf" -i "${files[@]}"
