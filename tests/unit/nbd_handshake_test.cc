// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the runner's handshake (runner/nbd_handshake.h) over a
// socketpair, against a real file backstore: what each option answers,
// what the handshake returns, and when it hangs up.
#include "runner/nbd_handshake.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "file_export_fixture.h"
#include "nbd_client_script.h"

namespace nbdr {
namespace {

using namespace nbd;

class NbdHandshakeTest : public FileExportFixture {
 protected:
  // Starts the handshake on the runner's end in a thread; Finish() joins
  // it and returns its result.
  void Begin(NbdServerOptions opts = {}) {
    StartServer(opts);
    Connect();
    thread_ = std::thread([this] {
      result_ = NbdHandshake(transport_.get(), server_.get(), &log_name_).Run();
    });
  }
  std::optional<NegotiatedExport> Finish() {
    thread_.join();
    return std::move(result_);
  }
  // After Finish: closes the runner's end (as the connection does) and
  // tells whether the client then reads the end of the stream, with no
  // byte the handshake left unread before it.
  bool NothingMoreThenEnd(ScriptedNbdClient* c) {
    transport_.reset();
    return c->SeesEndOfStream();
  }
  void TearDown() override {
    if (thread_.joinable()) {
      client_.reset();
      thread_.join();
    }
    result_.reset();  // the open export, before the registry goes
    FileExportFixture::TearDown();
  }

  std::string log_name_ = "conn#1 test";
  std::thread thread_;
  std::optional<NegotiatedExport> result_;
};

TEST_F(NbdHandshakeTest, GoReturnsTheNegotiatedExport) {
  Begin();
  ScriptedNbdClient c(client_.get());
  EXPECT_EQ(c.Start(), kFlagFixedNewstyle | kFlagNoZeroes);
  c.SendOption(kOptStructuredReply);
  EXPECT_EQ(c.ReadOptionReply().type, kRepAck);
  c.SendOption(kOptSetMetaContext,
               EncodeMetaContextRequest(MetaContextRequest{"file/a.img", {"base:allocation"}}));
  auto meta = c.ReadUntilAckOrError();
  ASSERT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta[0].type, kRepMetaContext);
  EXPECT_EQ(meta[0].data, EncodeMetaContextReply(kBaseAllocationId, kBaseAllocation));
  c.SendOption(kOptGo, EncodeInfoRequest(InfoRequest{"file/a.img", {kInfoBlockSize, kInfoName}}));
  auto go = c.ReadUntilAckOrError();
  ASSERT_EQ(go.size(), 4u);  // export, name, block size, ack
  uint64_t size = 0;
  uint16_t flags = 0;
  ASSERT_TRUE(DecodeInfoExport(go[0].data, &size, &flags));
  EXPECT_EQ(size, kExportSize);
  EXPECT_TRUE(flags & kFlagSendDf);
  EXPECT_EQ(go[1].data, EncodeInfoText(kInfoName, "file/a.img"));
  EXPECT_EQ(go[3].type, kRepAck);

  auto e = Finish();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->name, "file/a.img");
  EXPECT_EQ(e->size, kExportSize);
  EXPECT_TRUE(e->structured);
  EXPECT_TRUE(e->base_allocation);
  EXPECT_TRUE(e->client_knows_block_size);
  EXPECT_NE(e->open, nullptr);
  EXPECT_EQ(log_name_, "conn#1 test file/a.img");
}

TEST_F(NbdHandshakeTest, ListInfoAndRefusalsKeepTheHandshakeGoing) {
  Begin();
  ScriptedNbdClient c(client_.get());
  c.Start();
  c.SendOption(kOptList);
  auto list = c.ReadUntilAckOrError();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].type, kRepServer);
  EXPECT_EQ(list[0].data, EncodeServerReply("file/a.img"));

  c.SendOption(kOptInfo, EncodeInfoRequest(InfoRequest{"file/none.img", {}}));
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrUnknown);
  c.SendOption(kOptStartTls);
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrUnsup);
  c.SendOption(kOptSetMetaContext, EncodeMetaContextRequest(MetaContextRequest{"file/a.img", {}}));
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrInvalid);  // structured replies first
  c.SendOption(kOptStructuredReply);
  EXPECT_EQ(c.ReadOptionReply().type, kRepAck);
  c.SendOption(kOptStructuredReply);
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrInvalid);  // twice
  c.SendOption(kOptInfo, std::string_view("\0\0", 2));
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrInvalid);  // malformed
  c.SendOption(kOptInfo, EncodeInfoRequest(InfoRequest{"file/a.img", {}}));
  EXPECT_EQ(c.ReadUntilAckOrError().back().type, kRepAck);
  c.SendOption(99);
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrUnsup);
  c.SendOption(kOptAbort);
  EXPECT_EQ(c.ReadOptionReply().type, kRepAck);
  EXPECT_FALSE(Finish().has_value());
  EXPECT_TRUE(NothingMoreThenEnd(&c));
}

TEST_F(NbdHandshakeTest, ExportNameReplyHonoursNoZeroes) {
  for (bool no_zeroes : {true, false}) {
    Begin();
    ScriptedNbdClient c(client_.get());
    c.Start(kClientFlagFixedNewstyle | (no_zeroes ? kClientFlagNoZeroes : 0));
    c.SendOption(kOptExportName, std::string_view("file/a.img"));
    std::vector<uint8_t> reply(no_zeroes ? 10 : 134);
    ASSERT_TRUE(c.Read(reply.data(), reply.size()));
    EXPECT_EQ(Get64(reply.data()), kExportSize);
    auto e = Finish();
    ASSERT_TRUE(e.has_value());
    EXPECT_FALSE(e->structured);
    e.reset();
  }
}

TEST_F(NbdHandshakeTest, RefusedExportNameHangsUp) {
  Begin();
  ScriptedNbdClient c(client_.get());
  c.Start();
  c.SendOption(kOptExportName, std::string_view("file/none.img"));
  EXPECT_FALSE(Finish().has_value());
  EXPECT_TRUE(NothingMoreThenEnd(&c));
}

TEST_F(NbdHandshakeTest, OversizedOptionGetsTooBigAndCloses) {
  Begin();
  ScriptedNbdClient c(client_.get());
  c.Start();
  uint8_t h[kOptionHeaderSize];
  EncodeOptionHeader(h, kOptInfo, 1u << 20);
  c.Write(h, sizeof h);
  EXPECT_EQ(c.ReadOptionReply().type, kRepErrTooBig);
  EXPECT_FALSE(Finish().has_value());
}

TEST_F(NbdHandshakeTest, BadMagicUnknownFlagsAndTooManyOptionsClose) {
  Begin();
  ScriptedNbdClient c(client_.get());
  c.Start();
  uint8_t junk[kOptionHeaderSize] = {1, 2, 3};
  c.Write(junk, sizeof junk);
  EXPECT_FALSE(Finish().has_value());

  Begin();
  ScriptedNbdClient c2(client_.get());
  c2.Start(kClientFlagFixedNewstyle | 0x100);
  EXPECT_FALSE(Finish().has_value());

  NbdServerOptions opts;
  opts.max_handshake_bytes = 3 * kOptionHeaderSize;
  Begin(opts);
  ScriptedNbdClient c3(client_.get());
  c3.Start();
  for (int i = 0; i < 3; i++) {
    c3.SendOption(kOptStartTls);
    EXPECT_EQ(c3.ReadOptionReply().type, kRepErrUnsup);
  }
  // The byte budget ends the handshake before a fourth option is served.
  c3.SendOption(kOptStartTls);
  EXPECT_FALSE(Finish().has_value());
  EXPECT_TRUE(NothingMoreThenEnd(&c3));
}

// The options a listing client sends (LIST, then INFO per export) are not
// limited by their number: a thousand are served within the defaults.
TEST_F(NbdHandshakeTest, AThousandOptionsAreServed) {
  Begin();
  ScriptedNbdClient c(client_.get());
  c.Start();
  for (int i = 0; i < 1000; i++) {
    c.SendOption(kOptStartTls);
    ASSERT_EQ(c.ReadOptionReply().type, kRepErrUnsup) << "option " << i;
  }
  c.SendOption(kOptAbort);
  EXPECT_FALSE(Finish().has_value());
}

TEST_F(NbdHandshakeTest, SilentClientIsDroppedAtTheDeadline) {
  NbdServerOptions opts;
  opts.handshake_timeout_s = 1;
  Begin(opts);
  ScriptedNbdClient c(client_.get());
  c.Start();
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(Finish().has_value());
  // Not a timing assertion on speed: the deadline must have been reached.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
}

}  // namespace
}  // namespace nbdr
