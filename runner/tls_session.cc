// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TLS on a connection's socket with GnuTLS; see tls_session.h.
#include "runner/tls_session.h"

#include <gnutls/x509.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "utils/net.h"

namespace nbdr {

namespace {

// GnuTLS's messages end in ". " or "."; ours go on after them.
std::string Sentence(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '.' || s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

// The verified certificate's subject, "CN=client1,O=Example".
std::string PeerDistinguishedName(gnutls_session_t session) {
  unsigned int count = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
  if (!chain || count == 0) return "";
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) < 0) return "";
  std::string dn;
  gnutls_datum_t text{};
  if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0 &&
      gnutls_x509_crt_get_dn3(crt, &text, 0) >= 0) {
    dn.assign(reinterpret_cast<const char*>(text.data), text.size);
    gnutls_free(text.data);
  }
  gnutls_x509_crt_deinit(crt);
  return dn;
}

}  // namespace

TlsSession::TlsSession(int fd, std::shared_ptr<const TlsCredentials> creds)
    : fd_(fd), creds_(std::move(creds)) {}

TlsSession::~TlsSession() {
  if (session_) gnutls_deinit(session_);
}

Expected<std::unique_ptr<TlsSession>> TlsSession::Accept(
    int fd, std::shared_ptr<const TlsCredentials> creds,
    std::chrono::steady_clock::time_point deadline) {
  auto s = Begin(fd, std::move(creds));
  if (!s) return s.status();
  for (;;) {
    Status st = (*s)->ContinueHandshake(deadline, std::chrono::hours(24));
    if (st.ok()) return s;
    if (st.code() != EAGAIN) return st;
  }
}

Expected<std::unique_ptr<TlsSession>> TlsSession::Begin(
    int fd, std::shared_ptr<const TlsCredentials> creds) {
  std::unique_ptr<TlsSession> s(new TlsSession(fd, std::move(creds)));
  // No session tickets and no KeyUpdate of our own: nothing to resume, and
  // no post-handshake message a client must expect. A kernel TLS client
  // (nbd-cli map) fails every read after one (Linux 6.1 cannot rekey). A
  // KeyUpdate the client asks for is still answered.
  if (int rc = gnutls_init(&s->session_,
                           GNUTLS_SERVER | GNUTLS_NO_TICKETS | GNUTLS_NO_AUTO_REKEY);
      rc < 0)
    return Status::Error(ENOMEM, std::string("TLS session: ") + gnutls_strerror(rc));
  if (Status st = s->creds_->ConfigureSession(s->session_); !st.ok()) return st;
  gnutls_transport_set_ptr(s->session_, s.get());
  gnutls_transport_set_pull_function(s->session_, Pull);
  gnutls_transport_set_pull_timeout_function(s->session_, PullTimeout);
  gnutls_transport_set_vec_push_function(s->session_, Push);
  gnutls_handshake_set_timeout(s->session_, 0);  // our deadline bounds it
  return s;
}

Status TlsSession::ContinueHandshake(std::chrono::steady_clock::time_point deadline,
                                     std::chrono::milliseconds park_wait) {
  using std::chrono::microseconds;
  for (;;) {
    auto left = std::chrono::duration_cast<microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "TLS handshake not finished in time");
    nbdr::SetSendTimeout(fd_, left);  // the handshake's few writes block, within the deadline
    int rc = gnutls_handshake(session_);  // Pull never waits
    if (rc == GNUTLS_E_SUCCESS) {
      handshaken_ = true;
      LearnPeer();
      return Status();
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
      const bool wait_for_room = gnutls_record_get_direction(session_) == 1;
      const auto wait = std::min(left, std::chrono::duration_cast<microseconds>(park_wait));
      if (WaitFor(wait_for_room ? POLLOUT : POLLIN, wait.count()) == 0 && wait < left &&
          !wait_for_room)
        return Status::Error(EAGAIN, "waiting for the client");
      continue;
    }
    if (!gnutls_error_is_fatal(rc)) continue;  // a warning alert
    std::string why = Sentence(gnutls_strerror(rc));
    if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED)
      why += std::string(" (") + gnutls_alert_get_name(gnutls_alert_get(session_)) + ")";
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
      gnutls_datum_t text{};
      unsigned status = gnutls_session_get_verify_cert_status(session_);
      if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
        why += ": ";
        why += Sentence(reinterpret_cast<const char*>(text.data));
        gnutls_free(text.data);
      }
    }
    return Status::Error(EPROTO, "TLS handshake failed: " + why);
  }
}

void TlsSession::LearnPeer() {
  if (char* desc = gnutls_session_get_desc(session_)) {
    description_ = desc;
    gnutls_free(desc);
  }
  // TLS 1.3 with a PSK leaves the key exchange (ECDHE-PSK) out of it.
  const char* kx = gnutls_kx_get_name(gnutls_kx_get(session_));
  if (gnutls_auth_get_type(session_) == GNUTLS_CRD_PSK && kx) description_ += std::string(" ") + kx;
  if (gnutls_auth_get_type(session_) == GNUTLS_CRD_PSK) {
    gnutls_datum_t name{};
    if (gnutls_psk_server_get_username2(session_, &name) >= 0 && name.data) {
      identity_ = "psk:";
      identity_.append(reinterpret_cast<const char*>(name.data), name.size);
    }
  } else if (creds_->options().verify_peer) {
    std::string dn = PeerDistinguishedName(session_);
    if (!dn.empty()) identity_ = "x509:" + dn;
  }
}

int TlsSession::WaitFor(short events, int64_t timeout_us) const {
  pollfd p{fd_, events, 0};
  int timeout_ms = timeout_us <= 0 ? -1 : static_cast<int>(std::max<int64_t>(1, (timeout_us + 999) / 1000));
  return poll(&p, 1, timeout_ms);
}

bool TlsSession::Pending() {
  MutexLock l(&mu_);
  return gnutls_record_check_pending(session_) > 0;
}

ssize_t TlsSession::Recv(void* dst, size_t cap, bool nowait) {
  for (;;) {
    ssize_t n;
    size_t pending;
    {
      MutexLock l(&mu_);
      n = gnutls_record_recv(session_, dst, cap);  // Pull never waits
      pending = n == GNUTLS_E_AGAIN ? gnutls_record_check_pending(session_) : 0;
    }
    if (pending > 0) continue;  // AGAIN after a post-handshake message, with data behind it
    if (n >= 0) return n;
    switch (n) {
      case GNUTLS_E_AGAIN: {  // nothing (more) there yet
        if (nowait) {
          errno = EAGAIN;
          return -1;
        }
        int ready = WaitFor(POLLIN, recv_timeout_us_);
        if (ready == 0) {  // the receive timeout
          errno = EAGAIN;
          return -1;
        }
        if (ready < 0 && errno != EINTR) return -1;
        continue;
      }
      case GNUTLS_E_INTERRUPTED:
        errno = EINTR;
        return -1;
      case GNUTLS_E_PREMATURE_TERMINATION:  // the client closed the socket without a TLS close
        return 0;
      default:
        if (!gnutls_error_is_fatal(static_cast<int>(n))) continue;  // e.g. a warning alert
        errno = EPROTO;
        return -1;
    }
  }
}

ssize_t TlsSession::Send(const iovec* iov, int n, bool nowait) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  MutexLock l(&mu_);
  size_t acked = 0;
  if (!WriteQueued(nowait, &acked, &l)) return -1;
  if (out_written_ < out_queued_) {  // the socket takes nothing more now
    if (acked > 0) return static_cast<ssize_t>(acked);
    errno = EAGAIN;
    return -1;
  }
  if (acked >= total) return static_cast<ssize_t>(acked);
  if (!Encrypt(iov, n, acked)) return -1;
  if (!WriteQueued(nowait, &acked, &l)) return acked > 0 ? static_cast<ssize_t>(acked) : -1;
  if (acked > 0) return static_cast<ssize_t>(acked);
  errno = EAGAIN;
  return -1;
}

bool TlsSession::SealRecords(const uint8_t* p, size_t len) {
  while (len > 0) {
    // Push only queues: a short count is a smaller record than asked for
    // (a client's record size limit), an error GnuTLS's own.
    ssize_t rc = gnutls_record_send(session_, p, len);
    if (rc <= 0) {
      errno = EPROTO;
      return false;
    }
    records_.push_back({out_queued_, static_cast<size_t>(rc)});
    p += rc;
    len -= static_cast<size_t>(rc);
  }
  return true;
}

bool TlsSession::Encrypt(const iovec* iov, int n, size_t skip) {
  gather_.clear();
  // Small pieces (a reply's header, small payloads) are gathered into
  // full records, so a 4 KiB read costs the client one record, not two;
  // a piece that fills records by itself is sealed where it lies.
  const size_t record = std::min(kRecordPlain, std::max<size_t>(512, gnutls_record_get_max_size(session_)));
  size_t budget = kMaxStagedPlain;
  bool ok = true;
  for (int i = 0; i < n && ok && budget > 0; i++) {
    const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t len = iov[i].iov_len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    p += skip;
    len -= skip;
    skip = 0;
    while (ok && len > 0 && budget > 0) {
      size_t take = std::min(len, budget);
      if (gather_.empty() && take >= record) {
        take = record;
        ok = SealRecords(p, take);
      } else {
        take = std::min(take, record - gather_.size());
        gather_.insert(gather_.end(), p, p + take);
        if (gather_.size() == record) {
          ok = SealRecords(gather_.data(), gather_.size());
          gather_.clear();
        }
      }
      p += take;
      len -= take;
      budget -= take;
    }
  }
  if (ok && !gather_.empty()) ok = SealRecords(gather_.data(), gather_.size());
  return ok;
}

bool TlsSession::WriteQueued(bool nowait, size_t* acked, MutexLock* lock) {
  bool ok = true;
  while (ok && out_written_ < out_queued_) {
    if (nowait) {  // never waits: under the lock
      ssize_t w = send(fd_, out_.data() + out_head_, out_.size() - out_head_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w < 0) return false;
      out_head_ += static_cast<size_t>(w);
      out_written_ += static_cast<uint64_t>(w);
      continue;
    }
    // Waits: the queued bytes are taken out and written with the lock
    // released, so the receiver goes on (and may queue more behind them).
    std::vector<uint8_t> chunk;
    chunk.swap(out_);
    size_t head = out_head_, sent = 0;
    out_head_ = 0;
    lock->Unlock();
    while (head + sent < chunk.size()) {
      ssize_t w = send(fd_, chunk.data() + head + sent, chunk.size() - head - sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) errno = ETIMEDOUT;  // SO_SNDTIMEO
        ok = false;
        break;
      }
      sent += static_cast<size_t>(w);
    }
    lock->Relock();
    out_written_ += sent;
  }
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  }
  while (!records_.empty() && records_.front().end <= out_written_) {
    *acked += records_.front().plain_len;
    records_.pop_front();
  }
  return ok;
}

ssize_t TlsSession::Pull(gnutls_transport_ptr_t self, void* buf, size_t len) {
  auto* s = static_cast<TlsSession*>(self);
  ssize_t n = recv(s->fd_, buf, len, MSG_DONTWAIT);
  if (n < 0) gnutls_transport_set_errno(s->session_, errno == EWOULDBLOCK ? EAGAIN : errno);
  return n;
}

int TlsSession::PullTimeout(gnutls_transport_ptr_t self, unsigned int ms) {
  auto* s = static_cast<TlsSession*>(self);
  return s->WaitFor(POLLIN, ms == GNUTLS_INDEFINITE_TIMEOUT ? 0 : static_cast<int64_t>(ms) * 1000);
}

// After the handshake GnuTLS calls this only with mu_ held (from inside a
// record call): the bytes are queued, in order, for WriteQueued.
ssize_t TlsSession::Push(gnutls_transport_ptr_t self, const giovec_t* iov, int n) {
  auto* s = static_cast<TlsSession*>(self);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  if (s->handshaken_) {
    for (int i = 0; i < n; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      s->out_.insert(s->out_.end(), p, p + iov[i].iov_len);
    }
    s->out_queued_ += total;
    return static_cast<ssize_t>(total);
  }
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(reinterpret_cast<const iovec*>(iov));
  msg.msg_iovlen = static_cast<size_t>(n);
  ssize_t w = sendmsg(s->fd_, &msg, MSG_NOSIGNAL);
  if (w < 0) gnutls_transport_set_errno(s->session_, errno == EWOULDBLOCK ? EAGAIN : errno);
  return w;
}

}  // namespace nbdr
