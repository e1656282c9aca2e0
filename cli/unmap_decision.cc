// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Whose mapping an unmap by key may end; see unmap_decision.h.
#include "cli/unmap_decision.h"

namespace nbdr::cli {

UnmapVerdict DecideUnmapByKey(const UnmapFacts& f) {
  if (!f.mapped) return UnmapVerdict::kNotMapped;
  if (f.device_holds_this && f.same_runner) return UnmapVerdict::kDisconnect;
  if (f.device_holds_this && !f.force) return UnmapVerdict::kRefuseOtherRunnerName;
  if (f.force) return UnmapVerdict::kForceClear;
  // This host's own record whose device no longer holds the disk
  // (disconnected, or reused after a reboot): nothing else can hold it. A
  // map still in progress is not stale.
  const bool stale_own =
      f.has_client && f.client_is_this_host && !f.in_progress && !f.device_holds_this;
  if (stale_own) return UnmapVerdict::kClearStaleOwn;
  if (f.device_in_use_here) return UnmapVerdict::kRefuseHeldHere;
  return UnmapVerdict::kRefuseElsewhere;
}

const char* UnmapVerdictName(UnmapVerdict v) {
  switch (v) {
    case UnmapVerdict::kNotMapped: return "not-mapped";
    case UnmapVerdict::kDisconnect: return "disconnect";
    case UnmapVerdict::kRefuseOtherRunnerName: return "refuse-other-runner-name";
    case UnmapVerdict::kRefuseHeldHere: return "refuse-held-here";
    case UnmapVerdict::kRefuseElsewhere: return "refuse-elsewhere";
    case UnmapVerdict::kClearStaleOwn: return "clear-stale-own";
    case UnmapVerdict::kForceClear: return "force-clear";
  }
  return "?";
}

}  // namespace nbdr::cli
