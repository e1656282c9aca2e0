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
// A mapping belongs to the identity that began it (the record's owner,
// proved by the transport: "psk:ID", "x509:DN", "uid:0"; "" for a caller
// that proved nothing): only that identity or an admin may confirm,
// revive or unmap it (EACCES). The host name a caller sends is kept for
// messages and to tell its mappings apart, never to decide.
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

// Who asks for a mapping change.
struct MapCaller {
  std::string host;      // the host the caller names (nbd-cli's host identity)
  std::string identity;  // what the transport proved; "" when nothing
  bool admin = false;    // may act on every identity's mappings
  // The address the call came from ("" on the admin socket): where the
  // mapping's kernel connections come from (BackstoreRegistry::IsMappingPeer).
  std::string address;
};

// What an Unmap may clear: with token, only the mapping that token began
// (mapping, mapped or dead); else with device, only a mapping on that
// device of the caller's host (or of no recorded host); with neither, any.
struct UnmapOnly {
  std::string device;
  uint64_t token = 0;
};

namespace mapping {

// created -> mapping by caller (its host and identity recorded), with
// token; EBUSY in any other state.
Status Begin(BackstoreRecord* r, MapTicket* t, const MapCaller& caller, int64_t now,
             uint64_t token);
// mapping (with its token) or dead (the same client on the same device:
// a reconnect) -> mapped on device; EACCES for another identity's (not
// an admin), EBUSY for another map's or host's, EINVAL when nothing is
// being mapped. map_time is set to now_iso.
Status Confirm(BackstoreRecord* r, const MapTicket& t, const std::string& device,
               const MapCaller& caller, uint64_t token, const std::string& now_iso);
// Any mapping state -> created, within only's limits (EBUSY beyond them);
// EACCES for another identity's (not an admin); EINVAL when not mapped.
Status Unmap(BackstoreRecord* r, MapTicket* t, const MapCaller& caller, const UnmapOnly& only);
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
