// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TlsSession: the server side of TLS (GnuTLS) on a connection's socket,
// for TcpTransport once a client asked for NBD_OPT_STARTTLS. It gives the
// transport's Recv/Send semantics over TLS records:
//  - Recv returns plaintext, from GnuTLS's buffer first; kNoWait never
//    waits for the socket.
//  - Send returns only what reached the socket: plaintext whose records
//    were encrypted but not yet written is kept (with its ciphertext) and
//    counted as sent once written, when the caller offers the same bytes
//    again, as every caller of Transport::Send does after a short count.
//    So kNoWait never waits, and nothing is encrypted twice.
//
// Thread-safety: as Transport: one receiving thread and one sending
// thread at a time may run at once (GnuTLS allows that for a session, and
// no renegotiation exists in TLS 1.3 or is accepted in 1.2). The fd is
// owned by the transport and outlives the session.
#pragma once

#include <gnutls/gnutls.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runner/tls_credentials.h"
#include "utils/status.h"

namespace nbdr {

class TlsSession {
 public:
  // Runs the server handshake on fd, which must finish before deadline.
  // Fails with a message saying why (the client's alert, a bad
  // certificate, an unknown PSK identity, the deadline).
  static Expected<std::unique_ptr<TlsSession>> Accept(
      int fd, std::shared_ptr<const TlsCredentials> creds,
      std::chrono::steady_clock::time_point deadline);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  ssize_t Recv(void* dst, size_t cap, bool nowait);
  ssize_t Send(const iovec* iov, int n, bool nowait);

  // Who the client proved to be: "psk:IDENTITY", "x509:DN" (a verified
  // certificate), or "" (a certificate-less X.509 client).
  const std::string& identity() const { return identity_; }
  // "(TLS1.3)-(ECDHE-SECP256R1)-(AES-256-GCM)": for the log.
  const std::string& description() const { return description_; }

 private:
  // Most plaintext one Send encrypts ahead of the socket.
  static constexpr size_t kMaxStagedPlain = 256 * 1024;
  // Plaintext per TLS record (TLS's own maximum).
  static constexpr size_t kRecordPlain = 16 * 1024;

  // A run of ciphertext in staged_ and the plaintext bytes it carries.
  struct StagedRecord {
    size_t cipher_end;  // offset in staged_ just past this record
    size_t plain_len;
  };

  TlsSession(int fd, std::shared_ptr<const TlsCredentials> creds);
  Status Handshake(std::chrono::steady_clock::time_point deadline);
  void LearnPeer();
  // Writes staged_ to the socket; plaintext of the records now fully
  // written is added to *acked. False on a socket error (errno set).
  bool WriteStaged(bool nowait, size_t* acked);
  // Encrypts up to kMaxStagedPlain of iov[..n) after skip bytes into staged_.
  bool Encrypt(const iovec* iov, int n, size_t skip);
  // Encrypts one record of plaintext into staged_.
  bool SealRecord(const uint8_t* p, size_t len);

  static ssize_t Pull(gnutls_transport_ptr_t self, void* buf, size_t len);
  static int PullTimeout(gnutls_transport_ptr_t self, unsigned int ms);
  static ssize_t Push(gnutls_transport_ptr_t self, const giovec_t* iov, int n);

  const int fd_;
  const std::shared_ptr<const TlsCredentials> creds_;  // the session points into it
  gnutls_session_t session_ = nullptr;
  std::string identity_, description_;

  bool recv_nowait_ = false;  // receiving thread only: how Pull waits
  // The sending thread while it encrypts: GnuTLS's output goes to staged_
  // instead of the socket. Any other push (the handshake) writes directly.
  std::atomic<std::thread::id> staging_thread_{};
  std::vector<uint8_t> staged_;  // sending thread only
  size_t staged_written_ = 0;    // bytes of staged_ already on the socket
  std::deque<StagedRecord> staged_records_;
  std::vector<uint8_t> gather_;  // small pieces, until a record is full
};

}  // namespace nbdr
