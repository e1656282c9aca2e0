// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: the small text parsers every command line, config file and
// RPC argument goes through: sizes, types and keys, export names, host
// ids, TLS identities and lists, host:port, /dev/nbdN, UTF-8, and config
// file text. The first byte picks the parser; the rest is the text. Where
// a parser has an inverse, what it accepts must come back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "utils/config_file.h"
#include "utils/names.h"
#include "utils/net.h"
#include "utils/size_parse.h"

namespace {

using namespace nbdr;

void CheckSize(std::string_view text) {
  auto v = ParseSize(text);
  (void)ParseBackstoreSize(text);
  if (v.ok()) {
    (void)FormatSize(*v);  // for people (rounded): only must not crash
    auto plain = ParseSize(std::to_string(*v));  // the same size in bytes
    if (!plain.ok() || *plain != *v) abort();
  }
}

void CheckExportName(std::string_view text) {
  auto e = ParseExportName(text);
  if (!e.ok()) return;
  if (!ValidateType(e->type).ok() || !ValidateKey(e->key).ok()) abort();
  if (MakeExportName(e->type, e->key) != text) abort();
}

void CheckHostPort(std::string_view text) {
  auto hp = ParseHostPort(text, 24110);
  if (!hp.ok()) return;
  if (hp->host.empty()) abort();  // an empty host is refused
}

void CheckDevice(std::string_view text) {
  const int n = ParseNbdDevice(text);
  if (n >= 0 && "/dev/nbd" + std::to_string(n) != text) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 9) {
    case 0: CheckSize(text); break;
    case 1: (void)ValidateType(text), (void)ValidateKey(text); break;
    case 2: (void)ValidateNewKey("file", text); break;
    case 3: CheckExportName(text); break;
    case 4: (void)ValidateHostId(text), (void)ValidateTlsIdentity(text); break;
    case 5: (void)ParseTlsIdentityList(text); break;
    case 6: CheckHostPort(text); break;
    case 7: CheckDevice(text), (void)IsValidUtf8(text); break;
    default: (void)ParseConfigText(text, "fuzz.conf"); break;
  }
  return 0;
}
