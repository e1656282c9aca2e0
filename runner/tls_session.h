// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TlsSession: the server side of TLS (GnuTLS) on a connection's socket,
// for TcpTransport once a client asked for NBD_OPT_STARTTLS: part of the
// transport, the only other code that touches the socket. It gives the
// transport's Recv/Send semantics over TLS records:
//  - Recv returns plaintext, from GnuTLS's buffer first; kNoWait never
//    waits for the socket.
//  - Send returns only what reached the socket: plaintext whose records
//    were encrypted but not yet written is kept (as ciphertext) and
//    counted as sent once written, when the caller offers the same bytes
//    again, as every caller of Transport::Send does after a short count.
//    So kNoWait never waits, and nothing is encrypted twice.
//
// Thread-safety: one receiving thread and one sending thread at a time
// may run at once. GnuTLS does not allow them in one session at the same
// time when TLS 1.3 updates keys (a KeyUpdate from the client changes the
// sending keys while the receiving thread handles it), so every GnuTLS
// call after the handshake holds mu_, and no call waits for the socket
// while it does: waits happen in poll() outside the lock. Every byte GnuTLS
// produces (records, and a KeyUpdate answered while receiving) goes to one
// queue, written in order by the sender. The fd is owned by the transport
// and outlives the session.
#pragma once

#include <gnutls/gnutls.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "runner/tls_credentials.h"
#include "utils/mutex.h"
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
  // The same in steps, so that a connection can park while its client is
  // quiet: Begin sets the session up on fd; ContinueHandshake runs the
  // handshake until it completes (OK), fails (why), passes deadline
  // (ETIMEDOUT), or has waited park_wait for the client (EAGAIN: call it
  // again once fd is readable).
  static Expected<std::unique_ptr<TlsSession>> Begin(int fd,
                                                     std::shared_ptr<const TlsCredentials> creds);
  Status ContinueHandshake(std::chrono::steady_clock::time_point deadline,
                           std::chrono::milliseconds park_wait);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  ssize_t Recv(void* dst, size_t cap, bool nowait) EXCLUDES(mu_);
  ssize_t Send(const iovec* iov, int n, bool nowait) EXCLUDES(mu_);
  // Whether decrypted data is waiting to be received (none is on a
  // Recv that returned EAGAIN).
  bool Pending() EXCLUDES(mu_);
  // Bounds each wait of a blocking Recv (0: none), as the socket's
  // SO_RCVTIMEO bounds plain TCP's (a blocking Send waits in send(), under
  // the socket's SO_SNDTIMEO).
  void SetRecvTimeout(std::chrono::microseconds t) { recv_timeout_us_ = t.count(); }

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

  // A record in the output queue: where it ends in the stream of bytes
  // ever queued, and the plaintext it carries.
  struct QueuedRecord {
    uint64_t end;
    size_t plain_len;
  };

  TlsSession(int fd, std::shared_ptr<const TlsCredentials> creds);
  void LearnPeer();
  // Writes the queue to the socket in order; plaintext of the records now
  // fully written is added to *acked. kBlock writes with the lock released
  // (the socket's SO_SNDTIMEO bounds each wait). False on a socket error or
  // timeout (errno set).
  bool WriteQueued(bool nowait, size_t* acked, MutexLock* lock) REQUIRES(mu_);
  // Encrypts up to kMaxStagedPlain of iov[..n) after skip bytes.
  bool Encrypt(const iovec* iov, int n, size_t skip) REQUIRES(mu_);
  // Encrypts plaintext as records (of the size GnuTLS may send) to the queue.
  bool SealRecords(const uint8_t* p, size_t len) REQUIRES(mu_);
  // poll() for events with a timeout in microseconds (0: none): > 0 ready,
  // 0 timed out, < 0 error.
  int WaitFor(short events, int64_t timeout_us) const;

  static ssize_t Pull(gnutls_transport_ptr_t self, void* buf, size_t len);
  static int PullTimeout(gnutls_transport_ptr_t self, unsigned int ms);
  static ssize_t Push(gnutls_transport_ptr_t self, const giovec_t* iov, int n)
      NO_THREAD_SAFETY_ANALYSIS;  // called by GnuTLS inside calls made with mu_ held

  const int fd_;
  const std::shared_ptr<const TlsCredentials> creds_;  // the session points into it
  gnutls_session_t session_ = nullptr;
  std::string identity_, description_;
  // Until the handshake is done (one thread), Pull waits and Push writes
  // to the socket; afterwards Pull never waits and Push queues.
  bool handshaken_ = false;
  std::atomic<int64_t> recv_timeout_us_{0};

  Mutex mu_;
  std::vector<uint8_t> out_ GUARDED_BY(mu_);  // ciphertext not yet written, from out_head_
  size_t out_head_ GUARDED_BY(mu_) = 0;
  uint64_t out_queued_ GUARDED_BY(mu_) = 0;   // bytes ever queued
  uint64_t out_written_ GUARDED_BY(mu_) = 0;  // bytes ever written
  std::deque<QueuedRecord> records_ GUARDED_BY(mu_);
  std::vector<uint8_t> gather_ GUARDED_BY(mu_);  // small pieces, until a record is full
};

}  // namespace nbdr
