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
  std::unique_ptr<TlsSession> s(new TlsSession(fd, std::move(creds)));
  // No session tickets: nothing to resume, and no post-handshake message
  // from us that a client (or a kernel reading the socket) must expect.
  if (int rc = gnutls_init(&s->session_, GNUTLS_SERVER | GNUTLS_NO_TICKETS); rc < 0)
    return Status::Error(ENOMEM, std::string("TLS session: ") + gnutls_strerror(rc));
  if (Status st = s->creds_->ConfigureSession(s->session_); !st.ok()) return st;
  gnutls_transport_set_ptr(s->session_, s.get());
  gnutls_transport_set_pull_function(s->session_, Pull);
  gnutls_transport_set_pull_timeout_function(s->session_, PullTimeout);
  gnutls_transport_set_vec_push_function(s->session_, Push);
  gnutls_handshake_set_timeout(s->session_, 0);  // our deadline bounds it
  if (Status st = s->Handshake(deadline); !st.ok()) return st;
  s->LearnPeer();
  return s;
}

Status TlsSession::Handshake(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "TLS handshake not finished in time");
    SetRecvTimeout(fd_, left);
    SetSendTimeout(fd_, left);
    int rc = gnutls_handshake(session_);
    if (rc == GNUTLS_E_SUCCESS) return Status();
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) continue;
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

ssize_t TlsSession::Recv(void* dst, size_t cap, bool nowait) {
  recv_nowait_ = nowait;
  for (;;) {
    ssize_t n = gnutls_record_recv(session_, dst, cap);
    if (n >= 0) return n;
    switch (n) {
      case GNUTLS_E_AGAIN:  // nothing there (kNoWait), or the receive timeout
        errno = EAGAIN;
        return -1;
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
  size_t acked = 0;
  if (!WriteStaged(nowait, &acked)) return -1;
  if (staged_written_ < staged_.size()) {  // the socket takes nothing more now
    if (acked > 0) return static_cast<ssize_t>(acked);
    errno = EAGAIN;
    return -1;
  }
  if (acked >= total) return static_cast<ssize_t>(acked);
  if (!Encrypt(iov, n, acked)) return -1;
  if (!WriteStaged(nowait, &acked)) return acked > 0 ? static_cast<ssize_t>(acked) : -1;
  if (acked > 0) return static_cast<ssize_t>(acked);
  errno = EAGAIN;
  return -1;
}

bool TlsSession::SealRecord(const uint8_t* p, size_t len) {
  ssize_t rc = gnutls_record_send(session_, p, len);
  if (rc != static_cast<ssize_t>(len)) {  // Push never fails while staging: GnuTLS's own error
    errno = EPROTO;
    return false;
  }
  staged_records_.push_back({staged_.size(), len});
  return true;
}

bool TlsSession::Encrypt(const iovec* iov, int n, size_t skip) {
  staged_.clear();
  staged_written_ = 0;
  staged_records_.clear();
  gather_.clear();
  staging_thread_.store(std::this_thread::get_id());
  // Small pieces (a reply's header, small payloads) are gathered into
  // full records, so a 4 KiB read costs the client one record, not two;
  // a piece that fills records by itself is sealed where it lies.
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
      if (gather_.empty() && take >= kRecordPlain) {
        ok = SealRecord(p, kRecordPlain);
        take = kRecordPlain;
      } else {
        take = std::min(take, kRecordPlain - gather_.size());
        gather_.insert(gather_.end(), p, p + take);
        if (gather_.size() == kRecordPlain) {
          ok = SealRecord(gather_.data(), gather_.size());
          gather_.clear();
        }
      }
      p += take;
      len -= take;
      budget -= take;
    }
  }
  if (ok && !gather_.empty()) ok = SealRecord(gather_.data(), gather_.size());
  staging_thread_.store(std::thread::id());
  return ok;
}

bool TlsSession::WriteStaged(bool nowait, size_t* acked) {
  while (staged_written_ < staged_.size()) {
    ssize_t w = send(fd_, staged_.data() + staged_written_, staged_.size() - staged_written_,
                     MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (nowait && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (errno == EAGAIN || errno == EWOULDBLOCK) errno = ETIMEDOUT;  // the send timeout
      return false;
    }
    staged_written_ += static_cast<size_t>(w);
  }
  while (!staged_records_.empty() && staged_records_.front().cipher_end <= staged_written_) {
    *acked += staged_records_.front().plain_len;
    staged_records_.pop_front();
  }
  return true;
}

ssize_t TlsSession::Pull(gnutls_transport_ptr_t self, void* buf, size_t len) {
  auto* s = static_cast<TlsSession*>(self);
  ssize_t n = recv(s->fd_, buf, len, s->recv_nowait_ ? MSG_DONTWAIT : 0);
  if (n < 0) gnutls_transport_set_errno(s->session_, errno == EWOULDBLOCK ? EAGAIN : errno);
  return n;
}

int TlsSession::PullTimeout(gnutls_transport_ptr_t self, unsigned int ms) {
  auto* s = static_cast<TlsSession*>(self);
  pollfd p{s->fd_, POLLIN, 0};
  int timeout = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : static_cast<int>(ms);
  return poll(&p, 1, timeout);
}

ssize_t TlsSession::Push(gnutls_transport_ptr_t self, const giovec_t* iov, int n) {
  auto* s = static_cast<TlsSession*>(self);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  if (s->staging_thread_.load() == std::this_thread::get_id()) {
    // The record's end is where Encrypt records it: after this push.
    for (int i = 0; i < n; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      s->staged_.insert(s->staged_.end(), p, p + iov[i].iov_len);
    }
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
