#!/usr/bin/python3
"""trace.py: draws one cnn_run of a cnncc trace (CNN_PROFILE=trace:FILE) as
an SVG timeline, the way Perfetto and chrome://tracing show it: a track per
thread, a box per slice, coloured by kernel, named where there is room.

    docs/img/trace.py TRACE.json OUT.svg [--run K] [--width PX] [--zoom F]

Two panels: the whole run, and its first --zoom part (default 0.2) where the
boxes are wide enough to read. --run K: which cnn_run slice (default: the
fastest, the least disturbed by the rest of the machine). Python's
standard library only.
"""
import argparse
import json
import sys
from xml.sax.saxutils import escape

# One colour per kernel (backend/kernels.c's rows), then a fallback cycle.
COLORS = {"direct16": "#4e79a7", "winograd": "#f28e2b", "gemm1x1": "#59a14f",
          "grouped16": "#b07aa1", "nchw": "#9c755f", "nchw16c": "#76b7b2"}
MORE = ["#edc948", "#ff9da7", "#bab0ac", "#e15759"]


def color(kernel, seen):
    if kernel not in COLORS:
        COLORS[kernel] = MORE[len(seen) % len(MORE)]
    seen.add(kernel)
    return COLORS[kernel]


def fit(label, width):
    """label cut to what fits in width pixels (about 6 a character)."""
    n = int((width - 6) // 6)
    if n >= len(label):
        return label
    return label[:n - 1] + "…" if n >= 4 else ""


def panel(out, title, w0, w1, top, inside, tids, names, run, seen, W, left, right, track_h,
          gap):
    """Draws the slices between times w0 and w1 (us) from y = top; returns
    the y below the panel."""
    x = lambda ts: left + (min(max(ts, w0), w1) - w0) / (w1 - w0) * (W - left - right)  # noqa
    out.append(f'<text x="{left}" y="{top}" font-weight="bold">{escape(title)}</text>')
    span = (w1 - w0) / 1e3
    step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if span / s <= 12)
    axis = top + 18
    bottom = axis + 12 + 22 + len(tids) * (track_h + gap)
    k = 0.0
    while k <= span + 1e-9:
        xx = x(w0 + k * 1e3)
        t_ms = (w0 - run["ts"]) / 1e3 + k
        out.append(f'<line x1="{xx:.1f}" y1="{axis + 4}" x2="{xx:.1f}" y2="{bottom}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{xx:.1f}" y="{axis}" text-anchor="middle" fill="#555">'
                   f'{t_ms:g} ms</text>')
        k += step
    y = axis + 8
    r0, r1 = x(run["ts"]), x(run["ts"] + run["dur"])
    out.append(f'<rect x="{r0:.1f}" y="{y}" width="{r1 - r0:.1f}" height="16" fill="#ccc"/>'
               f'<text x="{r0 + 4:.1f}" y="{y + 12}">cnn_run</text>')
    y += 22
    for tid in tids:
        out.append(f'<text x="{left - 8}" y="{y + track_h / 2 + 4:.0f}" text-anchor="end">'
                   f'{escape(names.get(tid, f"thread {tid}"))}</text>')
        for e in sorted((e for e in inside if e["tid"] == tid), key=lambda e: e["ts"]):
            if e["ts"] + e["dur"] < w0 or e["ts"] > w1:
                continue
            a_ = e["args"]
            x0, x1 = x(e["ts"]), x(e["ts"] + e["dur"])
            w = max(x1 - x0, 0.6)
            tip = (f'{e["name"]} ({a_["op"]}, {a_["kernel"]}): {e["dur"] / 1e3:.3f} ms, '
                   f'{a_["gflop_per_s"]:.1f} GFLOP/s, {a_["bytes"] / 1e6:.2f} MB')
            out.append(f'<rect x="{x0:.2f}" y="{y}" width="{w:.2f}" height="{track_h}" '
                       f'fill="{color(a_["kernel"], seen)}" stroke="white" stroke-width="0.5">'
                       f'<title>{escape(tip)}</title></rect>')
            label = fit(e["name"], w)
            if label:
                out.append(f'<text x="{x0 + 3:.1f}" y="{y + 14}" fill="white">'
                           f'{escape(label)}</text>')
            gf = fit(f'{a_["gflop_per_s"]:.0f} GF/s', w)
            if gf and tid == 0:
                out.append(f'<text x="{x0 + 3:.1f}" y="{y + 27}" fill="white" font-size="9">'
                           f'{escape(gf)}</text>')
        y += track_h + gap
    return bottom


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--run", type=int, default=None)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--zoom", type=float, default=0.2,
                    help="the second panel: this fraction of the run, from its start")
    a = ap.parse_args()
    with open(a.trace) as f:
        t = json.load(f)
    ev = [e for e in t["traceEvents"] if e["ph"] == "X"]
    names = {e["tid"]: e["args"]["name"] for e in t["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    runs = [e for e in ev if e["name"] == "cnn_run"]
    if not runs:
        sys.exit("trace.py: no cnn_run slice in the trace")
    run = runs[a.run] if a.run is not None else min(runs, key=lambda e: e["dur"])
    t0, t1 = run["ts"], run["ts"] + run["dur"]
    inside = [e for e in ev if e is not run and e["ts"] >= t0 - 0.01 and
              e["ts"] + e["dur"] <= t1 + 0.01]
    tids = sorted({e["tid"] for e in inside} | {0})

    W, left, right = a.width, 150, 20
    track_h, gap = 34, 10
    other = t.get("otherData", {})
    seen = set()
    zoom = t0 + (t1 - t0) * a.zoom
    panels = [("the whole run", t0, t1), (f"its first {(zoom - t0) / 1e3:.1f} ms", t0, zoom)]
    panel_h = 46 + 22 + len(tids) * (track_h + gap)
    H = 50 + len(panels) * (panel_h + 20) + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">'
           f'{escape(other.get("network", "?"))}: one cnn_run of batch '
           f'{int(run["args"]["batch"])}, {run["dur"] / 1e3:.1f} ms on {len(tids)} thread'
           f'{"s" if len(tids) > 1 else ""}</text>',
           f'<text x="{left}" y="40" fill="#555">{escape(other.get("compiler", ""))}; '
           f'{len(inside)} slices; CNN_PROFILE=trace:FILE, drawn by docs/img/trace.py</text>']
    top = 50
    for title, w0, w1 in panels:
        top = panel(out, title, w0, w1, top + 20, inside, tids, names, run, seen,
                    W, left, right, track_h, gap)
    # legend
    lx, ly = left, H - 30
    out.append(f'<text x="{lx}" y="{ly - 10}" fill="#555">kernel (backend/kernels.c): '
               f'hover a box for layer, op, ms, GFLOP/s and bytes</text>')
    for kname in sorted(seen):
        out.append(f'<rect x="{lx}" y="{ly}" width="14" height="14" fill="{COLORS[kname]}"/>'
                   f'<text x="{lx + 18}" y="{ly + 11}">{escape(kname)}</text>')
        lx += 30 + 7 * len(kname)
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"trace.py: {a.out}: cnn_run of {run['dur'] / 1e3:.2f} ms, {len(inside)} slices, "
          f"{len(tids)} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
