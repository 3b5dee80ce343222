#!/usr/bin/env python3
"""Every shell command shown in the docs is run by a test (docs/testing.md).

    doc_commands.py SRC --list                 print the commands, one a line
    doc_commands.py SRC --check-table          each must be in docs/testing.md's table
    doc_commands.py SRC --run BUILD WORK       run the cnncc commands (and the
                                               reduced forms below) in WORK

A command is a line of a code block (fenced ``` with no language or sh, or
indented by four spaces) of README.md, docs/*.md or bench/README.md that
starts, after an optional "$ ", with one of PREFIXES; a trailing "  # ..."
comment is dropped. A line with "[" or "SPEC.yaml" is a synopsis, not a
command.

--check-table: every command (but a cnncc synopsis) must appear, verbatim in backquotes, in the
first column of the table of docs/testing.md (with "|" written "\\|"), which
names the test that runs it. So a command added to a doc without a test
fails here (label unit, instant).

--run (the ctest docs_commands, a few minutes): WORK gets symlinks build ->
BUILD and examples, bench, tools, tests -> SRC's, and an out/ directory, so the commands
run as written from the repository root; `cnncc` on PATH is BUILD/cnncc and
`import cnncc` is BUILD/python's (as after tools/setup.sh). The
weights files they name are made with make_weights_for.py (random values of
the right names and shapes). Every cnncc command (not a synopsis), and the
others that RUN_AS_WRITTEN lists, is run
with bash -o pipefail and must exit 0; when the block shows the command as
"$ cnncc ..." followed by its output, those output lines must appear, in
order, in what it printed. Synopses are run in the REDUCED forms below, and
every flag a cnncc synopsis shows must be in `cnncc --help`.
"""
import glob
import os
import re
import subprocess
import sys

PREFIXES = ("cnncc ", "build/", "tools/", "bench/", "cmake ", "ctest ", "/usr/bin/python3 ",
            "python3 ", "CNNCC_BUILD=", "CNN_PROFILE=", "ls ", ".ci/", "dot ", "pkg-config ",
            "sudo ")
# Run by --run as written (besides cnncc's): the Python module's one-liners
# and examples that need nothing but what the commands before them made.
RUN_AS_WRITTEN = ("cnncc ", "build/cnncc ", "build/cnn_host ",
                  "/usr/bin/python3 examples/export_onnx.py ", "/usr/bin/python3 -c ",
                  "/usr/bin/python3 examples/batch_dask.py ")
FENCE_LANGS = ("", "sh", "bash", "shell", "console")

# Synopses and commands too long for a test, run in a reduced form here:
# command as in the docs -> the commands run instead.
# The bench runs take LeNet-5 and 2 runs instead of all networks (hours),
# and must print a row for it with cnncc's time (bench/run.sh exits 0 when a
# network could not be prepared); ctest -L e2e lists its tests instead of
# running them (it is the suite).
BENCH_SMALL = "--nets lenet5 --runs 2 --warmup 1 --rounds 1 --peak-trials 1 --peak-seconds 0.05"
BENCH_ROW = r"^\| lenet5 +\| \d+ +\| \d+ +\| [0-9.]+ "
REDUCED = {
    "cnncc --list-passes | --list-targets | --help | --version":
        ["cnncc --list-passes", "cnncc --list-targets", "cnncc --help", "cnncc --version"],
    "build/cnn_host out/resnet50.so [--input image.f32] [--batch N] [--threads N] [--runs N]":
        ["build/cnn_host out/lenet5.so --input out/lenet5-input.f32 --batch 2 --threads 2 --runs 2"],
    "bench/run.sh --nets resnet50,googlenet --threads 1,2 --wait-quiet 300":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1,2 --wait-quiet 1", BENCH_ROW)],
    "bench/run.sh --threads 1,2 --engines cnncc,ort":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1,2 --engines cnncc,ort", BENCH_ROW)],
    "bench/run.sh --nets resnet50,googlenet,vgg16,densenet121 --threads 1 --engines cnncc,ort "
    "--precision fp32,bf16,int8":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1 --engines cnncc,ort --precision fp32,bf16,int8",
          BENCH_ROW)],
    "bench/run.sh --nets alexnet,vgg16 --threads 1 --batch 1,8 --engines cnncc,ort":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1 --batch 1,8 --engines cnncc,ort", BENCH_ROW)],
    "bench/run.sh --nets resnet50,googlenet --threads 1,2 --runs 20":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1,2", BENCH_ROW)],
    "bench/run.sh --nets resnet50,googlenet --threads 1,2 --batch 1,8":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1 --batch 1,8", BENCH_ROW)],
    "bench/run.sh --nets resnet50,googlenet,densenet121 --threads 1 --target-cpus "
    "native,x86-64-v3,x86-64-v2,x86-64":
        [(f"bench/run.sh {BENCH_SMALL} --threads 1 --target-cpus native,x86-64-v2", BENCH_ROW)],
    "bench/run.sh --quick":
        [(f"bench/run.sh --quick {BENCH_SMALL}", BENCH_ROW)],
    "CNNCC_BUILD=$PWD/build bench/run.sh --threads 1,2 --wait-quiet 120":
        [(f"CNNCC_BUILD=$PWD/build bench/run.sh {BENCH_SMALL} --threads 1,2 --wait-quiet 1",
          BENCH_ROW)],
    "CNNCC_BUILD=$PWD/build bench/run.sh":
        [(f"CNNCC_BUILD=$PWD/build bench/run.sh {BENCH_SMALL} --threads 1", BENCH_ROW)],
    "ctest --test-dir build -L e2e -j2":
        ["ctest --test-dir build -N -L e2e | grep -E 'e2e_resnet50$'"],
    "ctest --test-dir build -L zoo-quick -j2":
        ["ctest --test-dir build -N -L zoo-quick | grep -E 'e2e_lenet5$'"],
    "ctest --test-dir build -L zoo-modern -j2":
        ["ctest --test-dir build -N -L zoo-modern | grep -E 'e2e_convnext_tiny$'"],
    "CNN_PROFILE=trace:out/resnet50-trace.json CNN_NUM_THREADS=2 build/cnn_host out/resnet50.so "
    "--runs 3":
        ["CNN_PROFILE=trace:out/lenet5-trace.json CNN_NUM_THREADS=2 build/cnn_host out/lenet5.so "
         "--runs 3",
         ("/usr/bin/python3 -c \"import json; t = json.load(open('out/lenet5-trace.json')); "
          "print(sum(e['name'] == 'cnn_run' for e in t['traceEvents']), 'runs traced')\"",
          r"^4 runs traced$")],
}


def doc_files(src):
    files = [os.path.join(src, "README.md")]
    files += sorted(glob.glob(os.path.join(src, "docs", "*.md")))
    files.append(os.path.join(src, "bench", "README.md"))
    return files


def blocks(path):
    """Yields (line number, [lines]) for every code block of a markdown file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    prev_blank = True
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^```(.*)$", line)
        if m:
            lang = m.group(1).strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if lang in FENCE_LANGS:
                yield i + 2, lines[i + 1:j]
            i = j + 1
            prev_blank = False
            continue
        if line.startswith("    ") and prev_blank and line.strip():
            j = i
            body = []
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                body.append(lines[j][4:])
                j += 1
            while body and not body[-1].strip():
                body.pop()
            yield i + 1, body
            i = j
            prev_blank = True
            continue
        prev_blank = not line.strip()
        i += 1


def normalize(line):
    s = line.strip()
    if s.startswith("$ "):
        s = s[2:]
    s = re.sub(r"\s{2,}#.*$", "", s)
    return s.strip()


def is_command(line):
    s = line.strip()
    if s.startswith("$ "):
        s = s[2:]
    return s.startswith(PREFIXES)


def is_synopsis(cmd):
    return "[" in cmd or "SPEC.yaml" in cmd or " | --" in cmd


def commands(src):
    """[(file, line, command, expected output lines)] in document order."""
    out = []
    for path in doc_files(src):
        rel = os.path.relpath(path, src)
        for start, body in blocks(path):
            for k, line in enumerate(body):
                if not is_command(line):
                    continue
                # A synopsis goes on in indented lines that start with "[".
                for nxt in body[k + 1:]:
                    if not re.match(r"^\s+\[", nxt):
                        break
                    line += " " + nxt.strip()
                expected = []
                if line.strip().startswith("$ "):
                    for nxt in body[k + 1:]:
                        if nxt.strip().startswith("$ "):
                            break
                        if nxt.strip() and nxt.strip() != "...":
                            expected.append(nxt.rstrip())
                out.append((rel, start + k, normalize(line), expected))
    return out


def table(src):
    """The first-column commands of docs/testing.md's table."""
    cmds = set()
    for line in open(os.path.join(src, "docs", "testing.md"), encoding="utf-8"):
        m = re.match(r"^\|\s*`(.+?)`\s*\|", line.replace("\\|", "\x00"))
        if m:
            cmds.add(m.group(1).replace("\x00", "|"))
    return cmds


def check_table(src):
    listed = table(src)
    # A cnncc synopsis is no command: its flags are checked against --help.
    cmds = [(f, n, c) for f, n, c, _ in commands(src)
            if c in REDUCED or not (is_synopsis(c) and c.startswith("cnncc "))]
    missing = [(f, n, c) for f, n, c in cmds if c not in listed]
    for f, n, c in missing:
        print(f"docs_commands_listed: {f}:{n}: `{c}` is not in docs/testing.md's table")
    n = len(cmds)
    if not missing:
        print(f"docs_commands_listed: all {n} commands of the docs are in docs/testing.md")
    return 1 if missing else 0


def sh(cmd, work, env):
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


def run(src, build, work):
    build, src = os.path.realpath(build), os.path.realpath(src)
    os.makedirs(os.path.join(work, "out"), exist_ok=True)
    for name, target in (("build", build), ("examples", os.path.join(src, "examples")),
                         ("bench", os.path.join(src, "bench")),
                         ("tools", os.path.join(src, "tools")),
                         ("tests", os.path.join(src, "tests"))):
        link = os.path.join(work, name)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(target, link)
    env = dict(os.environ, PATH=build + ":" + os.environ["PATH"],
               BENCH_WORK=os.path.join(work, "bench-work"), BENCH_BIN=os.path.join(build, "bench"),
               PYTHONPATH=os.path.join(build, "python"))  # what tools/setup.sh's cnncc.pth does
    env.pop("CNNCC_PROGRESS", None)
    cnncc = os.path.join(build, "cnncc")
    helptext = subprocess.run([cnncc, "--help"], capture_output=True, text=True).stdout
    mk = os.path.join(src, "tests", "docs", "make_weights_for.py")

    # The files the commands read.
    for spec, path in (("lenet5", "out/digits/lenet5.safetensors"),
                       ("resnet50", "resnet50.safetensors")):
        full = os.path.join(work, path)
        if not os.path.exists(full):
            os.makedirs(os.path.dirname(full), exist_ok=True)
            subprocess.run(["/usr/bin/python3", mk, cnncc,
                            os.path.join(src, "examples", spec + ".yaml"), full], check=True)
    if not os.path.exists(os.path.join(work, "resnet50.onnx")):  # docs/onnx.md's model
        subprocess.run(["/usr/bin/python3", os.path.join(src, "examples", "export_onnx.py"),
                        "resnet50", os.path.join(work, "resnet50.onnx")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(work, "out", "lenet5-input.f32"), "wb") as f:
        f.write(bytes(2 * 32 * 32 * 4))

    failed = 0
    ran = 0
    deferred = []  # reduced forms that need the outputs of earlier commands
    for f, n, cmd, expected in commands(src):
        where = f"{f}:{n}"
        if cmd in REDUCED:
            deferred += [(where, c) if isinstance(c, tuple) else (where, (c, None))
                         for c in REDUCED[cmd]]
            continue
        if is_synopsis(cmd):
            if cmd.startswith("cnncc "):
                for flag in sorted(set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", cmd))):
                    if flag not in helptext:
                        print(f"docs_commands: FAIL {where}: synopsis flag {flag} is not in cnncc --help")
                        failed += 1
            continue
        if not cmd.startswith(RUN_AS_WRITTEN):
            continue
        rc, out = sh(cmd, work, env)
        ran += 1
        ok = rc == 0
        if ok and expected:
            got = out.split("\n")
            k = 0
            for want in expected:
                while k < len(got) and got[k].rstrip() != want:
                    k += 1
                if k == len(got):
                    print(f"docs_commands: {where}: the doc's output line is not printed:\n  {want}")
                    ok = False
                    break
                k += 1
        print(f"docs_commands: {'ok  ' if ok else 'FAIL'} {where}: {cmd}")
        if not ok:
            failed += 1
            print(f"  exit status {rc}; output:")
            print("".join("    " + l + "\n" for l in out.split("\n")[-40:]))
    for where, (cmd, want) in deferred:
        rc, out = sh(cmd, work, env)
        ran += 1
        ok = rc == 0 and (not want or re.search(want, out, re.M))
        print(f"docs_commands: {'ok  ' if ok else 'FAIL'} {where} (reduced): {cmd}")
        if not ok:
            failed += 1
            print("".join("    " + l + "\n" for l in out.split("\n")[-40:]))
    print(f"docs_commands: ran {ran} commands, {failed} failed")
    return 1 if failed else 0


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, mode = sys.argv[1], sys.argv[2]
    if mode == "--list":
        for f, n, c, e in commands(src):
            print(f"{f}:{n}: {c}" + (f"   [{len(e)} output lines]" if e else ""))
        return 0
    if mode == "--check-table":
        return check_table(src)
    if mode == "--run" and len(sys.argv) == 5:
        return run(src, sys.argv[3], sys.argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
