#!/usr/bin/env python3
"""check_layers.py: the architecture rules that docs/design.md states, checked.

    tools/check_layers.py BUILD_DIR

1. Layers point one way. A folder may use (call, or include a header of)
   only the folders below it:

       support <- ir <- frontend, passes <- backend <- driver
       runtime stands apart (linked into every .so; its header cnnrt.h is
       shared with the backend, which writes what the runtime reads; the
       public ABI header cnn.h with the driver, whose int8 calibration
       dlopens a .so it built and calls it through that ABI, no symbol
       linked).

   Checked on the object files (the symbols each defines and uses) and on
   the #include lines of the sources.
2. No circular calls between the files of one folder: the graph "file A
   uses a symbol defined in file B" of each folder (frontend's rooms each
   on their own) has no cycle.
3. No hidden inputs: no getenv() in support/, ir/, frontend/, passes/ or
   backend/ (the driver reads the environment and passes what it found).
4. A map that is true: each folder's map header (MAPS below) names every
   file of the folder in its opening comment.
5. Short functions: no function of the compiler or the runtime is over
   MAX_LINES lines, but for the flat switches over every op or expression
   kind (LONG_SWITCHES), which grow a case per op.

Prints every violation and exits 1 if there is one.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Which folders each folder may use besides itself.
ALLOWED = {
    "support": set(),
    "ir": {"support"},
    "frontend": {"ir", "support"},
    "passes": {"ir", "support"},
    "backend": {"ir", "support", "runtime/cnnrt.h"},
    "driver": {"backend", "frontend", "passes", "ir", "support", "runtime/cnn.h"},
    "runtime": set(),
}
NO_GETENV = ["support", "ir", "frontend", "passes", "backend"]

# The header whose opening comment is the map of each folder (frontend's
# rooms are all mapped in frontend.h).
MAPS = {
    "support": "support/diag.h",
    "ir": "ir/ir.h",
    "frontend/spec": "frontend/frontend.h",
    "frontend/weights": "frontend/frontend.h",
    "frontend/onnx": "frontend/frontend.h",
    "passes": "passes/passes.h",
    "backend": "backend/backend.h",
    "driver": "driver/driver.h",
    "runtime": "runtime/cnnrt.h",
}

MAX_LINES = 120
# (file, function): a switch with one case per op or expression kind.
LONG_SWITCHES = {("ir/graph.c", "infer"), ("frontend/spec/expr.c", "eval")}


def folder_of(rel):
    """'frontend/spec/lower.c' -> 'frontend'; 'backend/x.c' -> 'backend'."""
    return rel.split("/")[0]


def room_of(rel):
    """The folder whose files must not call each other in a cycle: the
    file's directory ('frontend/spec', 'backend')."""
    return os.path.dirname(rel)


def sources():
    out = []
    for top in ALLOWED:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    return sorted(out)


def objects(build):
    """{source path relative to ROOT: object file} for every compiled .c."""
    objs = {}
    for dirpath, _, files in os.walk(os.path.join(build, "CMakeFiles")):
        for f in files:
            if not f.endswith(".c.o"):
                continue
            path = os.path.join(dirpath, f)
            # CMakeFiles/<target>.dir/<source path>.o
            rel = path.split(".dir/", 1)[1][: -len(".o")]
            if folder_of(rel) in ALLOWED and os.path.exists(os.path.join(ROOT, rel)):
                objs.setdefault(rel, path)
    return objs


def symbols(obj):
    """(defined, undefined) global symbol names of an object file."""
    text = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDRBCVW" and parts[1].isupper():
            defined.add(parts[2])
    return defined, undefined


def cycles(nodes, edges):
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def opening_comment(rel):
    text = open(os.path.join(ROOT, rel), encoding="utf-8").read()
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    return m.group(1) if m else ""


def unmapped():
    """Files of a folder its map header does not name."""
    out = []
    for folder, header in sorted(MAPS.items()):
        words = set(re.findall(r"[\w.]+", opening_comment(header)))
        for f in sorted(os.listdir(os.path.join(ROOT, folder))):
            if f.endswith((".c", ".h", ".def")) and f not in words and f"{folder}/{f}" not in words:
                out.append(f"{header}: its opening comment does not name {folder}/{f}")
    return out


def functions(rel):
    """(name, first line, lines) of each function defined in a .c file
    (the tree's one style: the body's closing brace alone in column 0)."""
    lines = open(os.path.join(ROOT, rel), encoding="utf-8").read().split("\n")
    out, start = [], None
    for i, line in enumerate(lines):
        if start is None:
            if not line or line[0] in " \t#/*}" or not line.rstrip().endswith("{"):
                continue
            j = i
            while j > 0 and "(" not in lines[j] and lines[j - 1] and lines[j - 1][0] not in " \t#/*}":
                j -= 1
            sig = " ".join(lines[j : i + 1])
            m = re.search(r"(\w+)\s*\(", sig)
            if m and "=" not in sig.split("(")[0] and not sig.startswith(("typedef", "struct", "enum", "union")):
                start, name = j, m.group(1)
        elif line.startswith("}"):
            out.append((name, start + 1, i - start + 1))
            start = None
    return out


def long_functions():
    out = []
    for rel in sources():
        if not rel.endswith(".c"):
            continue
        for name, first, n in functions(rel):
            if n > MAX_LINES and (rel, name) not in LONG_SWITCHES:
                out.append(f"{rel}:{first}: {name} is {n} lines (at most {MAX_LINES}: split it into its steps)")
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    build = sys.argv[1]
    problems = []

    # 1a. includes
    inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    for rel in sources():
        folder = folder_of(rel)
        text = open(os.path.join(ROOT, rel), encoding="utf-8").read()
        for inc in inc_re.findall(text):
            target = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
            if not os.path.exists(os.path.join(ROOT, target)):
                target = os.path.normpath(inc)  # include path = repository root
            tf = folder_of(target)
            if tf == folder or tf not in ALLOWED:
                continue
            if tf not in ALLOWED[folder] and target not in ALLOWED[folder]:
                problems.append(f"{rel}: includes {target}: {folder}/ may not use {tf}/")
        # 3. getenv
        if folder in NO_GETENV and re.search(r"\bgetenv\s*\(", text):
            problems.append(f"{rel}: calls getenv (only the driver reads the environment)")

    # 1b and 2. symbols
    objs = objects(build)
    if not objs:
        problems.append(f"no object files under {build}/CMakeFiles: build first")
    defs, uses = {}, {}
    where = {}
    for rel, obj in objs.items():
        d, u = symbols(obj)
        defs[rel], uses[rel] = d, u
        for s in d:
            where.setdefault(s, rel)
    rooms = {}
    for rel in objs:
        for s in sorted(uses[rel]):
            if s not in where:
                continue  # libc, LLVM, libyaml, ...
            target = where[s]
            if target == rel:
                continue
            f, tf = folder_of(rel), folder_of(target)
            if f != tf:
                if tf not in ALLOWED[f]:
                    problems.append(f"{rel}: calls {s} of {target}: {f}/ may not use {tf}/")
                continue
            if room_of(rel) == room_of(target):
                rooms.setdefault(room_of(rel), {}).setdefault(rel, set()).add(target)
    for room, edges in sorted(rooms.items()):
        nodes = set(edges) | {t for ts in edges.values() for t in ts}
        for comp in cycles(nodes, edges):
            detail = []
            for a in comp:
                for b in comp:
                    if b in edges.get(a, ()):
                        syms = sorted(s for s in uses[a] if where.get(s) == b)
                        detail.append(f"{os.path.basename(a)} -> {os.path.basename(b)} ({', '.join(syms[:3])}{', ...' if len(syms) > 3 else ''})")
            problems.append(f"{room}/: files call each other in a cycle: " + "; ".join(detail))

    # 4 and 5.
    problems += unmapped()
    problems += long_functions()

    for p in problems:
        print("check_layers: " + p)
    nfiles = len(objs)
    if not problems:
        print(f"check_layers: {nfiles} object files, {len(rooms)} folders: layers point one way, "
              "no cycles between files, no getenv below the driver, every file on its "
              f"folder's map, no function over {MAX_LINES} lines but the op switches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
