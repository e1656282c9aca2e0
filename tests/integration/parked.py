# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Driver of test-runner-parked.sh: opens connections that go quiet, in
# transmission and in the handshake (optionally over TLS), reports the
# runner's thread count while they wait, then has every one of them
# finish its handshake and write and read back a pattern of its own. Every
# other idle client goes quiet after the first 10 bytes of a request, and
# every other handshake after the first 7 bytes of an option (without
# TLS) or inside the TLS handshake, after STARTTLS was answered (with).
#   parked.py PORT RUNNER_PID N_IDLE N_HANDSHAKE QUIET_S [PKI_CLIENT_DIR]
import os, ssl, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_wire as w

port, pid, n_idle, n_hs, quiet = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                  int(sys.argv[4]), float(sys.argv[5]))
pki = sys.argv[6] if len(sys.argv) > 6 else None
ctx = None
if pki:
    ctx = ssl.create_default_context(cafile=pki + "/ca-cert.pem")
    ctx.load_cert_chain(pki + "/client-cert.pem", pki + "/client-key.pem")


def threads():
    with open("/proc/%s/status" % pid) as f:
        return int(next(l for l in f if l.startswith("Threads:")).split()[1])


def start_tls(c):
    if ctx:
        assert c.starttls(ctx) == w.REP_ACK, "STARTTLS refused"


def pattern(i):
    return struct.pack(">I", i) * 128  # 512 bytes


print("threads-before", threads())
idle, hs = [], []
for i in range(n_idle):
    c = w.Client(port, timeout=30)
    c.greeting()
    start_tls(c)
    c.option(w.OPT_GO, w.Client.go_data("file/a.img"))
    assert c.replies_until_final()[-1][0] == w.REP_ACK, "GO refused"
    if i % 2:
        req = struct.pack(">IHHQQI", w.REQUEST_MAGIC, 0, w.CMD_WRITE, i, i * 512, 512) + pattern(i)
        c.send(req[:10])
        c.pending = req[10:]
    idle.append(c)
for i in range(n_hs):
    c = w.Client(port, timeout=30)
    if ctx:  # quiet after TLS (parked with a TLS session), or inside its handshake
        c.greeting()
        if i % 2:
            c.option(w.OPT_STARTTLS)
            assert c.reply()[1] == w.REP_ACK, "STARTTLS refused"
            c.in_tls_handshake = True
        else:
            start_tls(c)
    else:  # quiet before even sending its flags, or inside an option
        c.recv(18)
        go = struct.pack(">QII", w.IHAVEOPT, w.OPT_GO, len(w.Client.go_data("file/a.img")))
        go += w.Client.go_data("file/a.img")
        c.pending = struct.pack(">I", 3) + go
        if i % 2:
            c.send(c.pending[:11])
            c.pending = c.pending[11:]
    hs.append(c)
time.sleep(quiet)
print("threads-parked", threads())

def write(c, block, cookie):
    c.request(w.CMD_WRITE, block * 512, 512, cookie=cookie, payload=pattern(block))
    assert c.read_reply()[:2] == (cookie, 0), "write failed"


def check(c, block, cookie):
    c.request(w.CMD_READ, block * 512, 512, cookie=cookie)
    assert c.read_reply(512) == (cookie, 0, pattern(block)), "block %d read back wrong" % block


served = 0
for i, c in enumerate(idle):
    if i % 2:  # the rest of the request whose first 10 bytes it sent
        c.send(c.pending)
        assert c.read_reply()[:2] == (i, 0), "write failed"
    else:
        write(c, i, cookie=i)
    served += 1
for i, c in enumerate(hs):
    if ctx:
        if getattr(c, "in_tls_handshake", False):
            c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.option(w.OPT_GO, w.Client.go_data("file/a.img"))
    else:
        c.send(c.pending)
    assert c.replies_until_final()[-1][0] == w.REP_ACK, "GO refused"
    write(c, n_idle + i, cookie=7)
    if n_idle:
        check(c, i % n_idle, cookie=8)  # what a parked client wrote
    served += 1
for i, c in enumerate(idle):
    if n_hs:
        check(c, n_idle + i % n_hs, cookie=9)
for c in idle + hs:
    c.request(w.CMD_DISC)
    c.close()
print("served", served)
