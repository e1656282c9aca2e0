// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the transmission engine (runner/transmission_engine.h)
// over a socketpair, against a real file backstore: data written is read
// back, bad requests are refused and the connection stays, a burst of
// pipelined requests (reply coalescing on) gets every reply, and the ways
// a connection ends.
#include "runner/transmission_engine.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

#include "file_export_fixture.h"
#include "nbd_client_script.h"

namespace nbdr {
namespace {

using namespace nbd;

class TransmissionEngineTest : public FileExportFixture {
 protected:
  // Opens file/a.img as a handshake would have, with simple or structured
  // replies, and runs the engine on the runner's end in a thread (or
  // leaves it to the test to call Serve).
  void Begin(bool structured, NbdServerOptions opts = {}, bool run = true) {
    StartServer(opts);
    Connect();
    auto open = registry_->OpenForServing("file/a.img", "");
    ASSERT_TRUE(open.ok()) << open.status().message();
    NegotiatedExport e;
    e.open = *open;
    e.name = "file/a.img";
    e.size = (*open)->info().size;
    e.caps = (*open)->info().caps;
    e.min_block = 512;
    e.max_payload = opts.max_payload;
    e.structured = structured;
    engine_ = std::make_unique<TransmissionEngine>(transport_.get(), std::move(e), server_.get(),
                                                   &log_name_);
    if (run) thread_ = std::thread([this] { engine_->Run(); });
  }
  // Waits for Run() to return; whether the client sent NBD_CMD_DISC.
  bool Finish() {
    thread_.join();
    bool disc = engine_->client_disconnected();
    engine_.reset();
    return disc;
  }
  void TearDown() override {
    if (thread_.joinable()) {
      client_.reset();
      thread_.join();
    }
    engine_.reset();
    FileExportFixture::TearDown();
  }

  std::string log_name_ = "conn#1 test file/a.img";
  std::unique_ptr<TransmissionEngine> engine_;
  std::thread thread_;
};

TEST_F(TransmissionEngineTest, WrittenDataReadsBackThenDiscEnds) {
  Begin(/*structured=*/false);
  ScriptedNbdClient c(client_.get());
  std::string data(8192, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7);
  c.SendRequest(kCmdWrite, 1, 4096, 8192, 0, data);
  uint64_t cookie = 0;
  EXPECT_EQ(c.ReadSimpleReply(&cookie), 0u);
  EXPECT_EQ(cookie, 1u);
  c.SendRequest(kCmdRead, 2, 4096, 8192);
  std::string back;
  EXPECT_EQ(c.ReadSimpleReply(&cookie, &back, 8192), 0u);
  EXPECT_EQ(cookie, 2u);
  EXPECT_EQ(back, data);
  c.SendRequest(kCmdDisc, 3, 0, 0);
  EXPECT_TRUE(Finish());
}

TEST_F(TransmissionEngineTest, RefusedRequestsGetErrorsAndTheConnectionStays) {
  Begin(/*structured=*/false);
  ScriptedNbdClient c(client_.get());
  uint64_t cookie = 0;
  c.SendRequest(kCmdRead, 10, kExportSize, 4096);  // past the end
  EXPECT_EQ(c.ReadSimpleReply(&cookie), kEINVAL);
  EXPECT_EQ(cookie, 10u);
  // A refused write's payload is read and dropped, not taken as requests.
  c.SendRequest(kCmdWrite, 11, kExportSize, 4096, 0, std::string(4096, 'x'));
  EXPECT_EQ(c.ReadSimpleReply(&cookie), kENOSPC);
  EXPECT_EQ(cookie, 11u);
  c.SendRequest(kCmdBlockStatus, 12, 0, 4096);  // no meta context negotiated
  EXPECT_EQ(c.ReadSimpleReply(&cookie), kEINVAL);
  c.SendRequest(kCmdRead, 13, 0, 512);
  std::string back;
  EXPECT_EQ(c.ReadSimpleReply(&cookie, &back, 512), 0u);
  EXPECT_EQ(cookie, 13u);
  client_.reset();  // gone without NBD_CMD_DISC
  EXPECT_FALSE(Finish());
}

TEST_F(TransmissionEngineTest, StructuredReadIsOneOffsetDataChunk) {
  Begin(/*structured=*/true);
  ScriptedNbdClient c(client_.get());
  c.SendRequest(kCmdRead, 7, 512, 1024);
  uint8_t hdr[28];
  ASSERT_TRUE(c.Read(hdr, sizeof hdr));
  EXPECT_EQ(Get32(hdr), kStructuredReplyMagic);
  EXPECT_EQ(Get16(hdr + 4), kReplyFlagDone);
  EXPECT_EQ(Get16(hdr + 6), kReplyOffsetData);
  EXPECT_EQ(Get64(hdr + 8), 7u);
  EXPECT_EQ(Get32(hdr + 16), 8u + 1024);
  EXPECT_EQ(Get64(hdr + 20), 512u);
  std::string data(1024, '\0');
  ASSERT_TRUE(c.Read(data.data(), data.size()));
  EXPECT_EQ(data, std::string(1024, '\0'));  // a new file reads as zeroes
  // An error is an error chunk with a message.
  c.SendRequest(kCmdRead, 8, 0, 0);
  uint8_t err[26];
  ASSERT_TRUE(c.Read(err, sizeof err));
  EXPECT_EQ(Get16(err + 6), kReplyError);
  EXPECT_EQ(Get32(err + 20), kEINVAL);
  std::string msg(Get16(err + 24), '\0');
  ASSERT_TRUE(c.Read(msg.data(), msg.size()));
  EXPECT_EQ(msg, "Invalid argument");
  c.SendRequest(kCmdDisc, 9, 0, 0);
  EXPECT_TRUE(Finish());
}

TEST_F(TransmissionEngineTest, PipelinedBurstGetsEveryReplyWithCoalescing) {
  NbdServerOptions opts;
  opts.busy_poll_us = 200;  // coalescing on
  opts.readers_per_connection = 2;
  Begin(/*structured=*/false, opts);
  ScriptedNbdClient c(client_.get());
  constexpr int kRequests = 500;
  std::thread writer([&] {
    for (int i = 0; i < kRequests; i++) {
      if (i % 2)
        c.SendRequest(kCmdWrite, i, 4096ull * (i % 200), 4096, 0, std::string(4096, 'w'));
      else
        c.SendRequest(kCmdRead, i, 4096ull * (i % 200), 4096);
    }
  });
  std::set<uint64_t> seen;
  for (int i = 0; i < kRequests; i++) {
    uint64_t cookie = 0;
    // Reads carry 4096 bytes; the cookie says which.
    uint8_t r[kSimpleReplySize];
    ASSERT_TRUE(c.Read(r, sizeof r));
    ASSERT_EQ(Get32(r), kSimpleReplyMagic);
    ASSERT_EQ(Get32(r + 4), 0u);
    cookie = Get64(r + 8);
    if (cookie % 2 == 0) {
      std::string data(4096, '\0');
      ASSERT_TRUE(c.Read(data.data(), data.size()));
    }
    EXPECT_TRUE(seen.insert(cookie).second) << "cookie " << cookie << " answered twice";
  }
  writer.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRequests));
  c.SendRequest(kCmdDisc, 0, 0, 0);
  EXPECT_TRUE(Finish());
}

TEST_F(TransmissionEngineTest, BadMagicOrOversizedWriteEndsTheConnection) {
  Begin(/*structured=*/false);
  ScriptedNbdClient c(client_.get());
  uint8_t junk[kRequestHeaderSize] = {0xde, 0xad};
  c.Write(junk, sizeof junk);
  EXPECT_FALSE(Finish());

  NbdServerOptions opts;
  opts.max_payload = 64 * 1024;
  Begin(/*structured=*/false, opts);
  ScriptedNbdClient c2(client_.get());
  // Far more than the maximum payload: no sane client sends that.
  c2.SendRequest(kCmdWrite, 1, 0, TransmissionEngine::kMaxDiscardedWrite + 1);
  EXPECT_FALSE(Finish());
}

TEST_F(TransmissionEngineTest, WriteOverTheMaximumPayloadIsRefusedAndConsumed) {
  NbdServerOptions opts;
  opts.max_payload = 64 * 1024;
  Begin(/*structured=*/false, opts);
  ScriptedNbdClient c(client_.get());
  const std::string payload(128 * 1024, '\x5a');
  c.SendRequest(kCmdWrite, 1, 0, static_cast<uint32_t>(payload.size()), 0, payload);
  uint64_t cookie = 0;
  EXPECT_EQ(c.ReadSimpleReply(&cookie), static_cast<uint32_t>(EINVAL));
  EXPECT_EQ(cookie, 1u);
  c.SendRequest(kCmdRead, 2, 0, 4096);  // the connection stays in step
  std::string data;
  EXPECT_EQ(c.ReadSimpleReply(&cookie, &data, 4096), 0u);
  EXPECT_EQ(cookie, 2u);
  EXPECT_NE(data, payload.substr(0, 4096));  // the refused write was not applied
  c.SendRequest(kCmdDisc, 3, 0, 0);
  EXPECT_TRUE(Finish());
}

// The server's event loop wakes a parked connection by a coarse-clock
// timer that can ring a few milliseconds before the idle deadline. Such a
// wake must park again with the same deadline: once it ran the readers and
// set a new deadline, and an idle connection could outlive
// --idle-timeout several times (a 3 s timeout took 9 s in CI).
TEST_F(TransmissionEngineTest, EarlyWakeFromAParkKeepsTheIdleDeadline) {
  NbdServerOptions opts;
  opts.idle_timeout_s = 1;
  opts.idle_park_ms = 100;
  Begin(/*structured=*/false, opts, /*run=*/false);
  ASSERT_EQ(engine_->Serve(), TransmissionEngine::Outcome::kParked);
  const auto deadline = engine_->idle_deadline();
  ASSERT_NE(deadline, std::chrono::steady_clock::time_point::max());
  EXPECT_EQ(engine_->Serve(), TransmissionEngine::Outcome::kParked);  // the early wake
  EXPECT_EQ(engine_->idle_deadline(), deadline);
  std::this_thread::sleep_until(deadline + std::chrono::milliseconds(1));
  EXPECT_EQ(engine_->Serve(), TransmissionEngine::Outcome::kEnded);
}

}  // namespace
}  // namespace nbdr
