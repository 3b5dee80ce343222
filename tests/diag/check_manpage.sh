#!/usr/bin/env bash
# Every option `cnncc --help` lists must be documented in the man page.
#   tests/diag/check_manpage.sh CNNCC docs/cnncc.1.md
set -euo pipefail
cnncc=$1 page=$2
flags=$("$cnncc" --help | grep -oE '(^|[ |,[])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[ |,[]//' | sort -u)
missing=0
for f in $flags; do
  if ! grep -qF -- "$f" "$page"; then
    echo "cli_manpage: '$f' is in 'cnncc --help' but not in $page"
    missing=1
  fi
done
n=$(echo "$flags" | wc -w)
[ $missing -eq 0 ] && echo "cli_manpage: all $n options of cnncc --help are in $page"
exit $missing
