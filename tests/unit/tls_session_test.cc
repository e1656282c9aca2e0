// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TlsSession (runner/tls_session.h) over a socketpair, against a GnuTLS
// client: the transport contract the handshake and the reply sender rely
// on. Recv with kNoWait never waits; Send with kNoWait never waits and
// counts as sent only what reached the socket, so a sender that offers the
// unsent rest again (as ReplySender and SendAll do) delivers every byte
// exactly once, however often the socket fills up.
#include <gnutls/gnutls.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "runner/tls_credentials.h"
#include "runner/tls_session.h"
#include "utils/unique_fd.h"

namespace nbdr {
namespace {

const char kIdentity[] = "alice";
const char kKeyHex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// A fresh directory with keys.psk (alice's key) of this mode; its path.
std::string MakePskFile(mode_t mode) {
  char dir[] = "/tmp/nbdr-tls-unit.XXXXXX";
  if (!mkdtemp(dir)) return "";
  const std::string psk = std::string(dir) + "/keys.psk";
  std::ofstream(psk) << kIdentity << ":" << kKeyHex << "\n";
  if (chmod(psk.c_str(), mode) != 0) return "";
  return psk;
}

void RemovePskFile(const std::string& psk) {
  std::system(("rm -rf " + psk.substr(0, psk.rfind('/'))).c_str());
}

class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    psk_ = MakePskFile(0600);
    ASSERT_FALSE(psk_.empty());
    TlsOptions o;
    o.mode = TlsMode::kRequire;
    o.psk_file = psk_;
    auto creds = TlsCredentials::Load(o);
    ASSERT_TRUE(creds.ok()) << creds.status().message();
    creds_ = *creds;

    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    server_fd_.reset(sv[0]);
    client_fd_.reset(sv[1]);
    int small = 16 * 1024;  // the socket fills up quickly
    setsockopt(server_fd_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(client_fd_.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval five{5, 0};  // a byte that never comes fails the test, not hangs it
    setsockopt(client_fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    Handshake();
  }

  void TearDown() override {
    server_.reset();
    if (client_) gnutls_deinit(client_);
    if (client_psk_) gnutls_psk_free_client_credentials(client_psk_);
    if (!psk_.empty()) RemovePskFile(psk_);
  }

  void Handshake() {
    Expected<std::unique_ptr<TlsSession>> accepted = Status::Error(EIO, "not run");
    std::thread server([&] {
      accepted = TlsSession::Accept(server_fd_.get(), creds_,
                                    std::chrono::steady_clock::now() + std::chrono::seconds(10));
    });
    ASSERT_EQ(gnutls_psk_allocate_client_credentials(&client_psk_), 0);
    gnutls_datum_t key{reinterpret_cast<unsigned char*>(const_cast<char*>(kKeyHex)),
                       sizeof kKeyHex - 1};
    ASSERT_EQ(gnutls_psk_set_client_credentials(client_psk_, kIdentity, &key, GNUTLS_PSK_KEY_HEX), 0);
    ASSERT_EQ(gnutls_init(&client_, GNUTLS_CLIENT), 0);
    ASSERT_EQ(gnutls_priority_set_direct(client_, "NORMAL:+ECDHE-PSK", nullptr), 0);
    ASSERT_EQ(gnutls_credentials_set(client_, GNUTLS_CRD_PSK, client_psk_), 0);
    gnutls_transport_set_int(client_, client_fd_.get());
    int rc;
    do rc = gnutls_handshake(client_);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    server.join();
    ASSERT_EQ(rc, 0) << gnutls_strerror(rc);
    ASSERT_TRUE(accepted.ok()) << accepted.status().message();
    server_ = std::move(*accepted);
  }

  // Reads up to max plaintext bytes the client has been sent; none when
  // nothing came within 5 s (the client socket's receive timeout; GnuTLS
  // also answers AGAIN after it handled a post-handshake message).
  std::vector<uint8_t> ClientRead(size_t max) {
    std::vector<uint8_t> out(max);
    ssize_t n;
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    do n = gnutls_record_recv(client_, out.data(), out.size());
    while (n == GNUTLS_E_INTERRUPTED ||
           (n == GNUTLS_E_AGAIN && std::chrono::steady_clock::now() < give_up));
    EXPECT_GT(n, 0) << gnutls_strerror(static_cast<int>(n));
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  std::string psk_;
  std::shared_ptr<const TlsCredentials> creds_;
  UniqueFd server_fd_, client_fd_;
  std::unique_ptr<TlsSession> server_;
  gnutls_session_t client_ = nullptr;
  gnutls_psk_client_credentials_t client_psk_ = nullptr;
};

TEST_F(TlsSessionTest, LearnsThePskIdentity) {
  EXPECT_EQ(server_->identity(), "psk:alice");
  EXPECT_NE(server_->description().find("ECDHE-PSK"), std::string::npos) << server_->description();
}

TEST_F(TlsSessionTest, RecvNoWaitDoesNotWaitThenGetsWhatArrives) {
  char buf[64];
  errno = 0;
  EXPECT_EQ(server_->Recv(buf, sizeof buf, /*nowait=*/true), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(gnutls_record_send(client_, "request", 7), 7);
  ssize_t n = server_->Recv(buf, sizeof buf, /*nowait=*/false);
  ASSERT_EQ(n, 7);
  EXPECT_EQ(std::string(buf, 7), "request");
  EXPECT_EQ(server_->Recv(buf, sizeof buf, /*nowait=*/true), -1);  // all consumed
}

// The reply sender's loop: offer everything not yet counted as sent, with
// kNoWait; on EAGAIN the client drains a little. Every byte must arrive
// once, in order, although most calls find the socket full.
TEST_F(TlsSessionTest, NoWaitSendDeliversEveryByteOnceThroughFullSockets) {
  std::vector<uint8_t> data(4 << 20);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  std::vector<uint8_t> received;
  size_t sent = 0;
  int would_block = 0;
  while (sent < data.size()) {
    // Three pieces, as a reply header, payload and the next header.
    size_t left = data.size() - sent, a = std::min<size_t>(16, left);
    size_t b = std::min<size_t>(300000, left - a), c = left - a - b;
    iovec iov[3] = {{data.data() + sent, a}, {data.data() + sent + a, b},
                    {data.data() + sent + a + b, c}};
    ssize_t w = server_->Send(iov, 3, /*nowait=*/true);
    if (w < 0) {
      ASSERT_EQ(errno, EAGAIN);
      would_block++;
      auto got = ClientRead(64 * 1024);
      received.insert(received.end(), got.begin(), got.end());
      continue;
    }
    ASSERT_GT(w, 0);
    sent += static_cast<size_t>(w);
  }
  EXPECT_GT(would_block, 10);  // the socket really did fill up
  while (received.size() < data.size()) {
    auto got = ClientRead(data.size() - received.size());
    ASSERT_FALSE(got.empty());
    received.insert(received.end(), got.begin(), got.end());
  }
  EXPECT_TRUE(received == data);
  char extra;
  EXPECT_EQ(recv(client_fd_.get(), &extra, 1, MSG_DONTWAIT), -1);  // nothing sent twice
  EXPECT_EQ(gnutls_record_check_pending(client_), 0u);
}

TEST_F(TlsSessionTest, BlockingSendWaitsForTheReader) {
  std::vector<uint8_t> data(2 << 20, 0x5a);
  std::thread reader([&] {
    size_t got = 0;
    while (got < data.size()) {
      size_t n = ClientRead(data.size() - got).size();
      if (n == 0) break;
      got += n;
    }
  });
  size_t sent = 0;
  while (sent < data.size()) {
    iovec iov{data.data() + sent, data.size() - sent};
    ssize_t w = server_->Send(&iov, 1, /*nowait=*/false);
    ASSERT_GT(w, 0) << strerror(errno);
    sent += static_cast<size_t>(w);
  }
  reader.join();
}

// A TLS 1.3 KeyUpdate from the client, asking the server to update its
// keys too, arrives while the server's sending thread is streaming a
// reply: the receiving thread handles it (under the session lock) and the
// server's own KeyUpdate goes out in order with the reply's records, so
// the client decrypts every byte, before and after the change of keys.
TEST_F(TlsSessionTest, AKeyUpdateWhileSendingKeepsTheStreamIntact) {
  std::vector<uint8_t> data(8 << 20);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 13 + i / 65536);
  std::thread sender([&] {
    size_t sent = 0;
    while (sent < data.size()) {
      iovec iov{data.data() + sent, std::min<size_t>(data.size() - sent, 100000)};
      ssize_t w = server_->Send(&iov, 1, /*nowait=*/false);
      ASSERT_GT(w, 0) << strerror(errno);
      sent += static_cast<size_t>(w);
    }
  });
  std::thread receiver([&] {
    char buf[16];
    ssize_t n = server_->Recv(buf, sizeof buf, /*nowait=*/false);
    EXPECT_EQ(n, 4);
  });
  std::vector<uint8_t> received = ClientRead(64 * 1024);  // the stream is under way
  ASSERT_EQ(gnutls_session_key_update(client_, GNUTLS_KU_PEER), 0);
  ASSERT_EQ(gnutls_record_send(client_, "next", 4), 4);
  while (received.size() < data.size()) {
    auto got = ClientRead(data.size() - received.size());
    ASSERT_FALSE(got.empty()) << "the stream stopped after " << received.size() << " bytes";
    received.insert(received.end(), got.begin(), got.end());
  }
  sender.join();
  receiver.join();
  EXPECT_TRUE(received == data);
}

TEST(TlsCredentialsTest, RefusesAPskFileOthersCanRead) {
  const std::string psk = MakePskFile(0644);
  ASSERT_FALSE(psk.empty());
  TlsOptions o;
  o.mode = TlsMode::kOn;
  o.psk_file = psk;
  auto creds = TlsCredentials::Load(o);
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("run chmod 600 " + psk), std::string::npos)
      << creds.status().message();
  RemovePskFile(psk);
}

}  // namespace
}  // namespace nbdr
