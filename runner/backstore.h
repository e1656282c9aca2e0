// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// BackstoreRecord: what the runner knows and persists about one backstore
// (one entry of saveconfig.json). A plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rpc/backstore_status.h"
#include "utils/status.h"

namespace nbdr {

struct BackstoreRecord {
  std::string type;  // handler name: "file", "gluster", "rbd"
  std::string key;   // handler-specific name, e.g. "disks/a.img"
  uint64_t size = 0;
  uint32_t block_size = 512;
  bool readonly = false;
  bool prealloc = false;
  BackstoreStatus status = NBDR_STATUS_CREATED;
  std::string device;       // "/dev/nbd0" while mapped
  std::string client;       // the host that mapped it (nbd-cli's host id), while not created
  std::string owner;        // the identity that mapped it (mapping_machine.h), while not created
  std::string map_time;     // ISO 8601 UTC, empty when never mapped
  std::string create_time;  // ISO 8601 UTC
  std::string extras_json = "{}";  // handler extras, a JSON object
  // TLS identities that may open it over NBD ("psk:ID", "x509:DN"); empty:
  // any client (that passed TLS, where the runner requires it).
  std::vector<std::string> tls_allow;
  // High availability: the runners that serve it ("HOST:PORT" each, as
  // the nbd-cli that registered it named them; this runner among them),
  // the same on each of them. Empty: this runner only.
  std::vector<std::string> runners;
  // A rollback to this snapshot began and did not complete (it failed, or
  // the runner died meanwhile): the object may hold parts of both, and is
  // not served until a rollback completes. Empty: none.
  std::string rolling_back;
  // Not saved: set only on the record of a snapshot being served, the
  // snapshot's name (its export is TYPE/KEY@NAME, always read-only).
  std::string snapshot;

  std::string ExportName() const { return type + "/" + HandlerKey(); }
  // The key the handler opens: KEY, or KEY@NAME for a snapshot.
  std::string HandlerKey() const { return snapshot.empty() ? key : key + "@" + snapshot; }
};

// A runner set as it may be stored: at most NBDR_MAX_RUNNERS runners, each
// a valid "HOST:PORT", none twice.
Status ValidateRunnerSet(const std::vector<std::string>& runners);

// The current time as ISO 8601 UTC ("2026-11-22T16:10:20Z").
std::string NowIso8601();

}  // namespace nbdr
