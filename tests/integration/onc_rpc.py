"""A minimal ONC RPC (RFC 5531) caller over TCP for tests: sends one call to
the runner's control port with hand-encoded XDR arguments and returns the
raw result bytes. Lets a test do what nbd-cli never does on purpose, such
as starting a map and never confirming it. Standard library only."""
import socket
import struct

PROGRAM, VERSION = 0x3F0A37EB, 1


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


def call(port, proc, args, host="127.0.0.1", xid=1):
    body = struct.pack(">IIIIII", xid, 0, 2, PROGRAM, VERSION, proc) + b"\0" * 16 + args
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


def status_reply(data):
    """(status, message) of a reply that starts with them (every nbdr_*_reply)."""
    status = struct.unpack(">i", data[:4])[0]
    n = struct.unpack(">I", data[4:8])[0]
    return status, data[8:8 + n].decode()


if __name__ == "__main__":
    # python3 onc_rpc.py PORT PROC STRING...: calls PROC with the strings as
    # its arguments and prints "status N MESSAGE".
    import sys
    reply = call(int(sys.argv[1]), int(sys.argv[2]), b"".join(xdr_string(a) for a in sys.argv[3:]))
    print("status %d %s" % status_reply(reply))
