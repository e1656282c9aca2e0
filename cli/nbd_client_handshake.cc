// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Client handshake; see nbd_client_handshake.h.
#include "cli/nbd_client_handshake.h"

#include <cerrno>
#include <vector>

#include "utils/nbd_protocol.h"
#include "utils/net.h"

namespace nbdr {

using namespace nbd;

namespace {
// Longer option replies are refused (a server's NBD_INFO_* are far shorter).
constexpr uint32_t kMaxOptionReplyLength = 65536;
// How long each NBD connection of a mapping may take to connect.
constexpr int kConnectTimeoutMs = 10000;
// ... and how long its handshake (with TLS) may take.
constexpr int kHandshakeTimeoutS = 30;

// One option reply: its header checked against option, its data read.
Status ReadOptionReply(int fd, uint32_t option, uint32_t* type, std::vector<uint8_t>* data) {
  uint8_t hdr[kOptionReplyHeaderSize];
  if (Status s = ReadAll(fd, hdr, sizeof hdr); !s.ok()) return s;
  const OptionReplyHeader reply = DecodeOptionReplyHeader(hdr);
  if (reply.magic != kOptReplyMagic || reply.option != option)
    return Status::Error(EPROTO, "bad option reply");
  if (reply.length > kMaxOptionReplyLength) return Status::Error(EPROTO, "option reply too large");
  *type = reply.type;
  data->assign(reply.length, 0);
  if (reply.length) return ReadAll(fd, data->data(), reply.length);
  return Status();
}

// NBD_OPT_STARTTLS, then the TLS handshake that leaves the socket in
// kernel TLS.
Status UpgradeToTls(int fd, const ClientTlsCredentials& tls, const std::string& server_name,
                    int timeout_s) {
  uint8_t opt[kOptionHeaderSize];
  EncodeOptionHeader(opt, kOptStartTls, 0);
  if (Status s = WriteAll(fd, opt, sizeof opt); !s.ok()) return s;
  uint32_t type = 0;
  std::vector<uint8_t> data;
  if (Status s = ReadOptionReply(fd, kOptStartTls, &type, &data); !s.ok()) return s;
  if (type == kRepErrUnsup || type == kRepErrPolicy)
    return Status::Error(EPROTONOSUPPORT, "the server does not offer TLS (its tls is off)");
  if (type != kRepAck || !data.empty())
    return Status::Error(EPROTO, "the server did not accept NBD_OPT_STARTTLS (reply " +
                                     std::to_string(type) + ")");
  return StartKernelTls(fd, tls, server_name, timeout_s);
}

}  // namespace

Expected<NbdExportInfo> NbdClientHandshake(int fd, const std::string& export_name,
                                           int timeout_s, const ClientTlsCredentials* tls,
                                           const std::string& server_name) {
  SetRecvTimeout(fd, std::chrono::seconds(timeout_s));
  auto fail = [&](const std::string& why) {
    return Status::Error(EPROTO, "NBD handshake for " + export_name + ": " + why);
  };
  uint8_t greet[kGreetingSize];
  if (Status s = ReadAll(fd, greet, sizeof greet); !s.ok()) return fail(s.message());
  uint16_t sflags = 0;
  if (!DecodeGreeting(greet, &sflags)) return fail("the server does not speak fixed newstyle NBD");
  uint8_t cflags[4];
  Put32(cflags, kClientFlagFixedNewstyle | ((sflags & kFlagNoZeroes) ? kClientFlagNoZeroes : 0));
  if (Status s = WriteAll(fd, cflags, 4); !s.ok()) return fail(s.message());
  if (tls && tls->enabled()) {
    if (Status s = UpgradeToTls(fd, *tls, server_name, timeout_s); !s.ok())
      return Status::Error(s.code(), "NBD handshake for " + export_name + ": " + s.message());
  }

  const std::vector<uint8_t> go = EncodeInfoRequest(InfoRequest{export_name, {kInfoBlockSize}});
  std::vector<uint8_t> opt(kOptionHeaderSize);
  EncodeOptionHeader(opt.data(), kOptGo, static_cast<uint32_t>(go.size()));
  opt.insert(opt.end(), go.begin(), go.end());
  if (Status s = WriteAll(fd, opt.data(), opt.size()); !s.ok()) return fail(s.message());

  NbdExportInfo info;
  bool have_export = false;
  for (;;) {
    uint32_t type = 0;
    std::vector<uint8_t> data;
    if (Status s = ReadOptionReply(fd, kOptGo, &type, &data); !s.ok()) {
      // EIO: the kernel read a TLS alert, not data; EOF or a reset: the
      // runner ended the session it had just accepted.
      const bool ended = s.code() == EIO || s.code() == ECONNRESET;
      if (tls && tls->enabled() && ended)
        return RefusedAfterHandshake(server_name, *tls).WithContext("NBD handshake for " +
                                                                    export_name);
      return fail(s.message());
    }
    const uint32_t len = static_cast<uint32_t>(data.size());
    if (type == kRepAck) {
      if (len != 0) return fail("NBD_REP_ACK with data");
      break;
    }
    if (type == kRepErrTlsReqd)
      return Status::Error(EACCES, "the runner requires TLS for " + export_name +
                                       ": give --tls-psk FILE or --tls-certificates DIR");
    if (type & kRepErrBit) {
      std::string msg(data.begin(), data.end());
      return Status::Error(type == kRepErrUnknown ? ENOENT : EPROTO,
                           msg.empty() ? "the server refused export " + export_name : msg);
    }
    if (type == kRepInfo) {
      if (len < 2) return fail("NBD_REP_INFO without a type");
      const std::string_view payload(reinterpret_cast<const char*>(data.data()), len);
      const uint16_t kind = Get16(data.data());
      if (kind == kInfoExport) {
        if (!DecodeInfoExport(payload, &info.size, &info.transmission_flags))
          return fail("NBD_INFO_EXPORT of " + std::to_string(len) + " bytes, not 12");
        if (!(info.transmission_flags & kFlagHasFlags))
          return fail("transmission flags without NBD_FLAG_HAS_FLAGS");
        have_export = true;
      } else if (kind == kInfoBlockSize) {
        if (!DecodeInfoBlockSize(payload, &info.min_block, &info.preferred_block,
                                 &info.max_payload))
          return fail("NBD_INFO_BLOCK_SIZE of " + std::to_string(len) + " bytes, not 14");
        auto power_of_two = [](uint32_t v) { return v && !(v & (v - 1)); };
        if (!power_of_two(info.min_block) || info.min_block > 65536 ||
            !power_of_two(info.preferred_block) || info.preferred_block < info.min_block ||
            info.max_payload < info.min_block)
          return fail("impossible block sizes " + std::to_string(info.min_block) + "/" +
                      std::to_string(info.preferred_block) + "/" +
                      std::to_string(info.max_payload));
      }
    }
  }
  if (!have_export) return fail("the server sent no export information");
  SetRecvTimeout(fd, std::chrono::seconds(0));
  return info;
}

Expected<ExportSockets> ConnectExportSockets(const std::string& host, uint16_t port,
                                             const std::string& export_name, int count,
                                             const ClientTlsCredentials& tls) {
  ExportSockets out;
  for (int i = 0; i < count; i++) {
    auto fd = ConnectTcp(host, port, kConnectTimeoutMs);
    if (!fd)
      return Status::Error(fd.status().code(), "NBD connection to " + host + ":" +
                                                   std::to_string(port) + ": " +
                                                   fd.status().message());
    auto hs = NbdClientHandshake(fd->get(), export_name, kHandshakeTimeoutS, &tls, host);
    if (!hs) return hs.status();
    if (i == 0) {
      out.info = *hs;
    } else if (hs->size != out.info.size ||
               hs->transmission_flags != out.info.transmission_flags ||
               hs->min_block != out.info.min_block) {
      return Status::Error(EPROTO, "NBD connection " + std::to_string(i + 1) + " to " +
                                       export_name + " saw another size or other flags than "
                                       "the first (the export changed while connecting)");
    }
    out.fds.push_back(std::move(*fd));
  }
  if (count > 1 && !(out.info.transmission_flags & kFlagCanMultiConn))
    return Status::Error(EINVAL, "the runner does not allow several connections to " + export_name);
  return out;
}

}  // namespace nbdr
