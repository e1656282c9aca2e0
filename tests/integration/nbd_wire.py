# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""A raw NBD client for tests: speaks the fixed newstyle handshake and the
transmission phase byte by byte, so tests can send exactly the malformed,
oversized or out-of-order traffic that real clients refuse to produce.

Standard library only. Used by test-nbd-*.sh; see doc/proto.md of the
NetworkBlockDevice project for the wire format.
"""
import socket
import struct

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = ERR | 1, ERR | 2, ERR | 3
REP_ERR_TLS_REQD, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = ERR | 5, ERR | 6, ERR | 9
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 5, 6, 7
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_REQ_ONE, FLAG_FAST_ZERO = 1, 2, 4, 8, 16
EPERM, EIO, EINVAL, ENOSPC = 1, 5, 22, 28


class Closed(Exception):
    """The server closed the connection."""


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.structured = False
        self.size = None
        self.flags = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- bytes -------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("server closed the connection after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def closed_by_server(self, within=5.0):
        """True when the server closes the connection within `within` s."""
        self.sock.settimeout(within)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True

    # -- handshake ---------------------------------------------------------
    def greeting(self, client_flags=3):
        magic, opt, flags = struct.unpack(">QQH", self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
        self.send(struct.pack(">I", client_flags))
        return flags

    def starttls(self, context, hostname="localhost"):
        """NBD_OPT_STARTTLS, then the TLS handshake on the same socket with
        an ssl.SSLContext; returns the server's reply type (no TLS unless
        REP_ACK)."""
        self.option(OPT_STARTTLS)
        _, rtype, _ = self.reply()
        if rtype == REP_ACK:
            self.sock = context.wrap_socket(self.sock, server_hostname=hostname)
        return rtype

    def option(self, opt, data=b"", length=None):
        ln = len(data) if length is None else length
        self.send(struct.pack(">QII", IHAVEOPT, opt, ln) + data)

    def reply(self):
        magic, opt, rtype, ln = struct.unpack(">QIII", self.recv(20))
        assert magic == OPT_REPLY_MAGIC, "bad option reply magic %x" % magic
        return opt, rtype, self.recv(ln)

    def replies_until_final(self):
        out = []
        while True:
            opt, rtype, data = self.reply()
            out.append((rtype, data))
            if rtype == REP_ACK or rtype & ERR:
                return out

    @staticmethod
    def go_data(name, infos=(INFO_BLOCK_SIZE,)):
        n = name.encode() if isinstance(name, str) else name
        return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + b"".join(
            struct.pack(">H", i) for i in infos)

    @staticmethod
    def meta_data(name, queries):
        n = name.encode()
        q = b"".join(struct.pack(">I", len(x)) + x.encode() for x in queries)
        return struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries)) + q

    def negotiate(self, name, structured=False, meta=False, infos=(INFO_BLOCK_SIZE,)):
        """Greeting, optional structured replies and base:allocation, GO."""
        self.greeting()
        if structured:
            self.option(OPT_STRUCTURED_REPLY)
            assert self.reply()[1] == REP_ACK
            self.structured = True
        if meta:
            self.option(OPT_SET_META_CONTEXT, self.meta_data(name, ["base:allocation"]))
            reps = self.replies_until_final()
            assert reps[-1][0] == REP_ACK, reps
        self.option(OPT_GO, self.go_data(name, infos))
        reps = self.replies_until_final()
        if reps[-1][0] != REP_ACK:
            raise RuntimeError("GO refused: %x %r" % (reps[-1][0], reps[-1][1]))
        for rtype, data in reps:
            if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == INFO_EXPORT:
                self.size, self.flags = struct.unpack(">QH", data[2:12])
        return reps

    # -- transmission ------------------------------------------------------
    def request(self, cmd, offset=0, length=0, cookie=1, flags=0, payload=b"", magic=REQUEST_MAGIC):
        self.send(struct.pack(">IHHQQI", magic, flags, cmd, cookie, offset, length) + payload)

    def read_reply(self, read_length=0):
        """Returns (cookie, error, data) for a simple or structured reply
        (structured: all chunks up to DONE; data is the OFFSET_DATA
        payloads, or the raw BLOCK_STATUS payload)."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_REPLY_MAGIC:
            err, cookie = struct.unpack(">IQ", self.recv(12))
            data = self.recv(read_length) if (read_length and err == 0) else b""
            return cookie, err, data
        assert magic == STRUCTURED_REPLY_MAGIC, "bad reply magic %x" % magic
        data, err = b"", 0
        while True:
            flags, rtype, cookie, ln = struct.unpack(">HHQI", self.recv(16))
            payload = self.recv(ln)
            if rtype == 1:  # OFFSET_DATA
                data += payload[8:]
            elif rtype == 5:  # BLOCK_STATUS
                data += payload
            elif rtype & 0x8000:
                err = struct.unpack(">I", payload[:4])[0]
            if flags & 1:
                return cookie, err, data
            magic = struct.unpack(">I", self.recv(4))[0]
            assert magic == STRUCTURED_REPLY_MAGIC

