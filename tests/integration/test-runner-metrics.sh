#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The Prometheus endpoint (issue 30). Before, an operator had no counter
# at all: which disk is busy, who is connected, is it failing, only the
# logs could say. Now: off by default; --metrics-port serves
# http://127.0.0.1:PORT/metrics (404 elsewhere; --metrics-host alone is
# refused). A known workload through libnbd (a write, reads, a flush, a
# trim, a zero, a cache, block status, and a read past the end that the
# runner refuses) shows exact counts per request type, bytes, the error
# by errno, a latency histogram, the connection while it is open; promtool
# check metrics passes on the text; a scrape while fio runs shows it
# connected, and afterwards the write count is what fio says it issued;
# a deleted backstore's series are gone.
source "$(dirname "$0")/functions.sh"
requires python3 curl promtool fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"

runner_refuses 2 "metrics-host given without metrics-port" --metrics-host 127.0.0.1
start_runner
if grep -q "Prometheus metrics" "$T/runner.out"; then fail "the metrics endpoint is on by default"; fi
stop_runner

start_runner --metrics-port 0
METRICS=$(sed -n 's|.*Prometheus metrics on \(http://127.0.0.1:[0-9]*/metrics\).*|\1|p' "$T/runner.out")
[ -n "$METRICS" ] || { cat "$T/runner.out"; fail "the endpoint did not say where it listens (on loopback)"; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "${METRICS%/metrics}/other")" = 404 ] || fail "a path other than /metrics was not 404"
cli file create m.img size 16M >/dev/null
URI="$NBD/file/m.img"

python3 - "$URI" "$METRICS" <<'PY' || fail "the counts of a known workload are wrong"
import nbd, re, sys, urllib.request
uri, metrics = sys.argv[1], sys.argv[2]
def scrape():
    text = urllib.request.urlopen(metrics).read().decode()
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    return series
def get(s, name, op=None, **labels):
    lab = 'type="file",key="m.img"' + (',op="%s"' % op if op else "")
    lab += "".join(',%s="%s"' % kv for kv in labels.items())
    return s.get("%s{%s}" % (name, lab))
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(uri)
h.pwrite(b"a" * 1048576, 0)
h.pread(65536, 0)
h.pread(65536, 65536)
h.flush()
h.trim(65536, 2 << 20)
h.zero(65536, 4 << 20)
if h.can_cache():
    h.cache(65536, 0)
h.block_status(1 << 20, 0, lambda *a: 0)
h.set_strict_mode(0)
try:
    h.pread(4096, 16 << 20)  # past the end: refused by the runner
    raise SystemExit("a read past the end succeeded")
except nbd.Error:
    pass
s = scrape()
want = {"read": (3, 65536 * 2 + 4096), "write": (1, 1048576), "flush": (1, 0),
        "trim": (1, 65536), "write_zeroes": (1, 65536), "block_status": (1, 1 << 20),
        "cache": (1 if h.can_cache() else 0, 65536 if h.can_cache() else 0)}
for op, (n, b) in want.items():
    assert get(s, "nbd_runner_requests_total", op) == n, (op, get(s, "nbd_runner_requests_total", op), n)
    assert get(s, "nbd_runner_request_bytes_total", op) == b, (op, get(s, "nbd_runner_request_bytes_total", op), b)
assert get(s, "nbd_runner_request_errors_total", errno="EINVAL") == 1, s
# The refused read is counted, but not timed: the handler never saw it.
assert get(s, "nbd_runner_request_duration_seconds_count", "read") == 2
assert get(s, "nbd_runner_request_duration_seconds_bucket", "read", le="+Inf") == 2
assert get(s, "nbd_runner_request_duration_seconds_sum", "read") > 0
assert get(s, "nbd_runner_connections") == 1 and get(s, "nbd_runner_requests_in_flight") == 0
h.shutdown()
s = scrape()
assert get(s, "nbd_runner_connections") == 0, get(s, "nbd_runner_connections")
assert get(s, "nbd_runner_connections_opened_total") == 1
assert s.get('nbd_runner_backstores{type="file"}') == 1
assert s.get("process_resident_memory_bytes", 0) > 0 and s.get("nbd_runner_threads", 0) > 0
print("exact counts for 8 request types, the EINVAL, the histogram and the connection")
PY
pass "a known workload's requests, bytes, error, latency and connection are counted exactly"

curl -sf "$METRICS" >"$T/metrics.txt" || fail "curl could not scrape $METRICS"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out"; fail "promtool check metrics"; }
pass "promtool check metrics passes on the endpoint's text"

writes_before=$(sed -n 's/^nbd_runner_requests_total{type="file",key="m.img",op="write"} //p' "$T/metrics.txt")
cat >"$T/load.fio" <<FIO
[load]
ioengine=nbd
uri=$URI
rw=randwrite
bs=4k
iodepth=8
size=8M
rate_iops=2000
FIO
fio --output="$T/fio.out" "$T/load.fio" &
fio_pid=$!
seen=0
for _ in $(seq 100); do
  if curl -sf "$METRICS" | grep -q '^nbd_runner_connections{type="file",key="m.img"} 1$'; then seen=1; break; fi
  sleep 0.1
done
wait "$fio_pid" || { cat "$T/fio.out"; fail "fio failed"; }
[ $seen = 1 ] || fail "no scrape showed fio's connection while it ran"
issued=$(sed -n 's/.*issued rwts: total=[0-9]*,\([0-9]*\),.*/\1/p' "$T/fio.out")
writes_after=$(curl -sf "$METRICS" | sed -n 's/^nbd_runner_requests_total{type="file",key="m.img",op="write"} //p')
[ -n "$issued" ] && [ $((writes_after - writes_before)) -eq "$issued" ] ||
  fail "fio issued $issued writes, the counter grew by $((writes_after - writes_before))"
pass "while fio ran a scrape showed its connection; the write counter grew by the $issued writes fio issued"

cli file delete m.img >/dev/null
if curl -sf "$METRICS" | grep -q 'key="m.img"'; then fail "a deleted backstore's series are still served"; fi
curl -sf "$METRICS" | grep -q '^nbd_runner_backstores{type="file"} 0$' || fail "the backstore count did not follow the delete"
pass "a deleted backstore's series are gone"
