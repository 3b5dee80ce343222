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
  bad=0
  for f in "${files[@]}"; do
    if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then
      echo "format: $f differs from .clang-format (run tools/format.sh)"
      bad=1
    fi
  done
  [ $bad -eq 0 ] && echo "format: ${#files[@]} files match .clang-format"
  exit $bad
fi
"$cf" -i "${files[@]}"
