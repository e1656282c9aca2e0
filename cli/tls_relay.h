// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TlsRelay: plain bytes on one end of a socket pair, TLS records on the
// network socket, moved by one thread. libtirpc's client speaks to a
// plain descriptor only, so nbd-cli's control RPC over TLS (RFC 9289)
// goes through a relay: the RPC client gets local_fd(), the relay keeps
// the GnuTLS session. Control calls are few and small; the data path
// (kernel mapping) never uses a relay.
// The relay ends when either side closes; the destructor joins it.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "cli/client_tls.h"
#include "utils/mutex.h"
#include "utils/status.h"
#include "utils/thread_annotations.h"
#include "utils/unique_fd.h"

namespace nbdr {

class TlsRelay {
 public:
  // Takes the network socket and the session that finished its handshake on it.
  static Expected<std::unique_ptr<TlsRelay>> Start(UniqueFd net,
                                                   std::unique_ptr<ClientTlsSession> session);
  ~TlsRelay();
  TlsRelay(const TlsRelay&) = delete;
  TlsRelay& operator=(const TlsRelay&) = delete;

  // The plain end, for the caller to own (closing it ends the relay).
  UniqueFd TakeLocalFd() { return std::move(local_); }
  // Why the runner's side ended ("" while it has not, or ended cleanly):
  // under TLS 1.3 a server refuses a client's certificate only after the
  // client's handshake is done, so this is where the refusal shows.
  std::string Failure() const EXCLUDES(mu_);

 private:
  TlsRelay() = default;
  void Run();
  // One pass of moving bytes; false when the relay is over.
  bool ToNetwork();
  bool FromNetwork();

  void SetFailure(std::string why) EXCLUDES(mu_);

  UniqueFd net_, local_, inner_;  // inner_: the relay's end of the pair
  std::unique_ptr<ClientTlsSession> session_;
  std::thread thread_;
  mutable Mutex mu_;
  std::string failure_ GUARDED_BY(mu_);
};

}  // namespace nbdr
