# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
"""NBD STARTTLS cases that real clients never produce, for
test-runner-tls.sh: one case per run, printing what the server did.

Usage: nbd_tls_cases.py PORT CASE [CLIENT_PKI_DIR]
  plain-info          INFO before TLS                 -> the reply type
  plain-export-name   EXPORT_NAME before TLS          -> "closed" or "answered"
  starttls-twice      STARTTLS inside TLS             -> the second reply type
  garbage-after-ack   plain bytes instead of a TLS ClientHello -> "closed" or "open"
  silent-after-ack    nothing after the ACK           -> "closed after N s"
  state-reset         structured replies agreed in plain text, then TLS,
                      then SET_META_CONTEXT           -> the reply type
  tls-go EXPORT       STARTTLS, GO, one 4 KiB read    -> "served"
  tls-info EXPORT     STARTTLS, INFO                  -> the reply type
Reply types print by name (ACK, ERR_TLS_REQD, ERR_INVALID, ...).
"""
import ssl
import sys
import time

import nbd_wire as w

NAMES = {w.REP_ACK: "ACK", w.REP_ERR_UNSUP: "ERR_UNSUP", w.REP_ERR_POLICY: "ERR_POLICY",
         w.REP_ERR_INVALID: "ERR_INVALID", w.REP_ERR_TLS_REQD: "ERR_TLS_REQD",
         w.REP_ERR_UNKNOWN: "ERR_UNKNOWN"}


def name(rtype):
    return NAMES.get(rtype, "0x%x" % rtype)


def context(pki):
    ctx = ssl.create_default_context(cafile=pki + "/ca-cert.pem")
    ctx.load_cert_chain(pki + "/client-cert.pem", pki + "/client-key.pem")
    return ctx


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    pki = sys.argv[3] if len(sys.argv) > 3 else None
    c = w.Client(port)
    c.greeting()
    if case == "plain-info":
        c.option(w.OPT_INFO, w.Client.go_data("file/a.img"))
        print(name(c.replies_until_final()[-1][0]))
    elif case == "plain-export-name":
        c.option(w.OPT_EXPORT_NAME, b"file/a.img")
        print("closed" if c.closed_by_server(within=10) else "answered")
    elif case == "starttls-twice":
        assert c.starttls(context(pki)) == w.REP_ACK, "first STARTTLS refused"
        print(name(c.starttls(context(pki))))
    elif case == "garbage-after-ack":
        c.option(w.OPT_STARTTLS)
        assert c.reply()[1] == w.REP_ACK
        c.send(b"GET / HTTP/1.0\r\n\r\n" * 8)
        print("closed" if c.closed_by_server(within=10) else "open")
    elif case == "silent-after-ack":
        c.option(w.OPT_STARTTLS)
        assert c.reply()[1] == w.REP_ACK
        start = time.monotonic()
        closed = c.closed_by_server(within=30)
        print("closed after %d s" % round(time.monotonic() - start) if closed else "open")
    elif case == "state-reset":
        c.option(w.OPT_STRUCTURED_REPLY)
        assert c.reply()[1] == w.REP_ACK
        assert c.starttls(context(pki)) == w.REP_ACK, "STARTTLS refused"
        c.option(w.OPT_SET_META_CONTEXT, w.Client.meta_data("file/a.img", ["base:allocation"]))
        print(name(c.replies_until_final()[-1][0]))
    elif case == "tls-go":
        assert c.starttls(context(pki)) == w.REP_ACK, "STARTTLS refused"
        c.option(w.OPT_GO, w.Client.go_data(sys.argv[4]))
        assert c.replies_until_final()[-1][0] == w.REP_ACK, "GO refused"
        c.request(w.CMD_READ, 0, 4096)
        _, err, data = c.read_reply(4096)
        print("served" if err == 0 and len(data) == 4096 else "error %d" % err)
    elif case == "tls-info":
        assert c.starttls(context(pki)) == w.REP_ACK, "STARTTLS refused"
        c.option(w.OPT_INFO, w.Client.go_data(sys.argv[4]))
        print(name(c.replies_until_final()[-1][0]))
    else:
        sys.exit("unknown case " + case)


if __name__ == "__main__":
    main()
