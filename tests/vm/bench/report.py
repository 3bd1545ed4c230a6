#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Summarise one benchmark run (tests/vm/bench/run-bench) on the host.

    report.py --sizes "1 16 64 256" --reps 20 --all-reps 3 --threads "1 2 4 8 16" \
              [--cheap "64 1024" --cheap-threads "8"] RESULTS_DIR

Reads RESULTS_DIR/bench-raw.csv (written by the guest) and features.txt,
writes bench.csv (medians, spread, ratios to mpath-flush and to the floor),
bench.md (the tables) and bench.png (time against N, gnuplot), prints the
tables, and prints "ok - ..." / "not ok - ..." lines for the checks run-bench
reports as TAP: the CSV has its rows for every size and tool (mpath-flush
--jobs 1 too once the helper has --jobs), every run of mpath-flush and of the
floors exited 0 and left zero maps, the plot was produced. No check is on a
time. This is the one place ratios are computed: "the floor" is the
concurrent floor (dm-bench remove-all --threads T) at its best T at that N.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys

# Teardown tools, in table order. mpf-jobs1 is measured once mpath-flush offers --jobs
# (features.txt says so); the floors' thread counts come from --threads.
OTHER_TOOLS = [
    ("multipath-F-nodaemon", "multipath -F, no multipathd"),
    ("multipath-F-daemon", "multipath -F, multipathd running"),
    ("multipathd-del-maps", "multipathd del maps"),
    ("dmsetup-loop", "dmsetup remove loop"),
]
SINGLE_TOOLS = [
    ("mpf", "mpath-flush MAP"),
    ("multipath-f", "multipath -f MAP"),
    ("dmsetup", "dmsetup remove MAP"),
]
# Ours and the floors must work every round; what the other tools do is measured, not checked.
OURS_PREFIX = ("mpf", "floor")
# "The floor": the concurrent floor's best thread count at that N, in the same run.
FLOOR = "floor"


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def from_console(path):
    """Rebuild bench-raw.csv's rows from the measurement lines the guest echoes to its
    console (for a run whose results disk never came back, e.g. it ran past its timeout)."""
    import re
    rows = []
    meas = re.compile(r"^  (\w+) n=(\d+) (\S+) rep (\d+): rc=(\d+) cmd_ms=([\d.]+) total_ms=([\d.]+) "
                      r"utime_ms=([\d.]+) stime_ms=([\d.]+) maxrss_kb=(\d+) left=(\d+)")
    cg = re.compile(r"callgrind --dry-run --all at N=(\d+): (\d+) instructions")
    with open(path, errors="replace") as fh:
        for line in fh:
            m = meas.match(line.rstrip("\r\n"))
            if m:
                rows.append(dict(zip(["kind", "n", "tool", "rep", "rc", "cmd_ms", "total_ms", "utime_ms",
                                      "stime_ms", "maxrss_kb", "left"], m.groups())))
                continue
            m = cg.search(line)
            if m:
                rows.append(dict(kind="callgrind", n=m.group(1), tool="mpf-dryrun-ir", rep="1", rc="0",
                                 cmd_ms=m.group(2), total_ms=m.group(2), utime_ms="", stime_ms="",
                                 maxrss_kb="", left="0"))
    return rows


def rows_of(raw, kind, n, tool):
    return [r for r in raw if r["kind"] == kind and int(r["n"]) == n and r["tool"] == tool]


def summarise(rows):
    tot = [num(r["total_ms"]) for r in rows if num(r["total_ms"]) is not None]
    cmd = [num(r["cmd_ms"]) for r in rows if num(r["cmd_ms"]) is not None]
    cpu = [num(r["utime_ms"]) + num(r["stime_ms"]) for r in rows
           if num(r["utime_ms"]) is not None and num(r["stime_ms"]) is not None]
    rss = [num(r["maxrss_kb"]) for r in rows if num(r["maxrss_kb"]) is not None]
    if not tot:
        return None
    q = statistics.quantiles(tot, n=4) if len(tot) >= 2 else [tot[0]] * 3
    return {
        "reps": len(rows),
        "median_total_ms": statistics.median(tot),
        "min_total_ms": min(tot),
        "max_total_ms": max(tot),
        "iqr_total_ms": q[2] - q[0],
        "median_cmd_ms": statistics.median(cmd) if cmd else None,
        "min_cmd_ms": min(cmd) if cmd else None,
        "max_cmd_ms": max(cmd) if cmd else None,
        "median_cpu_ms": statistics.median(cpu) if cpu else None,
        "max_rss_kb": max(rss) if rss else None,
        "failed": sum(1 for r in rows if r["rc"] != "0" or r["left"] != "0"),
    }


def f(x, fmt="{:.0f}"):
    return "" if x is None else fmt.format(x)


def median_of(s, key="median_total_ms"):
    return s[key] if s else None


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--all-reps", type=int, required=True)
    ap.add_argument("--threads", default="1 2 4 8 16", help="the concurrent floor's thread counts")
    ap.add_argument("--cheap", default="", help="map counts over null_blk paths")
    ap.add_argument("--cheap-threads", default="8", help="the concurrent floor's thread counts there")
    ap.add_argument("--skip", default="", help="other tools the run left out")
    ap.add_argument("--from-console", action="store_true",
                    help="rebuild the measurements from console.log (the results disk did not come back)")
    ap.add_argument("results")
    a = ap.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split())
    threads = sorted(int(t) for t in a.threads.split())
    cheap = sorted(int(s) for s in a.cheap.split())
    cheap_threads = sorted(int(t) for t in a.cheap_threads.split())
    res = a.results
    if a.from_console:
        raw = from_console(os.path.join(res, "console.log"))
    else:
        raw = load(os.path.join(res, "bench-raw.csv"))
    features = {}
    try:
        with open(os.path.join(res, "features.txt")) as fh:
            features = dict(line.strip().split("=", 1) for line in fh if "=" in line)
    except OSError:
        pass
    jobs = features.get("jobs") == "yes"
    checks = []
    notes = []

    def check(ok, desc):
        checks.append(("ok" if ok else "not ok") + " - " + desc)

    floor_tools = [(f"floor-t{t}", f"concurrent floor, {t} thread(s)") for t in threads]
    ours = [("mpf-all", "mpath-flush --all")] + ([("mpf-jobs1", "mpath-flush --all --jobs 1")] if jobs else [])
    others = [(t, label) for t, label in OTHER_TOOLS if t not in a.skip.split()]
    all_tools = ours + others + [("floor-seq", "sequential floor (one process, libdevmapper)")] + floor_tools
    cheap_tools = ours + [(f"floor-t{t}", f"concurrent floor, {t} thread(s)") for t in cheap_threads]
    check("jobs" in features, "the guest recorded whether mpath-flush has --jobs (features.txt: "
          + ("jobs=" + features["jobs"] if "jobs" in features else "missing") + ")")

    table = {}

    def collect(kind, n, tools):
        for tool, _ in tools:
            s = summarise(rows_of(raw, kind, n, tool))
            check(s is not None and s["reps"] == a.all_reps,
                  f"bench-raw.csv has {a.all_reps} row(s) for {kind} {tool} at N={n}")
            if tool.startswith(OURS_PREFIX):
                check(s is not None and s["failed"] == 0, f"{kind} {tool} at N={n}: exit 0 and zero maps left")
            elif s is not None and s["failed"]:
                # another tool's failure is a finding, not a broken benchmark: marked in the table
                notes.append(f"# {tool} at N={n}: {s['failed']} of {s['reps']} run(s) exited non-zero "
                             "or left maps (bench-raw.csv)")
            table[(kind, n, tool)] = s
        # the floor: the best thread count, by median time to udev settled
        best = [(table[(kind, n, t)]["median_total_ms"], t) for t, _ in tools
                if t.startswith("floor-t") and table.get((kind, n, t))]
        if best:
            ms, t = min(best)
            table[(kind, n, FLOOR)] = dict(table[(kind, n, t)], best=t[len("floor-t"):])

    for n in sizes:
        collect("all", n, all_tools)
        table[("dryrun", n, "mpf-dryrun")] = summarise(rows_of(raw, "dryrun", n, "mpf-dryrun"))
    for n in cheap:
        collect("cheap", n, cheap_tools)
    for tool, _ in SINGLE_TOOLS:
        s = summarise(rows_of(raw, "single", 1, tool))
        check(s is not None and s["reps"] == a.reps, f"bench-raw.csv has {a.reps} rows for single-map {tool}")
        if tool.startswith(OURS_PREFIX):
            check(s is not None and s["failed"] == 0, f"single-map {tool}: exit 0 and zero maps left")
        elif s is not None and s["failed"]:
            notes.append(f"# single-map {tool}: {s['failed']} of {s['reps']} run(s) exited non-zero "
                         "or left maps (bench-raw.csv)")
        table[("single", 1, tool)] = s

    # bench.csv: one row per (kind, N, tool); "floor" is the best concurrent floor (best = T)
    fields = ["kind", "n", "tool", "best", "reps", "median_total_ms", "min_total_ms", "max_total_ms",
              "iqr_total_ms", "median_cmd_ms", "min_cmd_ms", "max_cmd_ms", "ratio_to_mpf", "ratio_to_floor",
              "median_cpu_ms", "max_rss_kb"]
    out_rows = []
    for kind, ns, tools in (("all", sizes, all_tools), ("cheap", cheap, cheap_tools)):
        for n in ns:
            base, fl = table.get((kind, n, "mpf-all")), table.get((kind, n, FLOOR))
            for tool, _ in tools + [(FLOOR, "")]:
                s = table.get((kind, n, tool))
                if s:
                    out_rows.append(dict(s, kind=kind, n=n, tool=tool,
                                         ratio_to_mpf=ratio(s["median_total_ms"], median_of(base)),
                                         ratio_to_floor=ratio(s["median_total_ms"], median_of(fl))))
    for n in sizes:
        if table.get(("dryrun", n, "mpf-dryrun")):
            out_rows.append(dict(table[("dryrun", n, "mpf-dryrun")], kind="dryrun", n=n, tool="mpf-dryrun"))
    sbase = table.get(("single", 1, "mpf"))
    for tool, _ in SINGLE_TOOLS:
        s = table.get(("single", 1, tool))
        if s:
            out_rows.append(dict(s, kind="single", n=1, tool=tool,
                                 ratio_to_mpf=ratio(s["median_cmd_ms"], median_of(sbase, "median_cmd_ms"))))
    for r in raw:
        if r["kind"] in ("setup", "orig", "callgrind"):
            out_rows.append(dict(kind=r["kind"], n=int(r["n"]), tool=r["tool"], reps=1,
                                 median_total_ms=num(r["total_ms"]), median_cmd_ms=num(r["cmd_ms"])))
    for kind, ns, name in (("all", sizes, "dm-bench-create"), ("cheap", cheap, "cheap-dm-bench-create")):
        for n in ns:
            s = summarise(rows_of(raw, "prepare", n, name))
            if s:
                out_rows.append(dict(s, kind="prepare", n=n, tool=name))
    with open(os.path.join(res, "bench.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in out_rows:
            w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()})
    want = len(sizes) * (len(all_tools) + 1) + len(cheap) * (len(cheap_tools) + 1)
    check(sum(1 for r in out_rows if r["kind"] in ("all", "cheap")) == want,
          f"bench.csv has {want} teardown rows (every size and tool, and the floor at each size)")

    md = []

    def cell(kind, n, tool):
        s, b, fl = table.get((kind, n, tool)), table.get((kind, n, "mpf-all")), table.get((kind, n, FLOOR))
        if not s:
            return "-"
        c = f"{s['median_total_ms'] / 1000:.2f}"
        if tool == FLOOR:
            c += f" (T={s['best']})"
        elif tool != "mpf-all" and b:
            c += f" ({s['median_total_ms'] / b['median_total_ms']:.2f}x)"
        if s["failed"]:
            c += " !"
        return c

    md.append("Tearing down N two-path maps: median wall time (s) to the tool's exit and "
              "udev settled, guest clock; in brackets the tool's time over mpath-flush --all's "
              f"({a.all_reps} round(s) per cell). The floor is the concurrent floor at its best "
              "thread count T at that N.")
    if features.get("udev_light") == "1":
        md.append("")
        md.append("**Not Debian's times:** sg3-utils-udev's path rules were masked in the guest "
                  "(--udev-light, as the test suite's run does); figures come from runs without it.")
    md.append("")
    md.append("| tool | " + " | ".join(f"N={n}" for n in sizes) + " |")
    md.append("| --- |" + " --- |" * len(sizes))
    for tool, label in all_tools + [(FLOOR, "**the floor** (best T)")]:
        md.append(f"| {label} | " + " | ".join(cell("all", n, tool) for n in sizes) + " |")
    if any(table.get(("all", n, t)) and table[("all", n, t)]["failed"] for n in sizes for t, _ in all_tools):
        md.append("")
        md.append("! the tool exited non-zero or left maps in at least one round (bench-raw.csv has each).")
    md.append("")
    md.append("Ratios (median over median, same run): mpath-flush --all over the floor, and the other "
              "tools over mpath-flush --all (above 1: mpath-flush is faster).")
    md.append("")
    md.append("| ratio | " + " | ".join(f"N={n}" for n in sizes) + " |")
    md.append("| --- |" + " --- |" * len(sizes))

    def ratio_row(label, num_tool, den_tool):
        cells = []
        for n in sizes:
            r = ratio(median_of(table.get(("all", n, num_tool))), median_of(table.get(("all", n, den_tool))))
            cells.append(f(r, "{:.2f}x"))
        md.append(f"| {label} | " + " | ".join(cells) + " |")
    ratio_row("mpath-flush --all / the floor", "mpf-all", FLOOR)
    if jobs:
        ratio_row("mpath-flush --all --jobs 1 / the floor", "mpf-jobs1", FLOOR)
        ratio_row("mpath-flush --all --jobs 1 / mpath-flush --all", "mpf-jobs1", "mpf-all")
    ratio_row("sequential floor / the floor", "floor-seq", FLOOR)
    for tool, label in others:
        ratio_row(f"{label} / mpath-flush --all", tool, "mpf-all")

    md.append("")
    md.append(f"Single map ({a.reps} rounds): wall time (ms) to the tool's exit, median [min-max]; "
              "then with udev settled.")
    md.append("")
    md.append("| tool | median | min-max | IQR | to settled (median) | over mpath-flush |")
    md.append("| --- | --- | --- | --- | --- | --- |")
    for tool, label in SINGLE_TOOLS:
        s = table.get(("single", 1, tool))
        if not s:
            continue
        cq = [num(r["cmd_ms"]) for r in rows_of(raw, "single", 1, tool)]
        iqr = (statistics.quantiles(cq, n=4)[2] - statistics.quantiles(cq, n=4)[0]) if len(cq) >= 2 else 0
        md.append(f"| {label} | {f(s['median_cmd_ms'])} | {f(s['min_cmd_ms'])}-{f(s['max_cmd_ms'])} | "
                  f"{f(iqr)} | {f(s['median_total_ms'])} | "
                  f"{f(ratio(s['median_cmd_ms'], median_of(sbase, 'median_cmd_ms')), '{:.2f}x')} |")

    md.append("")
    md.append("mpath-flush's own cost (CPU = user + system of the process, peak RSS from wait4; "
              "instructions of `--dry-run --all` under callgrind):")
    md.append("")
    md.append("| N | --all CPU ms | CPU ms per map | --all peak RSS KiB | --jobs 1 CPU ms | --jobs 1 peak RSS KiB "
              "| --dry-run --all CPU ms | --dry-run instructions | instructions per map |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    irs = {int(r["n"]): num(r["cmd_ms"]) for r in raw if r["kind"] == "callgrind"}
    cost = []
    for kind, ns in (("all", sizes), ("cheap", cheap)):
        for n in ns:
            s, j = table.get((kind, n, "mpf-all")), table.get((kind, n, "mpf-jobs1"))
            d = table.get(("dryrun", n, "mpf-dryrun")) if kind == "all" else None
            ir = irs.get(n) if kind == "all" else None
            label = f"{n}" if kind == "all" else f"{n} (cheap)"
            md.append(f"| {label} | {f(s and s['median_cpu_ms'])} | "
                      f"{f(s and s['median_cpu_ms'] and s['median_cpu_ms'] / n, '{:.1f}')} | "
                      f"{f(s and s['max_rss_kb'])} | {f(j and j['median_cpu_ms'])} | {f(j and j['max_rss_kb'])} | "
                      f"{f(d and d['median_cpu_ms'])} | {f(ir)} | {f(ir and ir / n)} |")
            if kind == "all" and s and s["median_cpu_ms"] is not None:
                cost.append((n, s["median_cpu_ms"], s["max_rss_kb"]))
    if len(irs) >= 2:
        (n1, i1), (n2, i2) = sorted(irs.items())[0], sorted(irs.items())[-1]
        if n2 > n1 and i1 and i2:
            md.append("")
            md.append(f"Instructions: {i1:.0f} at N={n1}, {i2:.0f} at N={n2}; "
                      f"{(i2 - i1) / (n2 - n1):.0f} more per added map, {i1 - n1 * (i2 - i1) / (n2 - n1):.0f} fixed.")

    if cheap:
        md.append("")
        md.append("Cheap maps (two null_blk paths each, no multipathd, created by dm-bench): median wall "
                  "time (s) to exit and udev settled, and per map (ms).")
        md.append("")
        md.append("| tool | " + " | ".join(f"N={n}" for n in cheap) + " | " +
                  " | ".join(f"ms/map N={n}" for n in cheap) + " |")
        md.append("| --- |" + " --- |" * (2 * len(cheap)))
        for tool, label in cheap_tools + [(FLOOR, "**the floor** (best T)")]:
            per = [f(table.get(("cheap", n, tool)) and table[("cheap", n, tool)]["median_total_ms"] / n, "{:.1f}")
                   for n in cheap]
            md.append(f"| {label} | " + " | ".join(cell("cheap", n, tool) for n in cheap) + " | " +
                      " | ".join(per) + " |")
        cells = [f(ratio(median_of(table.get(("cheap", n, "mpf-all"))), median_of(table.get(("cheap", n, FLOOR)))),
                   "{:.2f}x") for n in cheap]
        md.append("")
        md.append("mpath-flush --all over the floor on cheap maps: " +
                  ", ".join(f"N={n}: {c}" for n, c in zip(cheap, cells)) + ".")

    prep = []
    for kind, ns, name in (("all", sizes, "dm-bench-create"), ("cheap", cheap, "cheap-dm-bench-create")):
        for n in ns:
            s = summarise(rows_of(raw, "prepare", n, name))
            if s:
                prep.append(f"{'cheap ' if kind == 'cheap' else ''}N={n}: {s['median_cmd_ms'] / 1000:.1f} s "
                            f"created and settled, {s['median_total_ms'] / 1000:.1f} s with multipathd monitoring "
                            f"them if running ({s['reps']} times)")
    if prep:
        md.append("")
        md.append("Re-creating the maps before each teardown (dm-bench create, median): " + "; ".join(prep) + ".")
    setup = [r for r in raw if r["kind"] in ("setup", "orig")]
    if setup:
        md.append("")
        md.append("Setup (ms): " + "; ".join(f"{r['kind']} {r['tool']} N={r['n']}: {r['total_ms']}" for r in setup))

    # the targets of issue 11, from this run's medians
    md.append("")
    md.append("Targets (issue 11):")
    md.append("")
    md.append("| target | measured | met |")
    md.append("| --- | --- | --- |")

    def tgt(desc, val, ok):
        md.append(f"| {desc} | {val} | {'-' if ok is None else 'yes' if ok else 'no'} |")
    for n in sizes:
        if n < 16:
            continue
        r = ratio(median_of(table.get(("all", n, "mpf-all"))), median_of(table.get(("all", n, FLOOR))))
        if r is not None:
            tgt(f"N={n}: mpath-flush --all within 1.5x the concurrent floor",
                f"{r:.2f}x the floor (T={table[('all', n, FLOOR)]['best']})", r <= 1.5)
    n = sizes[-1]
    m = median_of(table.get(("all", n, "mpf-all")))
    for tool, label, want in (("multipathd-del-maps", "multipathd del maps", 3),
                              ("multipath-F-daemon", "multipath -F with multipathd running", 3),
                              ("multipath-F-nodaemon", "multipath -F without multipathd", 5)):
        r = ratio(median_of(table.get(("all", n, tool))), m)
        if r is not None:
            # a tool that gave up before every map was gone was not timed to a full teardown
            left = any(row["left"] != "0" for row in rows_of(raw, "all", n, tool))
            tgt(f"N={n}: >= {want}x faster than {label}",
                f"{r:.2f}x" + (" (! maps were left when udev settled: not a full teardown)" if left else ""),
                None if left else r >= want)
    mf = table.get(("single", 1, "multipath-f"))
    if sbase and mf:
        # mpath-flush exits after udev is done with the map, multipath -f before: "to settled"
        # is the like-for-like figure, "to exit" is shown beside it
        r4 = sbase["median_total_ms"] / mf["median_total_ms"]
        r4x = sbase["median_cmd_ms"] / mf["median_cmd_ms"]
        tgt("single map no slower than multipath -f (to udev settled)",
            f"{r4:.2f}x multipath -f's time ({r4x:.2f}x to exit)", r4 <= 1.0)
    rss = [x for x in (table.get((k, nn, t)) for k in ("all", "cheap") for nn in sizes + cheap
                       for t in ("mpf-all", "mpf-jobs1")) if x and x["max_rss_kb"] is not None]
    if rss:
        top = max(x["max_rss_kb"] for x in rss)
        tgt("peak RSS of mpath-flush under 8 MiB at every N", f"{top:.0f} KiB at most", top < 8192)
    big = [c for c in cost if c[0] >= 16]
    if len(big) >= 2:
        # linear: the CPU an added map costs between the two largest sizes is no more than 1.5x
        # what it costs between the two smallest (a quadratic term would grow it with N)
        marg = [(b[1] - a_[1]) / (b[0] - a_[0]) for a_, b in zip(big, big[1:])]
        desc = ", ".join(f"{x:.1f}" for x in marg)
        tgt("CPU time linear in N (CPU ms per added map between successive sizes >= 16)", desc,
            marg[-1] <= 1.5 * max(marg[0], 0.1) if len(marg) >= 2 else None)
    with open(os.path.join(res, "bench.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")

    # plot: median time against N, one line a tool
    plot_tools = ours + others + [("floor-seq", "sequential floor"), (FLOOR, "concurrent floor, best T")]
    png = os.path.join(res, "bench.png")
    if os.path.exists(png):
        os.remove(png)
    dat = os.path.join(res, "bench-plot.dat")
    with open(dat, "w") as fh:
        for tool, label in plot_tools:
            fh.write(f'"{label}"\n')
            for n in sizes:
                s = table.get(("all", n, tool))
                if s:
                    fh.write(f"{n} {s['median_total_ms'] / 1000:.3f}\n")
            fh.write("\n\n")
    gp = shutil.which("gnuplot")
    if gp:
        script = (f'set terminal png size 900,600\nset output "{png}"\n'
                  'set logscale xy\nset xlabel "maps (N)"\nset ylabel "seconds to removed and udev settled"\n'
                  'set title "Tearing down N two-path dm-multipath maps (qemu TCG guest, one boot)"\n'
                  'set key bottom right\nset grid\n'
                  f'plot for [i=0:{len(plot_tools) - 1}] "{dat}" index i using 1:2 with linespoints '
                  'title columnheader(1)\n')
        p = subprocess.run([gp], input=script, text=True, capture_output=True)
        if p.returncode != 0:
            print("# gnuplot: " + p.stderr.strip().replace("\n", "\n# "))
    check(os.path.exists(png) and os.path.getsize(png) > 0,
          "bench.png was produced" + ("" if gp else " (gnuplot-nox is not installed: tests/install-deps)"))

    for line in md:
        print("# " + line if line else "#")
    for line in notes:
        print(line)
    for c in checks:
        print(c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
