# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""A minimal ONC RPC (RFC 5531) caller over TCP for tests: sends one call to
the runner's control port with hand-encoded XDR arguments and returns the
raw result bytes. Lets a test do what nbd-cli never does on purpose, such
as starting a map and never confirming it. With NBDR_RPC_TLS=DIR (qemu's
client layout: ca-cert.pem, client-cert.pem, client-key.pem) the call
goes over TLS, as RFC 9289 says: an AUTH_TLS probe, then the handshake.
Standard library only."""
import os
import socket
import ssl
import struct

PROGRAM, VERSION = 0x3F0A37EB, 4


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def xdr_u64(n):
    return struct.pack(">Q", n)


def _recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "the runner closed the connection"
        data += chunk
    return data


def _recv_record(s):
    data = b""
    while True:
        n = struct.unpack(">I", _recv_exactly(s, 4))[0]
        data += _recv_exactly(s, n & 0x7FFFFFFF)
        if n & 0x80000000:
            return data


def _send_record(s, body):
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)


def start_tls(s, cert_dir, host):
    """RFC 9289 on a connected socket: the AUTH_TLS probe, then TLS."""
    _send_record(s, struct.pack(">IIIIIIIIII", 0x7715, 0, 2, PROGRAM, VERSION, 0, 7, 0, 0, 0))
    r = _recv_record(s)
    assert r[20:28] == b"STARTTLS", "the runner did not answer the AUTH_TLS probe: %r" % r
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(cert_dir, "ca-cert.pem"))
    ctx.load_cert_chain(os.path.join(cert_dir, "client-cert.pem"),
                        os.path.join(cert_dir, "client-key.pem"))
    return ctx.wrap_socket(s, server_hostname=host)


def call(port, proc, args, host="127.0.0.1", xid=1, version=VERSION):
    body = struct.pack(">IIIIII", xid, 0, 2, PROGRAM, version, proc) + b"\0" * 16 + args
    with socket.create_connection((host, port), timeout=10) as s:
        if os.environ.get("NBDR_RPC_TLS"):
            s = start_tls(s, os.environ["NBDR_RPC_TLS"], host)
        _send_record(s, body)
        data = _recv_record(s)
    rxid, mtype, stat, _vflavor, vlen = struct.unpack(">IIIII", data[:20])
    assert rxid == xid and mtype == 1 and stat == 0, "RPC call not accepted"
    accept = struct.unpack(">I", data[20 + vlen:24 + vlen])[0]
    assert accept == 0, "RPC accept status %d" % accept
    return data[24 + vlen:]


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def u32(self):
        self.pos += 4
        return struct.unpack(">I", self.data[self.pos - 4:self.pos])[0]

    def u64(self):
        self.pos += 8
        return struct.unpack(">Q", self.data[self.pos - 8:self.pos])[0]

    def string(self):
        n = self.u32()
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n + (4 - n % 4) % 4
        return s


def status_reply(data):
    """(status, message) of a reply that starts with them (every nbdr_*_reply)."""
    status = struct.unpack(">i", data[:4])[0]
    n = struct.unpack(">I", data[4:8])[0]
    return status, data[8:8 + n].decode()


def map_token(data):
    """The map token of an NBDR_MAP reply (0 when the map was refused)."""
    r = _Reader(data)
    r.u32()
    r.string()
    for _ in range(r.u32()):  # nbdr_backstore
        r.string(), r.string(), r.u64(), r.u32(), r.u32(), r.u32()
        for _field in range(7):  # status, device, map_time, create_time, extras, client, owner
            r.string()
        for _runner in range(r.u32()):  # runners
            r.string()
    r.string(), r.u32()  # io address
    return r.u64()


if __name__ == "__main__":
    # python3 onc_rpc.py PORT PROC ARG...: calls PROC with the arguments
    # (strings; "u64:N" is an unsigned hyper) and prints "status N MESSAGE",
    # and for a map (PROC 5) a second line "token T". A reader that stops
    # early (grep -q) is not an error.
    import os
    import sys
    args = b"".join(xdr_u64(int(a[4:])) if a.startswith("u64:") else xdr_string(a)
                    for a in sys.argv[3:])
    proc = int(sys.argv[2])
    reply = call(int(sys.argv[1]), proc, args)
    out = "status %d %s\n" % status_reply(reply)
    if proc == 5:
        out += "token %d\n" % map_token(reply)
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
