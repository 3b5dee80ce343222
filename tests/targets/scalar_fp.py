#!/usr/bin/python3
"""The inner loops of the conv kernels of an aarch64 .so are vector code.

    tests/targets/scalar_fp.py CNNCC SPEC [SPEC...]

Each spec is compiled with `cnncc --target=aarch64-linux-gnu --emit=obj`
(deterministic weights: the code does not depend on them), as -O2 makes it
(Winograd on) and with --winograd=off (the direct convs of the same
layers), and disassembled with llvm-objdump-19. In every conv kernel (the
functions conv2d.LAYER) the innermost loops are found (a backward branch
to an address inside the function closes a loop [target, branch]; a loop
is innermost when no other loop lies inside it), and their instructions
are counted:
  - scalar floating-point arithmetic: an f* instruction (fmla, fmadd, fadd,
    fmul, fmax, ...) whose destination is a scalar s, d or h register; the
    kernels' fmas must all be vector ones (fmla v.4s, by element or not);
    fmov is a move, not arithmetic (`fmov d0, x12` puts 64 bits of an
    index or constant into a SIMD register), and is not counted;
  - stack accesses ([sp...]) with --winograd=off: there a stack access in
    an inner loop is a spilled register (Winograd's transforms live in
    stack buffers on purpose, so they are not counted with it on); these
    are reported, not failed: a few 5-pixel tiles reload one q register
    per iteration of a loop of 80 fmla (docs/targets.md);
  - fmla v.4s, and those by element (v.s[lane]).
Prints a line per spec and build and fails (exit 1) when an inner loop of
a conv kernel has a scalar FP instruction, or when a spec's convs have no
fmla at all (nothing was checked).

One kind of conv kernel is skipped, and listed: a conv whose output plane is
1x1 and whose output channels are not a multiple of 16 (so it stays NCHW),
found in `cnncc --summary`. It is a dot product per output channel, reduced
in order, scalar on every target (x86 too): LeNet-5's c5, the squeeze-
excitation fc1 of modern_blocks (2,304 MACs).
"""
import os
import re
import subprocess
import sys
import tempfile

OBJDUMP = os.environ.get("LLVM_OBJDUMP", "llvm-objdump-19")
FUNC = re.compile(r"^([0-9a-f]+) <(.*)>:$")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
BRANCH = re.compile(r"^(b|b\.\w+|cbn?z|tbn?z)$")
SCALAR_DST = re.compile(r"^[sdh]\d+\b")


def functions(text):
    """name -> [(address, mnemonic, operands)]"""
    out, cur = {}, None
    for line in text.splitlines():
        m = FUNC.match(line)
        if m:
            cur = out.setdefault(m.group(2), [])
            continue
        m = INSN.match(line)
        if m and cur is not None:
            out_ops = m.group(3).split("//")[0].strip()
            cur.append((int(m.group(1), 16), m.group(2), out_ops))
    return out


def inner_loops(insns):
    """[(lo, hi)] address ranges of the innermost loops."""
    addrs = {a for a, _, _ in insns}
    loops = []
    for a, mn, ops in insns:
        if not BRANCH.match(mn):
            continue
        m = re.search(r"0x([0-9a-f]+)|\b([0-9a-f]{3,})\b", ops.split(",")[-1])
        if not m:
            continue
        t = int(m.group(1) or m.group(2), 16)
        if t <= a and t in addrs:
            loops.append((t, a))
    return [l for l in loops
            if not any(o != l and l[0] <= o[0] and o[1] <= l[1] for o in loops)]


def dot_convs(cnncc, spec):
    """The conv2d layers of a spec whose output is Cx1x1 with C % 16 != 0."""
    text = subprocess.run([cnncc, spec, "-q", "--summary"], check=True, capture_output=True,
                          text=True).stdout
    out = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == "conv2d":
            m = re.match(r"^(\d+)x1x1$", f[2])
            if m and int(m.group(1)) % 16:
                out.add("conv2d." + f[0])
    return out


def check(cnncc, spec, tmp, flags):
    obj = os.path.join(tmp, os.path.basename(spec) + ".o")
    subprocess.run([cnncc, spec, "-q", "--target=aarch64-linux-gnu", "--emit=obj", "-o", obj]
                   + flags, check=True)
    spills = "--winograd=off" in flags
    text = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", obj], check=True,
                          capture_output=True, text=True).stdout
    bad, spill, nfn, nloops, fmla, by_lane, ninsn = [], [], 0, 0, 0, 0, 0
    skip = dot_convs(cnncc, spec)
    for name, insns in functions(text).items():
        if not name.startswith("conv2d.") or name in skip:
            continue
        nfn += 1
        for lo, hi in inner_loops(insns):
            nloops += 1
            body = [(a, mn, ops) for a, mn, ops in insns if lo <= a <= hi]
            ninsn += len(body)
            for a, mn, ops in body:
                if mn == "fmla" and ".4s" in ops:
                    fmla += 1
                    by_lane += bool(re.search(r"\.s\[\d\]", ops))
                if mn.startswith("f") and mn != "fmov" and SCALAR_DST.match(ops):
                    bad.append(f"{name}+{a - insns[0][0]:#x}: scalar FP '{mn} {ops}'")
                if spills and "[sp" in ops:
                    spill.append(f"{name}+{a - insns[0][0]:#x}: stack access '{mn} {ops}'")
    print(f"scalar_fp {os.path.basename(spec)} {' '.join(flags) or '-O2'}: {nfn} conv kernels, "
          f"{nloops} inner loops, {ninsn} instructions: {fmla} fmla v.4s ({by_lane} by "
          f"element), {len(bad)} scalar FP" + (f", {len(spill)} stack accesses" if spills else "")
          + (f"; skipped (1x1 output, NCHW): {' '.join(sorted(skip))}" if skip else ""))
    for b in bad[:20] + spill[:20]:
        print("  " + b)
    return not bad and fmla > 0


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for spec in argv[2:]:
            for flags in ([], ["--winograd=off"]):
                ok &= check(argv[1], spec, tmp, flags)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
