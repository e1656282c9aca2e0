// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// A backstore's lifecycle state and its text; see backstore_status.h.
#include "rpc/backstore_status.h"

namespace nbdr {

namespace {
constexpr struct {
  BackstoreStatus status;
  const char* name;
} kNames[] = {{NBDR_STATUS_CREATED, "created"},
              {NBDR_STATUS_MAPPING, "mapping"},
              {NBDR_STATUS_MAPPED, "mapped"},
              {NBDR_STATUS_DEAD, "dead"}};
}  // namespace

const char* StatusName(BackstoreStatus status) {
  for (const auto& n : kNames)
    if (n.status == status) return n.name;
  return "unknown";
}

std::optional<BackstoreStatus> ParseStatus(std::string_view text) {
  for (const auto& n : kNames)
    if (text == n.name) return n.status;
  return std::nullopt;
}

std::string StatusNames() {
  std::string out;
  for (const auto& n : kNames) out += (out.empty() ? "" : ", ") + std::string(n.name);
  return out;
}

}  // namespace nbdr
