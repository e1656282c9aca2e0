// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ScriptedNbdClient: plays an NBD client byte by byte on a socket, for the
// unit tests of the runner's handshake and transmission engine. Every
// call fails the current test (gtest ADD_FAILURE) on a short read or write.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "utils/nbd_protocol.h"
#include "utils/net.h"

namespace nbdr {

class ScriptedNbdClient {
 public:
  explicit ScriptedNbdClient(int fd) : fd_(fd) {}

  // Reads the greeting and answers with client_flags.
  uint16_t Start(uint32_t client_flags = nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes) {
    uint8_t g[nbd::kGreetingSize];
    uint16_t flags = 0;
    if (!Read(g, sizeof g)) return 0;
    EXPECT_TRUE(nbd::DecodeGreeting(g, &flags));
    uint8_t f[4];
    nbd::Put32(f, client_flags);
    Write(f, sizeof f);
    return flags;
  }

  void SendOption(uint32_t option, std::string_view data = {}) {
    uint8_t h[nbd::kOptionHeaderSize];
    nbd::EncodeOptionHeader(h, option, static_cast<uint32_t>(data.size()));
    Write(h, sizeof h);
    Write(data.data(), data.size());
  }
  void SendOption(uint32_t option, const std::vector<uint8_t>& data) {
    SendOption(option, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  }

  struct OptionReply {
    uint32_t option = 0, type = 0;
    std::string data;
  };
  OptionReply ReadOptionReply() {
    uint8_t h[nbd::kOptionReplyHeaderSize];
    OptionReply r;
    if (!Read(h, sizeof h)) return r;
    nbd::OptionReplyHeader hdr = nbd::DecodeOptionReplyHeader(h);
    EXPECT_EQ(hdr.magic, nbd::kOptReplyMagic);
    r.option = hdr.option;
    r.type = hdr.type;
    r.data.resize(hdr.length);
    Read(r.data.data(), r.data.size());
    return r;
  }
  // Reads replies until NBD_REP_ACK or an error; returns them all.
  std::vector<OptionReply> ReadUntilAckOrError() {
    std::vector<OptionReply> out;
    for (;;) {
      out.push_back(ReadOptionReply());
      uint32_t t = out.back().type;
      if (t == nbd::kRepAck || (t & nbd::kRepErrBit) || t == 0) return out;
    }
  }

  void SendRequest(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length,
                   uint16_t flags = 0, std::string_view payload = {}) {
    uint8_t h[nbd::kRequestHeaderSize];
    nbd::EncodeRequestHeader(nbd::RequestHeader{nbd::kRequestMagic, flags, type, cookie, offset,
                                                length},
                             h);
    Write(h, sizeof h);
    Write(payload.data(), payload.size());
  }
  // A simple reply: error and cookie; data_len bytes of data follow on
  // success when data is given.
  uint32_t ReadSimpleReply(uint64_t* cookie, std::string* data = nullptr, size_t data_len = 0) {
    uint8_t r[nbd::kSimpleReplySize];
    if (!Read(r, sizeof r)) return ~0u;
    EXPECT_EQ(nbd::Get32(r), nbd::kSimpleReplyMagic);
    *cookie = nbd::Get64(r + 8);
    uint32_t err = nbd::Get32(r + 4);
    if (data && err == 0) {
      data->resize(data_len);
      Read(data->data(), data_len);
    }
    return err;
  }

  // True when the runner closed its end (the next read finds the end of
  // the stream) within the socket's receive timeout.
  bool SeesEndOfStream() {
    SetRecvTimeout(fd_, std::chrono::seconds(10));
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

  bool Read(void* buf, size_t len) {
    Status s = ReadAll(fd_, buf, len);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok();
  }
  void Write(const void* buf, size_t len) {
    if (len == 0) return;
    Status s = WriteAll(fd_, buf, len);
    EXPECT_TRUE(s.ok()) << s.message();
  }

 private:
  int fd_;
};

}  // namespace nbdr
