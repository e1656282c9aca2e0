// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: nbd-cli's side of the NBD handshake (cli/
// nbd_client_handshake.h), which decodes what a runner answers before
// the kernel gets the socket. The input is everything the server sends;
// what the client sends is read and dropped.
#include <cstddef>
#include <cstdint>

#include "cli/nbd_client_handshake.h"
#include "fuzz_export.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nbdr;
  auto [client, server] = fuzz::RawPair();
  fuzz::ClientFeeder feeder(std::move(server), data, size);
  (void)NbdClientHandshake(client.get(), "file/a.img", 1);
  client.reset();
  return 0;
}
