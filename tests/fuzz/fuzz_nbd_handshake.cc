// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: the runner's NBD handshake (option parser and state
// machine, runner/nbd_handshake.h). The input is everything a client
// sends, from its flags on; the runner's replies are read and dropped.
// A handshake that ends in transmission closes its export at once.
#include <cstddef>
#include <cstdint>

#include "fuzz_export.h"
#include "runner/nbd_handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nbdr;
  fuzz::FuzzExport& f = fuzz::SharedExport();
  fuzz::Pair pair = fuzz::MakePair();
  fuzz::ClientFeeder feeder(std::move(pair.client), data, size);
  std::string name = "conn#fuzz";
  {
    std::optional<NegotiatedExport> e = NbdHandshake(pair.runner.get(), f.server.get(), &name).Run();
  }
  pair.runner.reset();  // the client's reader sees the end
  return 0;
}
