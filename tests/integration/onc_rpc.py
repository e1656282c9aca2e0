# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""A minimal ONC RPC (RFC 5531) caller over TCP for tests: sends one call to
the runner's control port with hand-encoded XDR arguments and returns the
raw result bytes. Lets a test do what nbd-cli never does on purpose, such
as starting a map and never confirming it. Standard library only."""
import socket
import struct

PROGRAM, VERSION = 0x3F0A37EB, 2


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def xdr_u64(n):
    return struct.pack(">Q", n)


def call(port, proc, args, host="127.0.0.1", xid=1, version=VERSION):
    body = struct.pack(">IIIIII", xid, 0, 2, PROGRAM, version, proc) + b"\0" * 16 + args
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
        data = b""
        while True:
            hdr = s.recv(4, socket.MSG_WAITALL)
            n = struct.unpack(">I", hdr)[0]
            chunk = b""
            while len(chunk) < (n & 0x7FFFFFFF):
                chunk += s.recv((n & 0x7FFFFFFF) - len(chunk))
            data += chunk
            if n & 0x80000000:
                break
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
        for _field in range(6):  # status, device, map_time, create_time, extras, client
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
