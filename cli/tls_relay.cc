// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The relay thread; see tls_relay.h.
#include "cli/tls_relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "utils/net.h"

namespace nbdr {

namespace {
constexpr size_t kChunk = 16 * 1024;  // one TLS record's plaintext
}  // namespace

Expected<std::unique_ptr<TlsRelay>> TlsRelay::Start(UniqueFd net,
                                                    std::unique_ptr<ClientTlsSession> session) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
    return PosixError("socketpair for the TLS relay");
  std::unique_ptr<TlsRelay> r(new TlsRelay());
  r->net_ = std::move(net);
  r->local_ = UniqueFd(pair[0]);
  r->inner_ = UniqueFd(pair[1]);
  r->session_ = std::move(session);
  SetRecvTimeout(r->net_.get(), std::chrono::seconds(0));
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

TlsRelay::~TlsRelay() {
  // The caller closed its end (or never took it): the thread sees the end
  // of the pair; shut the network side too in case it waits there.
  local_.reset();
  shutdown(inner_.get(), SHUT_RDWR);
  shutdown(net_.get(), SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
}

bool TlsRelay::ToNetwork() {
  char buf[kChunk];
  ssize_t n = read(inner_.get(), buf, sizeof buf);
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) {
    gnutls_bye(session_->get(), GNUTLS_SHUT_WR);
    return false;
  }
  for (ssize_t done = 0; done < n;) {
    ssize_t w = gnutls_record_send(session_->get(), buf + done, static_cast<size_t>(n - done));
    if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) continue;
    if (w < 0) {
      SetFailure(std::string("sending failed: ") + gnutls_strerror(static_cast<int>(w)));
      return false;
    }
    done += w;
  }
  return true;
}

std::string TlsRelay::Failure() const {
  MutexLock l(&mu_);
  return failure_;
}

void TlsRelay::SetFailure(std::string why) {
  MutexLock l(&mu_);
  failure_ = std::move(why);
}

bool TlsRelay::FromNetwork() {
  char buf[kChunk];
  ssize_t n = gnutls_record_recv(session_->get(), buf, sizeof buf);
  if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) return true;
  if (n < 0 && !gnutls_error_is_fatal(static_cast<int>(n))) return true;
  if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    const char* alert = gnutls_alert_get_name(gnutls_alert_get(session_->get()));
    SetFailure(std::string("its TLS alert: ") + (alert ? alert : "unknown"));
  } else if (n < 0) {
    SetFailure(gnutls_strerror(static_cast<int>(n)));
  }
  if (n <= 0) return false;  // the runner closed, or the session failed
  return WriteAll(inner_.get(), buf, static_cast<size_t>(n)).ok();
}

void TlsRelay::Run() {
  for (;;) {
    // Records GnuTLS already holds are not seen by poll().
    if (gnutls_record_check_pending(session_->get()) > 0) {
      if (!FromNetwork()) break;
      continue;
    }
    pollfd p[2] = {{inner_.get(), POLLIN, 0}, {net_.get(), POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents && !ToNetwork()) break;
    if (p[1].revents && !FromNetwork()) break;
  }
  // Whoever reads the plain end now sees its end.
  shutdown(inner_.get(), SHUT_RDWR);
}

}  // namespace nbdr
