// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The client half of the NBD fixed newstyle handshake, as nbd-cli does it
// before handing sockets to the kernel: NBD_OPT_GO only, and never
// structured replies (the kernel speaks simple replies only).
// Functions are thread-safe; the socket belongs to the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/client_tls.h"
#include "utils/unique_fd.h"

#include "utils/status.h"

namespace nbdr {

struct NbdExportInfo {
  uint64_t size = 0;
  uint16_t transmission_flags = 0;
  uint32_t min_block = 0, preferred_block = 0, max_payload = 0;  // 0: not sent
};

// Runs the handshake for export_name on a connected socket. On success the
// socket is in the transmission phase. With tls enabled, the handshake
// starts with NBD_OPT_STARTTLS and leaves the socket in kernel TLS
// (client_tls.h); server_name is what the server's certificate must name.
Expected<NbdExportInfo> NbdClientHandshake(int fd, const std::string& export_name,
                                           int timeout_s = 30,
                                           const ClientTlsCredentials* tls = nullptr,
                                           const std::string& server_name = "");

// Opens `count` connections to host:port and runs the handshake for
// export_name on each; all must agree. The sockets are in the
// transmission phase, ready for the kernel.
struct ExportSockets {
  NbdExportInfo info;
  std::vector<UniqueFd> fds;
};
Expected<ExportSockets> ConnectExportSockets(const std::string& host, uint16_t port,
                                             const std::string& export_name, int count,
                                             const ClientTlsCredentials& tls);

}  // namespace nbdr
