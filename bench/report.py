"""Turns the fio JSON files of one bench/run-bench run into a table with
ratios (markdown and JSON), noting the machine. Usage:
report.py WORKDIR OUTDIR RUNTIME SIZE_MIB SERVERS [BACKEND [SUFFIX]]"""
import json
import os
import platform
import subprocess
import sys
import time

work, out, runtime, size_mib, servers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
backend = sys.argv[6] if len(sys.argv) > 6 else "file"
suffix = sys.argv[7] if len(sys.argv) > 7 else ""
rows = ["randread-4k-qd32", "randwrite-4k-qd32", "seqread-1m-qd8", "seqwrite-1m-qd8", "randread-4k-qd1"]


def metric(server, row):
    with open(os.path.join(work, "%s.%s.json" % (server, row))) as f:
        job = json.load(f)["jobs"][0]
    side = job["read"] if "read" in row else job["write"]
    lat = side.get("clat_ns", {}).get("percentile", {})
    return {
        "iops": side["iops"],
        "mb_s": side["bw_bytes"] / 1e6,
        "p50_us": lat.get("50.000000", 0) / 1000,
        "p99_us": lat.get("99.000000", 0) / 1000,
    }


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


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
         "rbd": "an RBD image on a one-OSD Ceph cluster (bluestore on a sparse file, loopback), librbd cache off in every client",
         "gluster": "a file on a single-brick GlusterFS volume (brick in tmpfs, loopback)"}[backend]
data = {s: {r: metric(s, r) for r in rows} for s in servers}
result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine,
          "backend": backend,
          "runtime_s": int(runtime), "file_mib": int(size_mib), "results": data}


def cell(row, m):
    if "4k" in row and row.endswith("qd1"):
        return "%.0f IOPS (p50 %.0f µs, p99 %.0f µs)" % (m["iops"], m["p50_us"], m["p99_us"])
    if "4k" in row:
        return "%.1fk IOPS" % (m["iops"] / 1000)
    return "%.2f GB/s" % (m["mb_s"] / 1000)


base = servers[0]
lines = ["Run %s on %s (%d cores, %.1f GiB), kernel %s; %s; %s MiB, %s; %ss per row."
         % (result["date"], machine["cpu"], machine["cores"], machine["mem_gib"], machine["kernel"],
            machine["fio"], size_mib, where, runtime), ""]
head = "| workload | " + " | ".join(servers) + " | " + " | ".join("%s / %s" % (base, s) for s in servers[1:]) + " |"
lines.append(head)
lines.append("|" + "---|" * (1 + len(servers) + len(servers) - 1))
for r in rows:
    vals = [cell(r, data[s][r]) for s in servers]
    key = "iops" if "4k" in r else "mb_s"
    ratios = ["%.2fx" % (data[base][r][key] / data[s][r][key]) if data[s][r][key] else "-" for s in servers[1:]]
    lines.append("| %s | %s | %s |" % (r, " | ".join(vals), " | ".join(ratios)))
md = "\n".join(lines) + "\n"
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "results%s.md" % suffix), "w") as f:
    f.write(md)
with open(os.path.join(out, "results%s.json" % suffix), "w") as f:
    json.dump(result, f, indent=2)
print(md)
