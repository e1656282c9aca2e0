// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// DecideUnmapByKey: whose mapping "nbd-cli TYPE unmap KEY" may end, and
// how, from what the runner records and what this host's kernel holds. A
// pure function, so every combination is tested (unmap_decision_test.cc);
// mapping_verbs.cc gathers the facts and carries the verdict out.
#pragma once

namespace nbdr::cli {

// What is known when unmapping by key.
struct UnmapFacts {
  bool mapped = false;       // the runner's status is not "created"
  bool in_progress = false;  // ... it is "mapping" (a map not yet confirmed)
  // The device the runner records exists on this host and holds this
  // backstore (type and key) of some runner ...
  bool device_holds_this = false;
  // ... of the runner asked (the address it was mapped with).
  bool same_runner = false;
  // The recorded device here is connected or holds some backstore.
  bool device_in_use_here = false;
  bool has_client = false;          // the runner's record names a client host
  bool client_is_this_host = false; // ... this host (now, or as it was named at map time)
  bool force = false;
};

enum class UnmapVerdict {
  kNotMapped,              // nothing to unmap (status created)
  kDisconnect,             // this host's device holds it: disconnect, clear its record
  kRefuseOtherRunnerName,  // this host holds it through another runner address
  kRefuseHeldHere,         // the recorded device here holds another disk
  kRefuseElsewhere,        // another host (or none known) holds it: needs force
  kClearStaleOwn,          // this host's own record, device gone: clear only that record
  kForceClear,             // forced: clear the runner's record, disconnect nothing
};

UnmapVerdict DecideUnmapByKey(const UnmapFacts& f);
const char* UnmapVerdictName(UnmapVerdict v);

}  // namespace nbdr::cli
