// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: the transmission phase (request header decoder, request
// validation, payload handling and replies, runner/transmission_engine.h)
// on file/a.img or file/ro.img. The first input byte chooses what the
// handshake agreed (export, structured replies, base:allocation, whether
// the client asked for block sizes); the rest is the client's request
// stream. Replies are read and dropped.
#include <cstddef>
#include <cstdint>

#include "fuzz_export.h"
#include "runner/transmission_engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nbdr;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  fuzz::FuzzExport& f = fuzz::SharedExport();
  const char* export_name = (mode & 1) ? "file/ro.img" : "file/a.img";
  auto open = f.registry->OpenForServing(export_name, "");
  if (!open.ok()) abort();
  NegotiatedExport e;
  e.open = *open;
  e.name = export_name;
  e.size = (*open)->info().size;
  e.caps = (*open)->info().caps;
  e.readonly = (*open)->record().readonly;
  e.min_block = 512;
  e.max_payload = 1 << 20;
  e.structured = mode & 2;
  e.base_allocation = e.structured && (mode & 4);
  e.client_knows_block_size = mode & 8;
  fuzz::Pair pair = fuzz::MakePair();
  fuzz::ClientFeeder feeder(std::move(pair.client), data + 1, size - 1);
  std::string name = "conn#fuzz " + e.name;
  {
    TransmissionEngine engine(pair.runner.get(), std::move(e), f.server.get(), &name);
    engine.Run();
  }
  pair.runner.reset();
  return 0;
}
