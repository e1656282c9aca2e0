// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of nbd-cli's client handshake (cli/nbd_client_handshake.h)
// against a scripted server on a socketpair: what it takes from a good
// NBD_OPT_GO exchange, and the malformed replies it refuses.
#include "cli/nbd_client_handshake.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "utils/nbd_protocol.h"
#include "utils/net.h"

namespace nbdr {
namespace {

using namespace nbd;
using Bytes = std::vector<uint8_t>;

Bytes OptionReply(uint32_t type, const Bytes& data) {
  Bytes r(20 + data.size());
  Put64(r.data(), kOptReplyMagic);
  Put32(r.data() + 8, kOptGo);
  Put32(r.data() + 12, type);
  Put32(r.data() + 16, static_cast<uint32_t>(data.size()));
  std::copy(data.begin(), data.end(), r.begin() + 20);
  return r;
}

Bytes InfoExport(uint64_t size, uint16_t flags, size_t extra = 0) {
  Bytes d(12 + extra);
  Put16(d.data(), kInfoExport);
  Put64(d.data() + 2, size);
  Put16(d.data() + 10, flags);
  return OptionReply(kRepInfo, d);
}

Bytes InfoBlockSize(uint32_t min, uint32_t preferred, uint32_t max) {
  Bytes d(14);
  Put16(d.data(), kInfoBlockSize);
  Put32(d.data() + 2, min);
  Put32(d.data() + 6, preferred);
  Put32(d.data() + 10, max);
  return OptionReply(kRepInfo, d);
}

// Plays a server: the greeting, reads the client's flags and its one
// option, then sends replies; returns what the client's handshake returned.
Expected<NbdExportInfo> HandshakeAgainst(const std::vector<Bytes>& replies) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd client(sv[0]), server(sv[1]);
  std::thread t([&] {
    uint8_t greet[18];
    Put64(greet, kNbdMagic);
    Put64(greet + 8, kIHaveOpt);
    Put16(greet + 16, kFlagFixedNewstyle | kFlagNoZeroes);
    if (!WriteAll(server.get(), greet, sizeof greet).ok()) return;
    uint8_t head[4 + 16];
    if (!ReadAll(server.get(), head, sizeof head).ok()) return;
    Bytes rest(Get32(head + 4 + 12));
    if (!ReadAll(server.get(), rest.data(), rest.size()).ok()) return;
    for (const auto& r : replies)
      if (!WriteAll(server.get(), r.data(), r.size()).ok()) return;
  });
  auto info = NbdClientHandshake(client.get(), "file/a.img", 5);
  client.reset();
  t.join();
  return info;
}

TEST(NbdClientHandshake, TakesSizeFlagsAndBlockSizes) {
  auto info = HandshakeAgainst({InfoExport(1 << 20, kFlagHasFlags | kFlagSendFlush),
                                InfoBlockSize(512, 4096, 32 << 20), OptionReply(kRepAck, {})});
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->size, 1u << 20);
  EXPECT_EQ(info->transmission_flags, kFlagHasFlags | kFlagSendFlush);
  EXPECT_EQ(info->min_block, 512u);
  EXPECT_EQ(info->preferred_block, 4096u);
  EXPECT_EQ(info->max_payload, 32u << 20);
}

void ExpectRefused(const std::vector<Bytes>& replies, const std::string& why) {
  auto info = HandshakeAgainst(replies);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), EPROTO);
  EXPECT_NE(info.status().message().find(why), std::string::npos) << info.status().message();
}

TEST(NbdClientHandshake, RefusesMalformedReplies) {
  Bytes ack = OptionReply(kRepAck, {});
  ExpectRefused({InfoExport(1 << 20, kFlagHasFlags, 1), ack}, "NBD_INFO_EXPORT of 13 bytes");
  ExpectRefused({InfoExport(1 << 20, kFlagSendFlush), ack}, "without NBD_FLAG_HAS_FLAGS");
  ExpectRefused({InfoExport(1 << 20, kFlagHasFlags), InfoBlockSize(3, 4096, 1 << 20), ack},
                "impossible block sizes 3/4096");
  ExpectRefused({InfoExport(1 << 20, kFlagHasFlags), InfoBlockSize(4096, 512, 1 << 20), ack},
                "impossible block sizes");
  ExpectRefused({InfoExport(1 << 20, kFlagHasFlags), OptionReply(kRepAck, {1, 2})},
                "NBD_REP_ACK with data");
  ExpectRefused({ack}, "no export information");
}

TEST(NbdClientHandshake, ReportsTheServersRefusal) {
  std::string msg = "no backstore file/a.img on this runner";
  auto info = HandshakeAgainst({OptionReply(kRepErrUnknown, Bytes(msg.begin(), msg.end()))});
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), ENOENT);
  EXPECT_EQ(info.status().message(), msg);
}

}  // namespace
}  // namespace nbdr
