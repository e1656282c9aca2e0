// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NBDR_SNAPSHOT: the control service's snapshot procedure (list, create,
// delete, rollback), answered from BackstoreRegistry's snapshot calls.
#include <algorithm>
#include <cstdlib>

#include "runner/control_service.h"
#include "utils/size_parse.h"

namespace nbdr {

namespace {

// At most NBDR_MAX_SNAPSHOTS, the oldest (a longer list fails to encode).
void FillSnapshots(const std::vector<LoadedHandler::Snapshot>& snaps, nbdr_snapshot_reply* r) {
  const size_t n = std::min<size_t>(snaps.size(), NBDR_MAX_SNAPSHOTS);
  r->snapshots.snapshots_len = static_cast<u_int>(n);
  r->snapshots.snapshots_val = static_cast<nbdr_snapshot*>(calloc(n + 1, sizeof(nbdr_snapshot)));
  for (size_t i = 0; i < n; i++) {
    r->snapshots.snapshots_val[i].name = XdrString(snaps[i].name);
    r->snapshots.snapshots_val[i].size = snaps[i].size;
    r->snapshots.snapshots_val[i].created = snaps[i].created;
  }
}

}  // namespace

void ControlService::Snapshot(const nbdr_snapshot_args& a, nbdr_snapshot_reply* r) {
  const std::string name = std::string(a.type) + "/" + a.key;
  const std::string snap = a.name;
  switch (a.op) {
    case NBDR_SNAPSHOT_LIST: {
      auto snaps = registry_->SnapshotList(a.type, a.key);
      if (snaps) FillSnapshots(*snaps, r);
      std::string text = snaps ? std::to_string(snaps->size()) + " snapshot(s) of " + name : "";
      if (snaps && snaps->size() > NBDR_MAX_SNAPSHOTS)
        text += " (the oldest " + std::to_string(NBDR_MAX_SNAPSHOTS) + " listed)";
      SetStatus(snaps.status(), &r->status, &r->message, text);
      return;
    }
    case NBDR_SNAPSHOT_CREATE: {
      auto held_ms = registry_->SnapshotCreate(a.type, a.key, snap, a.copy);
      char pause[64] = "";
      if (held_ms && *held_ms >= 0)
        snprintf(pause, sizeof pause, "; writes held %.1f ms", *held_ms);
      SetStatus(held_ms.status(), &r->status, &r->message,
                "snapshot " + name + "@" + snap + " taken" + pause);
      return;
    }
    case NBDR_SNAPSHOT_DELETE:
      SetStatus(registry_->SnapshotDelete(a.type, a.key, snap), &r->status, &r->message,
                "snapshot " + name + "@" + snap + " deleted");
      return;
    case NBDR_SNAPSHOT_ROLLBACK: {
      auto size = registry_->SnapshotRollback(a.type, a.key, snap, a.force);
      SetStatus(size.status(), &r->status, &r->message,
                size ? name + " rolled back to " + snap + " (" + FormatSize(*size) + ")" : "");
      return;
    }
  }
  SetStatus(
      Status::Error(EINVAL, "unknown snapshot operation " + std::to_string(static_cast<int>(a.op))),
      &r->status, &r->message, "");
}

}  // namespace nbdr
