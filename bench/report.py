# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""Turns the fio JSON files of one bench/run-bench run into tables with
ratios (markdown and JSON), noting the machine: the median of the repeated
runs of each server and workload, their range, what each cost the whole
machine in CPU, what the server process alone cost, what fio itself (the
client) cost, each server's peak memory, and, against a direct engine, the
most any NBD server could reach on this machine. Usage:
report.py WORKDIR OUTDIR RUNTIME SIZE_MIB SERVERS BACKEND SUFFIX REPEAT CLK_TCK ROWS
(ROWS: the workloads that ran, comma-separated)"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

work, out, runtime, size_mib, servers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
backend = sys.argv[6]
suffix = sys.argv[7]
repeat = int(sys.argv[8])
clk_tck = int(sys.argv[9])
rows = sys.argv[10].split(",")


def run_metric(server, row, r):
    """One fio run: throughput, latency, and the machine's CPU over it."""
    with open(os.path.join(work, "%s.%s.r%d.json" % (server, row, r))) as f:
        job = json.load(f)["jobs"][0]
    side = job["read"] if "read" in row else job["write"]
    lat = side.get("clat_ns", {}).get("percentile", {})
    with open(os.path.join(work, "%s.%s.r%d.cpu" % (server, row, r))) as f:
        busy, steal, elapsed, server_jiffies, client_s = f.read().split()
    busy_cores = int(busy) / clk_tck / float(elapsed)  # cores kept busy, on average
    m = {
        "iops": side["iops"],
        "mb_s": side["bw_bytes"] / 1e6,
        "p50_us": lat.get("50.000000", 0) / 1000,
        "p99_us": lat.get("99.000000", 0) / 1000,
        "busy_cores": busy_cores,
        "steal_pct": 100.0 * int(steal) / clk_tck / float(elapsed) / os.cpu_count(),
    }
    m["cpu_per_unit"] = per_unit(row, m, busy_cores)
    # fio's own process: the NBD client, or the whole library when direct.
    m["client_cores"] = float(client_s) / float(elapsed)
    m["client_cpu_per_unit"] = per_unit(row, m, m["client_cores"])
    # The server process alone (- for a direct engine inside fio).
    if server_jiffies != "-":
        m["server_cpu_per_unit"] = per_unit(row, m, int(server_jiffies) / clk_tck / float(elapsed))
    return m


def per_unit(row, m, cores):
    """cores busy during a run, per unit of its work: core-seconds per GB
    for the 1M rows, core-microseconds per request for the 4K rows."""
    if "1m" in row:
        return cores / (m["mb_s"] / 1000) if m["mb_s"] else 0
    return cores / m["iops"] * 1e6 if m["iops"] else 0


def metric(server, row):
    """The median of the repeated runs, with every run kept."""
    runs = [run_metric(server, row, r) for r in range(1, repeat + 1)]
    m = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    m["steal_pct"] = max(x["steal_pct"] for x in runs)
    m["runs"] = runs
    return m


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def peak_rss_mib(server):
    """The server's peak resident memory over the run, or None."""
    try:
        with open(os.path.join(work, "%s.hwm" % server)) as f:
            return int(f.read()) / 1024
    except (OSError, ValueError):
        return None


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        return "?"


machine = {
    "cpu": cpu_model(),
    "cores": os.cpu_count(),
    "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
    "kernel": platform.release(),
    "fio": version(["fio", "--version"]),
    "nbdkit": version(["nbdkit", "--version"]),
    "qemu-nbd": version(["qemu-nbd", "--version"]),
}
if backend == "gluster":
    machine["glusterfs"] = version(["glusterfsd", "--version"])
if backend == "rbd":
    machine["ceph"] = version(["ceph", "--version"])
where = {"file": "a file in tmpfs",
         "rbd": "an RBD image on a one-OSD Ceph cluster (memstore: objects in the OSD's memory, loopback), librbd cache off in every client",
         "gluster": "a file on a single-brick GlusterFS volume (brick in tmpfs, loopback)"}[backend]
data = {s: {r: metric(s, r) for r in rows} for s in servers}
peak_rss = {s: peak_rss_mib(s) for s in servers}
result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine,
          "backend": backend, "repeat": repeat, "peak_rss_mib": peak_rss,
          "runtime_s": int(runtime), "file_mib": int(size_mib), "results": data}


def value(row, x):
    if "4k" in row and row.endswith("qd1"):
        return "%.0f" % x["iops"]
    if "4k" in row:
        return "%.1fk" % (x["iops"] / 1000)
    return "%.2f" % (x["mb_s"] / 1000)


def cell(row, m):
    spread = ""
    if repeat > 1:
        lo = min(m["runs"], key=lambda x: x["iops"])
        hi = max(m["runs"], key=lambda x: x["iops"])
        spread = " [%s-%s]" % (value(row, lo), value(row, hi))
    if "4k" in row and row.endswith("qd1"):
        return "%.0f IOPS%s (p50 %.0f µs, p99 %.0f µs)" % (m["iops"], spread, m["p50_us"], m["p99_us"])
    if "4k" in row:
        return "%.1fk IOPS%s" % (m["iops"] / 1000, spread)
    return "%.2f GB/s%s" % (m["mb_s"] / 1000, spread)


def md_row(cells):
    """One markdown table row (no empty column when there are no ratios)."""
    return "| " + " | ".join(cells) + " |"


base = servers[0]
lines = ["Run %s on %s (%d cores, %.1f GiB), kernel %s; %s; %s MiB, %s; %ss per row%s."
         % (result["date"], machine["cpu"], machine["cores"], machine["mem_gib"], machine["kernel"],
            machine["fio"], size_mib, where, runtime,
            ", median of %d interleaved runs [lowest-highest]" % repeat if repeat > 1 else ""), ""]
lines.append(md_row(["workload"] + servers + ["%s / %s" % (base, s) for s in servers[1:]]))
lines.append("|" + "---|" * (2 * len(servers)))
for r in rows:
    vals = [cell(r, data[s][r]) for s in servers]
    key = "iops" if "4k" in r else "mb_s"
    ratios = ["%.2fx" % (data[base][r][key] / data[s][r][key]) if data[s][r][key] else "-" for s in servers[1:]]
    lines.append(md_row([r] + vals + ratios))
lines += ["", "Whole-machine CPU per unit of work (client, server and storage daemons; "
          "core-s per GB on 1M rows, core-µs per request on 4K rows; median) and the most "
          "CPU time stolen by the hypervisor during any run of the row:", ""]


def per_unit_table(names, key, fmt_4k, steal=False):
    """Rows of CPU per unit of work (data[name][row][key]) for names, each
    against the first, optionally with the row's steal."""
    out = [md_row(["workload"] + names + ["%s / %s" % (names[0], s) for s in names[1:]] +
                  (["steal"] if steal else []))]
    out.append("|" + "---|" * (2 * len(names) + (1 if steal else 0)))
    for r in rows:
        v = [data[s][r][key] for s in names]
        fmt = "%.2f" if "1m" in r else fmt_4k
        ratios = ["%.2fx" % (v[0] / x) if x else "-" for x in v[1:]]
        steal_cell = ["%.1f %%" % max(data[s][r]["steal_pct"] for s in names)] if steal else []
        out.append(md_row([r] + [fmt % x for x in v] + ratios + steal_cell))
    return out


lines += per_unit_table(servers, "cpu_per_unit", "%.0f", steal=True)
procs = [s for s in servers if "server_cpu_per_unit" in data[s][rows[0]]]
if procs:
    lines += ["", "The server process alone (all its threads; same units; a direct engine runs "
              "inside fio and has no column), and its peak resident memory over the run:", ""]
    lines += per_unit_table(procs, "server_cpu_per_unit", "%.1f")
    lines.append(md_row(["peak RSS"] + ["%.0f MiB" % peak_rss[s] if peak_rss[s] is not None else "-"
                                        for s in procs] + [""] * (len(procs) - 1)))

lines += ["", "fio's own process (user and system, all its threads: the NBD client when it "
          "drives a server, the whole library when it is the direct engine), CPU per unit "
          "and the cores it kept busy; a client near 1.00 core sets the row's pace:", ""]
lines.append("| workload | " + " | ".join(servers) + " |")
lines.append("|" + "---|" * (1 + len(servers)))
for r in rows:
    fmt = "%.2f" if "1m" in r else "%.1f"
    lines.append("| %s | %s |" % (r, " | ".join(
        (fmt + " (%.2f cores)") % (data[s][r]["client_cpu_per_unit"], data[s][r]["client_cores"])
        for s in servers)))

# Against a direct engine on a machine this small, the NBD client shares the
# cores with everything else: when the direct run keeps them all busy,
# throughput goes as 1 / (CPU per unit), and even a server that added
# nothing to the library's own cost would need the direct run's CPU plus
# the NBD client's.
direct = {"rbd": "librbd", "gluster": "gfapi"}.get(backend)
if direct in servers and base != direct:
    lines += ["", "The most any NBD server could reach against %s on this machine: %s's "
              "whole-machine CPU per unit / (that + the NBD client's CPU per unit in the %s "
              "run), that is, for a server that costs nothing beyond the library (none can: it "
              "must still receive and send over TCP). All of fio's process counts as the NBD "
              "client, fio's own bookkeeping too, which makes the figure a few per cent low. "
              "It holds where the direct run keeps the cores busy (busy cores count fio's "
              "start-up and ramp too); a row that leaves them idle (QD1) is paced by latency "
              "instead:" % (direct, direct, base), ""]
    lines.append("| workload | %s busy cores | NBD client per unit | bound | %s / %s measured |"
                 % (direct, base, direct))
    lines.append("|---|---|---|---|---|")
    for r in rows:
        d, b = data[direct][r], data[base][r]
        key = "iops" if "4k" in r else "mb_s"
        busy = d["busy_cores"]
        fmt = "%.2f" if "1m" in r else "%.1f"
        total = d["cpu_per_unit"] + b["client_cpu_per_unit"]
        bound = "%.2fx" % (d["cpu_per_unit"] / total) if total else "-"
        lines.append("| %s | %.2f | %s | %s | %.2fx |" % (
            r, busy, fmt % b["client_cpu_per_unit"], bound, b[key] / d[key] if d[key] else 0))
md = "\n".join(lines) + "\n"
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "results%s.md" % suffix), "w") as f:
    f.write(md)
with open(os.path.join(out, "results%s.json" % suffix), "w") as f:
    json.dump(result, f, indent=2)
print(md)
