#!/usr/bin/env bash
# The progress line of cnncc (driver/progress.c), without a terminal:
#   tests/docs/progress.sh CNNCC SOURCE_DIR WORKDIR
# 1. make_weights_for.py writes AlexNet weights (233 MB) into WORKDIR (kept
#    between runs).
# 2. --progress=always, every redraw (CNNCC_PROGRESS_INTERVAL=0): stderr
#    holds "\rcnncc: [i/8] STEP ...\033[K" lines only; the steps come in
#    order 1..8; "reading weights" and "packing weights" show at least three
#    percentages, never going down, the last one 100% (233/233 MB); the
#    stream ends with the line erased.
# 3. The same with the default throttle (10 redraws a second): both steps
#    still end at 100%, and no step is drawn more than ~10 times a second.
# 4. CNNCC_PROGRESS=always does what --progress=always does; --progress=never
#    and -q override it.
# 5. Without forcing, stderr is a file or a pipe: it stays empty (no byte of
#    progress), and the output is the same as with the line shown.
# The AlexNet runs use --external-weights: the weights are still read and
# packed (into OUT.weights), but LLVM and the linker need not copy 233 MB.
set -euo pipefail
cnncc=$1 src=$2 work=$3
mkdir -p "$work"
spec=$src/examples/alexnet.yaml
w=$work/alexnet.safetensors
ext=--external-weights
fail() { echo "progress: FAIL: $*"; exit 1; }

if [ ! -s "$w" ]; then
  /usr/bin/python3 "$src/tests/docs/make_weights_for.py" "$cnncc" "$spec" "$w.tmp"
  mv "$w.tmp" "$w"
fi
size=$(stat -L -c %s "$w")
[ "$size" -ge $((50 << 20)) ] || fail "weights file is only $size bytes"

# check_stream FILE MIN_DISTINCT: the checks of 2 and 3 on one stderr.
check_stream() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read().decode()
need = int(sys.argv[2])
assert data, "no progress at all"
assert data.endswith("\r\033[K"), "the last line is not erased: %r" % data[-80:]
lines = [l for l in data.split("\r") if l and l != "\033[K"]
bad = [l for l in lines if not re.match(r"^cnncc: \[\d+/\d+\] .*\033\[K$", l)]
assert not bad, "not a progress line: %r" % bad[:3]
steps = [int(re.match(r"cnncc: \[(\d+)/8\]", l).group(1)) for l in lines]
assert steps == sorted(steps), "steps out of order"
assert sorted(set(steps)) == list(range(1, 9)), "steps shown: %s" % sorted(set(steps))
for step in ("reading weights", "packing weights"):
    pct = [int(m.group(1)) for l in lines if step in l
           for m in [re.search(r"\s(\d+)% \((\d+)/(\d+) MB\)", l)] if m]
    print("progress: %-16s %s" % (step, " ".join("%d%%" % p for p in pct)))
    assert len(set(pct)) >= need, "%s: only %s" % (step, pct)
    assert pct == sorted(pct), "%s goes down: %s" % (step, pct)
    assert pct[-1] == 100, "%s does not end at 100%%: %s" % (step, pct)
    last = [l for l in lines if step in l][-1]
    assert re.search(r"100% \((\d+)/\1 MB\)", last), "last line: %r" % last
print("progress: %d lines, steps 1..8 in order" % len(lines))
EOF
}

echo "progress: --progress=always, every redraw"
CNNCC_PROGRESS_INTERVAL=0 "$cnncc" "$spec" --weights "$w" -o "$work/a.so" $ext --progress=always \
  2>"$work/always.err" || fail "cnncc failed: $(tr '\r' '\n' <"$work/always.err" | tail -5)"
check_stream "$work/always.err" 3 || fail "--progress=always stream"

echo "progress: CNNCC_PROGRESS=always, 10 redraws a second"
start=$(date +%s.%N)
CNNCC_PROGRESS=always "$cnncc" "$spec" --weights "$w" -o "$work/b.so" $ext 2>"$work/env.err" ||
  fail "cnncc failed"
secs=$(echo "$(date +%s.%N) - $start" | bc)
check_stream "$work/env.err" 1 || fail "CNNCC_PROGRESS=always stream"
draws=$(tr '\r' '\n' <"$work/env.err" | grep -c '^cnncc: ' || true)
# 10 a second, plus the first and the 100% draw of each of the 8 steps.
max=$(echo "$secs * 10 + 16 + 5" | bc | cut -d. -f1)
echo "progress: $draws draws in $secs s (at most $max)"
[ "$draws" -le "$max" ] || fail "$draws redraws in $secs s"

echo "progress: --progress=never and -q win over CNNCC_PROGRESS=always"
CNNCC_PROGRESS=always "$cnncc" "$src/examples/lenet5.yaml" -o "$work/l.so" --progress=never \
  2>"$work/never.err"
CNNCC_PROGRESS=always "$cnncc" "$src/examples/lenet5.yaml" -o "$work/l.so" -q 2>"$work/q.err"
[ ! -s "$work/q.err" ] || fail "-q: stderr is not empty"
grep -q $'\r' "$work/never.err" && fail "--progress=never drew a line"
[ "$(cat "$work/never.err")" = "cnncc: note: no --weights given: using the deterministic initialization (seed 0)" ] ||
  fail "--progress=never: unexpected stderr: $(cat -v "$work/never.err")"

echo "progress: not forced, stderr a file and a pipe: no bytes"
env -u CNNCC_PROGRESS "$cnncc" "$spec" --weights "$w" -o "$work/c.so" $ext 2>"$work/file.err"
[ ! -s "$work/file.err" ] || fail "stderr to a file: $(cat -v "$work/file.err" | head -c 300)"
piped=$(env -u CNNCC_PROGRESS "$cnncc" "$spec" --weights "$w" -o "$work/d.so" $ext 2>&1 | wc -c)
[ "$piped" -eq 0 ] || fail "stderr to a pipe: $piped bytes"
cmp -s "$work/a.so" "$work/c.so" && cmp -s "$work/a.so.weights" "$work/c.so.weights" ||
  fail "the output differs with the progress line shown"
echo "progress: ok"
