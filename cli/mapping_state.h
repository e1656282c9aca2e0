// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// MappingState: the client host's record of the mappings nbd-cli made
// (device, export, runner, connection options), kept as JSON so that
// nbd-clid can reconnect them after a runner restart or a lost link. After
// a reboot of this host the devices hold nothing: nbd-clid forgets those
// records, and 'unmap KEY' clears the runner's. Path:
// $NBD_CLI_STATE, default /var/lib/nbd-cli/mappings.json. Written
// atomically (temp file, fsync, rename) under an flock, so concurrent
// nbd-cli runs do not lose each other's entries. Mode 0600: the record of
// a TLS mapping holds its PSK key (hex), so nbd-clid reconnects with the
// credentials the mapping was made with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/client_tls.h"
#include "utils/status.h"

namespace nbdr {

struct MappingRecord {
  std::string device;  // "/dev/nbd0"
  std::string type;
  std::string key;
  std::string runner;  // "host:port" of the control RPC
  int connections = 1;
  uint64_t timeout_s = 30;
  uint64_t dead_timeout_s = 0;
  bool readonly = false;
  std::string map_time;
  std::string host_id;  // the identity the runner recorded the mapping under ("" in old records)
  ClientTlsCredentials tls;  // what nbd-clid reconnects with (none: plain NBD)
  // High availability: the backstore's runner set as this host reaches it
  // (empty: runner only), and the runner serving the device now when
  // nbd-clid moved it off runner ("" while runner serves it; runner stays
  // the one the device's backend identifier names).
  std::vector<std::string> runners;
  std::string serving;
  // Runners the device moved away from whose record of the mapping is
  // still to be cleared (they did not answer then): nbd-clid clears each
  // once it answers.
  std::vector<std::string> left;

  const std::string& ServingRunner() const { return serving.empty() ? runner : serving; }
};

std::string MappingStatePath();
// Adds (or replaces, by device) one record.
Status RecordMapping(const MappingRecord& m);
// Removes m's record only if the device still holds that same mapping (a
// newer map may have reused the device meanwhile).
Status ForgetMapping(const MappingRecord& m);
Expected<std::vector<MappingRecord>> LoadMappings();
// This host's record of device when it maps type/key; none when it has no
// such record; an error when the file cannot be read.
Expected<std::optional<MappingRecord>> FindMapping(const std::string& device,
                                                   const std::string& type,
                                                   const std::string& key);

}  // namespace nbdr
