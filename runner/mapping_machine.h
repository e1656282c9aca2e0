// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The kernel-mapping state machine of one backstore, as pure transitions
// on its record:
//
//   created --Begin--> mapping --Confirm--> mapped --ConnectionLost--> dead
//      ^                  |                   |                         |
//      +----Expire--------+                   |   Confirm (same client  |
//      +----Unmap---------+-------------------+   and device) <---------+
//      +----Unmap-----------------------------------------------------+
//
// A runner restart turns mapping and mapped into dead (Restart). Begin
// hands out a token; Confirm of a mapping needs it, so a map that
// outlived its timeout cannot confirm a later client's, and Unmap may be
// limited to one map's token or one client's device.
//
// The functions only decide and change the record; BackstoreRegistry
// locks, persists and logs. Thread-compatible (plain values).
#pragma once

#include <cstdint>
#include <string>

#include "runner/backstore.h"
#include "utils/status.h"

namespace nbdr {

// What the registry keeps about a map in progress besides the record.
struct MapTicket {
  int64_t since = 0;   // monotonic seconds when the map began (status mapping)
  uint64_t token = 0;  // Begin's token, until the unmap (0 after a restart)
};

// What an Unmap may clear: with token, only the mapping that token began
// (mapping, mapped or dead); else with device, only a mapping on that
// device of that client (or of no recorded client); with neither, any.
struct UnmapOnly {
  std::string device;
  std::string client;
  uint64_t token = 0;
};

namespace mapping {

// created -> mapping by client, with token; EBUSY in any other state.
Status Begin(BackstoreRecord* r, MapTicket* t, const std::string& client, int64_t now,
             uint64_t token);
// mapping (with its token) or dead (the same client on the same device:
// a reconnect) -> mapped on device; EBUSY for another map's or client's,
// EINVAL when nothing is being mapped. map_time is set to now_iso.
Status Confirm(BackstoreRecord* r, const MapTicket& t, const std::string& device,
               const std::string& client, uint64_t token, const std::string& now_iso);
// Any mapping state -> created, within only's limits (EBUSY beyond them);
// EINVAL when not mapped.
Status Unmap(BackstoreRecord* r, MapTicket* t, const UnmapOnly& only);
// mapped -> dead when its last NBD connection dropped without a
// disconnect; true when it changed.
bool ConnectionLost(BackstoreRecord* r);
// mapping -> created once timeout_s passed since Begin (the caller checks
// that no NBD connection serves it); true when it changed.
bool Expire(BackstoreRecord* r, MapTicket* t, int64_t now, int timeout_s);
// After a restart: mapping or mapped -> dead; true when it changed.
bool Restart(BackstoreRecord* r);

// "/dev/nbd0 of host-a", for messages.
std::string WhereMapped(const BackstoreRecord& r);

}  // namespace mapping
}  // namespace nbdr
