// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Transport: the byte stream under one NBD connection, and the only code
// that touches its socket. The handshake and the transmission engine read
// and write through it; TcpTransport is plain TCP until the handshake
// starts TLS on it (NBD_OPT_STARTTLS), then TLS records (TlsSession, which
// buffers records: nothing above the transport peeks at the socket).
//
// Thread-safety: one thread receives at a time and one thread sends at a
// time (the connection's read turn and sender's token decide which);
// receiving and sending may run concurrently. Shutdown* and peer() may be
// called from any thread.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <memory>
#include <string>

#include "utils/status.h"
#include "utils/unique_fd.h"

namespace nbdr {

class TlsCredentials;
class TlsSession;

class Transport {
 public:
  // Whether a call may wait for the peer.
  enum class Wait { kBlock, kNoWait };

  virtual ~Transport() = default;

  // "127.0.0.1:40312": who is on the other end (for logs).
  virtual const std::string& peer() const = 0;

  // Receives at most cap bytes into dst. kBlock waits for at least one
  // byte, bounded by the receive timeout (then -1 with EAGAIN); kNoWait
  // returns -1 with EAGAIN when nothing is there. 0 at the end of the
  // stream; -1 with errno on failure (EINTR included: retry).
  virtual ssize_t Recv(void* dst, size_t cap, Wait wait) = 0;
  // Sends what it can of iov[0..n), as one gather write. kBlock waits for
  // room, bounded by the send timeout; kNoWait returns -1 with EAGAIN when
  // the peer takes nothing more now. Never raises SIGPIPE.
  virtual ssize_t Send(const iovec* iov, int n, Wait wait) = 0;

  // Whether Recv would find something (data, or the end of the stream)
  // within t: what a connection asks before it parks on an event loop.
  virtual bool WaitReadable(std::chrono::milliseconds t) = 0;
  // The descriptor an event loop waits on for a parked connection: it is
  // readable when Recv has something (once WaitReadable said no).
  virtual int event_fd() const = 0;
  // Whether the peer has shut its side down (its FIN arrived, or the
  // connection reset), even with bytes it sent before still unread.
  virtual bool PeerShutDown() const = 0;

  // Bounds each blocking Recv / Send (0: no bound).
  virtual void SetRecvTimeout(std::chrono::microseconds t) = 0;
  virtual void SetSendTimeout(std::chrono::microseconds t) = 0;
  // Acknowledges what arrives next at once instead of delaying the ACK
  // (TCP_QUICKACK, which the kernel drops again by itself): a client that
  // writes an option in several small pieces under Nagle waits for that
  // ACK between them (qemu's, 40 ms a piece without it).
  virtual void AckPromptly() = 0;
  // Ends receiving: a Recv waiting now or later returns 0.
  virtual void ShutdownRead() = 0;
  // Breaks the connection both ways (after a failed send).
  virtual void ShutdownBoth() = 0;

  // Starts the TLS server handshake (after NBD_OPT_STARTTLS was
  // answered) and runs it: OK once it completed (from then on Recv and
  // Send carry TLS), EAGAIN when the client was quiet for park_wait (call
  // ContinueTls once event_fd is readable), another error when it failed
  // or did not finish before deadline. Receiving and sending thread: the
  // handshake's.
  virtual Status StartTls(std::shared_ptr<const TlsCredentials> creds,
                          std::chrono::steady_clock::time_point deadline,
                          std::chrono::milliseconds park_wait) = 0;
  virtual Status ContinueTls(std::chrono::steady_clock::time_point deadline,
                             std::chrono::milliseconds park_wait) = 0;
  virtual bool tls() const = 0;
  // The client's TLS identity ("psk:ID", "x509:DN"), "" when it has none.
  virtual std::string tls_identity() const = 0;
  // "(TLS1.3)-(ECDHE-...)-(AES-256-GCM)", "" without TLS: for the log.
  virtual std::string tls_description() const = 0;

  // Receives exactly len bytes before deadline (each wait bounded by what
  // is left of it): ETIMEDOUT once it passed, ECONNRESET at the end of
  // the stream.
  Status RecvExact(void* buf, size_t len, std::chrono::steady_clock::time_point deadline);
  // Sends all of iov[0..n) before deadline (iov is consumed; each wait
  // bounded by what is left of it, so a client that reads a few bytes now
  // and then cannot stretch it): ETIMEDOUT once it passed.
  Status SendAll(iovec* iov, int n, std::chrono::steady_clock::time_point deadline);
  Status SendAll(const void* buf, size_t len, std::chrono::steady_clock::time_point deadline);
};

// TCP, plain or TLS. Sets TCP_NODELAY and keepalive (probes after
// keepalive_idle_s of silence) on the socket it owns.
class TcpTransport final : public Transport {
 public:
  TcpTransport(UniqueFd fd, int keepalive_idle_s);
  ~TcpTransport() override;

  const std::string& peer() const override { return peer_; }
  ssize_t Recv(void* dst, size_t cap, Wait wait) override;
  ssize_t Send(const iovec* iov, int n, Wait wait) override;
  bool WaitReadable(std::chrono::milliseconds t) override;
  bool PeerShutDown() const override;
  int event_fd() const override { return fd_.get(); }
  void SetRecvTimeout(std::chrono::microseconds t) override;
  void SetSendTimeout(std::chrono::microseconds t) override;
  void AckPromptly() override;
  void ShutdownRead() override;
  void ShutdownBoth() override;
  Status StartTls(std::shared_ptr<const TlsCredentials> creds,
                  std::chrono::steady_clock::time_point deadline,
                  std::chrono::milliseconds park_wait) override;
  Status ContinueTls(std::chrono::steady_clock::time_point deadline,
                     std::chrono::milliseconds park_wait) override;
  bool tls() const override { return tls_ != nullptr; }
  std::string tls_identity() const override;
  std::string tls_description() const override;

 private:
  // Keepalive probes: one every kKeepaliveIntervalS, the peer is dead
  // after kKeepaliveProbes unanswered.
  static constexpr int kKeepaliveIntervalS = 10;
  static constexpr int kKeepaliveProbes = 6;

  const UniqueFd fd_;
  const std::string peer_;
  std::unique_ptr<TlsSession> handshaking_;  // TLS started, its handshake not done
  std::unique_ptr<TlsSession> tls_;  // set once, by the handshake, before transmission
};

}  // namespace nbdr
