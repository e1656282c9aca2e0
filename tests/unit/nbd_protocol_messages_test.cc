// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the NBD handshake and structured-reply codec
// (utils/nbd_protocol.h): one test per message type, checking the byte
// layout doc/proto.md gives and that each decoder refuses malformed data.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "utils/nbd_protocol.h"

namespace nbdr::nbd {
namespace {

const uint8_t* U(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
std::string_view V(const std::vector<uint8_t>& v) {
  return std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
}

TEST(NbdCodec, GreetingRoundTripsAndRefusesOldstyle) {
  uint8_t g[kGreetingSize];
  EncodeGreeting(g, kFlagFixedNewstyle | kFlagNoZeroes);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(g), 8), "NBDMAGIC");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(g) + 8, 8), "IHAVEOPT");
  uint16_t flags = 0;
  ASSERT_TRUE(DecodeGreeting(g, &flags));
  EXPECT_EQ(flags, kFlagFixedNewstyle | kFlagNoZeroes);
  EncodeGreeting(g, 0);  // newstyle without fixed
  EXPECT_FALSE(DecodeGreeting(g, &flags));
  Put64(g + 8, 0x00420281861253ULL);  // oldstyle magic
  EXPECT_FALSE(DecodeGreeting(g, &flags));
}

TEST(NbdCodec, OptionHeaderLayout) {
  uint8_t p[kOptionHeaderSize];
  EncodeOptionHeader(p, kOptGo, 0x01020304);
  EXPECT_EQ(Get64(p), kIHaveOpt);
  EXPECT_EQ(Get32(p + 8), 7u);
  EXPECT_EQ(p[12], 1);
  EXPECT_EQ(p[15], 4);
  OptionHeader h = DecodeOptionHeader(p);
  EXPECT_EQ(h.magic, kIHaveOpt);
  EXPECT_EQ(h.option, kOptGo);
  EXPECT_EQ(h.length, 0x01020304u);
}

TEST(NbdCodec, OptionReplyHeaderLayout) {
  uint8_t p[kOptionReplyHeaderSize];
  EncodeOptionReplyHeader(p, kOptList, kRepErrPolicy, 9);
  EXPECT_EQ(Get64(p), 0x0003e889045565a9ULL);
  EXPECT_EQ(Get32(p + 8), 3u);
  EXPECT_EQ(Get32(p + 12), 0x80000002u);
  EXPECT_EQ(Get32(p + 16), 9u);
  OptionReplyHeader r = DecodeOptionReplyHeader(p);
  EXPECT_EQ(r.magic, kOptReplyMagic);
  EXPECT_EQ(r.option, kOptList);
  EXPECT_EQ(r.type, kRepErrPolicy);
  EXPECT_EQ(r.length, 9u);
}

TEST(NbdCodec, ExportNameReplyHas124ZeroesUnlessNoZeroes) {
  auto full = EncodeExportNameReply(1ull << 40, kFlagHasFlags | kFlagReadOnly, false);
  ASSERT_EQ(full.size(), 134u);
  EXPECT_EQ(Get64(full.data()), 1ull << 40);
  EXPECT_EQ(Get16(full.data() + 8), kFlagHasFlags | kFlagReadOnly);
  for (size_t i = 10; i < full.size(); i++) EXPECT_EQ(full[i], 0) << i;
  EXPECT_EQ(EncodeExportNameReply(1, kFlagHasFlags, true).size(), 10u);
}

TEST(NbdCodec, InfoRequestRoundTrips) {
  InfoRequest in{"file/a.img", {kInfoName, kInfoBlockSize}};
  auto wire = EncodeInfoRequest(in);
  ASSERT_EQ(wire.size(), 4 + 10 + 2 + 4u);
  EXPECT_EQ(Get32(wire.data()), 10u);
  EXPECT_EQ(Get16(wire.data() + 14), 2u);
  InfoRequest out;
  OptionError err;
  ASSERT_TRUE(DecodeInfoRequest(V(wire), &out, &err)) << err.message;
  EXPECT_EQ(out.name, "file/a.img");
  EXPECT_EQ(out.infos, (std::vector<uint16_t>{kInfoName, kInfoBlockSize}));
}

TEST(NbdCodec, InfoRequestMalformedIsInvalid) {
  InfoRequest out;
  OptionError err;
  EXPECT_FALSE(DecodeInfoRequest(std::string_view("\0\0\0", 3), &out, &err));
  EXPECT_EQ(err.type, kRepErrInvalid);
  EXPECT_EQ(err.message, "option too short");
  auto wire = EncodeInfoRequest(InfoRequest{"x", {kInfoName}});
  Put32(wire.data(), 1000);  // name longer than the option
  EXPECT_FALSE(DecodeInfoRequest(V(wire), &out, &err));
  EXPECT_EQ(err.message, "export name length exceeds option length");
  wire = EncodeInfoRequest(InfoRequest{"x", {kInfoName}});
  wire.push_back(0);  // one byte more than the count says
  EXPECT_FALSE(DecodeInfoRequest(V(wire), &out, &err));
  EXPECT_EQ(err.message, "information request count does not match length");
}

TEST(NbdCodec, MetaContextRequestRoundTrips) {
  MetaContextRequest in{"rbd/p/i", {"base:allocation", "qemu:dirty-bitmap:x"}};
  auto wire = EncodeMetaContextRequest(in);
  MetaContextRequest out;
  OptionError err;
  ASSERT_TRUE(DecodeMetaContextRequest(V(wire), 4096, &out, &err)) << err.message;
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.queries, in.queries);
  // No queries at all: valid (LIST asks for every context).
  wire = EncodeMetaContextRequest(MetaContextRequest{"file/a", {}});
  ASSERT_TRUE(DecodeMetaContextRequest(V(wire), 4096, &out, &err));
  EXPECT_TRUE(out.queries.empty());
}

TEST(NbdCodec, MetaContextRequestMalformedOrTooBig) {
  MetaContextRequest out;
  OptionError err;
  auto wire = EncodeMetaContextRequest(MetaContextRequest{"a", {"q"}});
  Put32(wire.data() + 5, 2);  // two queries announced, one sent
  EXPECT_FALSE(DecodeMetaContextRequest(V(wire), 4096, &out, &err));
  EXPECT_EQ(err.type, kRepErrInvalid);
  EXPECT_EQ(err.message, "query count exceeds option length");
  wire = EncodeMetaContextRequest(MetaContextRequest{"a", {"q"}});
  wire.push_back('!');
  EXPECT_FALSE(DecodeMetaContextRequest(V(wire), 4096, &out, &err));
  EXPECT_EQ(err.message, "trailing bytes after the queries");
  wire = EncodeMetaContextRequest(MetaContextRequest{"a", {std::string(20, 'q')}});
  EXPECT_FALSE(DecodeMetaContextRequest(V(wire), 16, &out, &err));
  EXPECT_EQ(err.type, kRepErrTooBig);
  EXPECT_EQ(err.message, "query longer than 16 bytes");
  EXPECT_FALSE(DecodeMetaContextRequest(std::string_view("\0\0\0\0", 4), 4096, &out, &err));
  EXPECT_EQ(err.message, "option too short");
}

TEST(NbdCodec, OptionReplyPayloads) {
  std::string server = EncodeServerReply("file/a.img");
  EXPECT_EQ(Get32(U(server)), 10u);
  EXPECT_EQ(server.substr(4), "file/a.img");

  std::string meta = EncodeMetaContextReply(kBaseAllocationId, kBaseAllocation);
  EXPECT_EQ(Get32(U(meta)), 1u);
  EXPECT_EQ(meta.substr(4), "base:allocation");

  std::string exp = EncodeInfoExport(4096, kFlagHasFlags | kFlagSendFlush);
  ASSERT_EQ(exp.size(), 12u);
  EXPECT_EQ(Get16(U(exp)), kInfoExport);
  uint64_t size = 0;
  uint16_t flags = 0;
  ASSERT_TRUE(DecodeInfoExport(exp, &size, &flags));
  EXPECT_EQ(size, 4096u);
  EXPECT_EQ(flags, kFlagHasFlags | kFlagSendFlush);
  EXPECT_FALSE(DecodeInfoExport(exp + "x", &size, &flags));

  std::string name = EncodeInfoText(kInfoDescription, "file backstore a.img");
  EXPECT_EQ(Get16(U(name)), kInfoDescription);
  EXPECT_EQ(name.substr(2), "file backstore a.img");

  std::string bs = EncodeInfoBlockSize(512, 4096, 32u << 20);
  ASSERT_EQ(bs.size(), 14u);
  EXPECT_EQ(Get16(U(bs)), kInfoBlockSize);
  uint32_t min = 0, pref = 0, max = 0;
  ASSERT_TRUE(DecodeInfoBlockSize(bs, &min, &pref, &max));
  EXPECT_EQ(min, 512u);
  EXPECT_EQ(pref, 4096u);
  EXPECT_EQ(max, 32u << 20);
  EXPECT_FALSE(DecodeInfoBlockSize(bs.substr(0, 13), &min, &pref, &max));
}

TEST(NbdCodec, ErrorChunkLayout) {
  uint8_t p[kMaxReplyHeaderSize];
  ASSERT_EQ(EncodeErrorChunk(p, 77, kENOSPC, 23), 26u);
  EXPECT_EQ(Get32(p), kStructuredReplyMagic);
  EXPECT_EQ(Get16(p + 4), kReplyFlagDone);
  EXPECT_EQ(Get16(p + 6), kReplyError);
  EXPECT_EQ(Get64(p + 8), 77u);
  EXPECT_EQ(Get32(p + 16), 6u + 23);  // error, message length, message
  EXPECT_EQ(Get32(p + 20), kENOSPC);
  EXPECT_EQ(Get16(p + 24), 23u);
}

TEST(NbdCodec, OffsetDataChunkLayout) {
  uint8_t p[kMaxReplyHeaderSize];
  ASSERT_EQ(EncodeOffsetDataChunk(p, 5, 1ull << 33, 65536), 28u);
  EXPECT_EQ(Get16(p + 6), kReplyOffsetData);
  EXPECT_EQ(Get32(p + 16), 8u + 65536);
  EXPECT_EQ(Get64(p + 20), 1ull << 33);
}

TEST(NbdCodec, BlockStatusChunkAndDescriptorLayout) {
  uint8_t p[kMaxReplyHeaderSize];
  ASSERT_EQ(EncodeBlockStatusChunk(p, 9, kBaseAllocationId, 3 * kBlockDescriptorSize), 24u);
  EXPECT_EQ(Get16(p + 6), kReplyBlockStatus);
  EXPECT_EQ(Get32(p + 16), 4u + 24);
  EXPECT_EQ(Get32(p + 20), kBaseAllocationId);
  uint8_t d[kBlockDescriptorSize];
  EncodeBlockDescriptor(d, 1u << 20, kStateHole | kStateZero);
  EXPECT_EQ(Get32(d), 1u << 20);
  EXPECT_EQ(Get32(d + 4), 3u);
}

}  // namespace
}  // namespace nbdr::nbd
