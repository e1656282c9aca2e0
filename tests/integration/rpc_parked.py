# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Driver of test-runner-parked.sh for the control port: control
# connections that go quiet between calls, from several addresses (16 each
# is the per-peer limit), report the runner's thread count while they
# wait, then each makes calls again, one of them two calls in one write.
# Over TLS, every other connection goes quiet inside the TLS handshake
# (after the AUTH_TLS probe was answered, before its ClientHello).
#   rpc_parked.py PORT RUNNER_PID N_PER_SOURCE QUIET_S [CERT_DIR]
import os, socket, ssl, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onc_rpc as r

port, pid, per_source, quiet = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
cert_dir = sys.argv[5] if len(sys.argv) > 5 else None
sources = ["127.0.0.1"] if cert_dir else ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def threads():
    with open("/proc/%s/status" % pid) as f:
        return int(next(l for l in f if l.startswith("Threads:")).split()[1])


def null_call(xid):
    return struct.pack(">IIIIII", xid, 0, 2, r.PROGRAM, r.VERSION, 0) + b"\0" * 16


def answered(s, xid):
    data = r._recv_record(s)
    assert struct.unpack(">III", data[:12]) == (xid, 1, 0), "call %d not answered" % xid


print("threads-before", threads())
conns = []
for src in sources:
    for i in range(per_source):
        s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(src, 0))
        if cert_dir and i % 2:
            r._send_record(s, struct.pack(">IIIIIIIIII", 9, 0, 2, r.PROGRAM, r.VERSION, 0, 7, 0, 0, 0))
            assert r._recv_record(s)[20:28] == b"STARTTLS", "AUTH_TLS probe not answered"
            conns.append(s)  # its TLS handshake comes after the quiet time
            continue
        if cert_dir:
            s = r.start_tls(s, cert_dir, "localhost")
        r._send_record(s, null_call(1))
        answered(s, 1)
        conns.append(s)
time.sleep(quiet)
print("threads-parked", threads())

def finish_tls(s):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(cert_dir, "ca-cert.pem"))
    ctx.load_cert_chain(os.path.join(cert_dir, "client-cert.pem"),
                        os.path.join(cert_dir, "client-key.pem"))
    return ctx.wrap_socket(s, server_hostname="localhost")


served = 0
for n in range(len(conns)):
    if cert_dir and n % 2:
        conns[n] = finish_tls(conns[n])
for n, s in enumerate(conns):
    if n == 0:  # two calls in one write: the second must not be lost
        s.sendall(struct.pack(">I", 0x80000000 | 40) + null_call(2) +
                  struct.pack(">I", 0x80000000 | 40) + null_call(3))
        answered(s, 2)
        answered(s, 3)
    else:
        r._send_record(s, null_call(2))
        answered(s, 2)
    served += 1
for s in conns:
    s.close()
print("served", served)
