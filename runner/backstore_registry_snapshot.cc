// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The part of BackstoreRegistry that takes, lists, deletes and rolls back
// snapshots through the handler. A snapshot of an open export is taken
// quiesced: the export's write gate holds new writes back and waits for
// those in flight, a flush follows, the handler takes the snapshot, and
// the writes go on: clients see a pause, never an error. Snapshots are
// served read-only as TYPE/KEY@NAME (backstore_registry_open.cc).
//
// A copy (NBDR_SNAPSHOT_COPY) takes as long as the data takes to read and
// write: held that long, a kernel client's writes would time out. Where
// the handler copies in steps (snapshot_copy_ranges), the copy runs while
// writes go on and records what they change (DirtyRanges); that is copied
// again, a few times while it shrinks, and the last time with the writes
// held, which then completes the snapshot.
#include <algorithm>
#include <cerrno>
#include <chrono>

#include "runner/backstore_registry.h"
#include "runner/backstore_registry_update.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/size_parse.h"

namespace nbdr {

namespace {

constexpr const char* kDeletingSnapshot = "changed (a snapshot of it is being deleted)";
// Copies of what writes changed during a copy snapshot, with the writes
// going on, before the last one with them held; they stop earlier once
// less than kHeldCopyBytes is left.
constexpr int kLiveCopyRounds = 8;
constexpr uint64_t kHeldCopyBytes = 16 << 20;
// More than this left to copy with writes held, after the rounds, and the
// snapshot is refused: writes change the disk faster than it is copied.
constexpr uint64_t kMaxHeldCopyBytes = 256 << 20;

// The errnos with which a handler's snapshot_rollback says it changed
// nothing (handler ABI): the object needs no guard.
bool RollbackLeftObjectAlone(int code) {
  return code == ENOENT || code == EACCES || code == EPERM || code == EBUSY || code == ENOTSUP ||
         code == EINVAL;
}

bool IsMapped(const BackstoreRecord& r) {
  return r.status == NBDR_STATUS_MAPPING || r.status == NBDR_STATUS_MAPPED ||
         r.status == NBDR_STATUS_DEAD;
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Expected<const LoadedHandler*> BackstoreRegistry::SnapshotHandler(const std::string& type,
                                                                  const std::string& key,
                                                                  const std::string* snapshot) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  if (snapshot)
    if (Status s = ValidateSnapshotName(*snapshot); !s.ok()) return s;
  const LoadedHandler* h = handlers_->Find(type);
  if (!h->CanSnapshot())
    return Status::Error(ENOTSUP, "the " + type + " handler cannot take snapshots");
  return h;
}

Expected<BackstoreRegistry::Entry*> BackstoreRegistry::ChangeableEntryLocked(
    const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.creating)
    return Status::Error(ENOENT, "backstore " + name + " does not exist");
  if (it->second.busy)
    return Status::Error(EBUSY, "backstore " + name + " is being created or deleted");
  if (it->second.changing)
    return Status::Error(EBUSY, "backstore " + name + " is being " + it->second.changing);
  return &it->second;
}

Expected<std::shared_ptr<OpenExport>> BackstoreRegistry::BeginObjectChange(
    const std::string& name, const char* what, BackstoreRecord* record) {
  MutexLock l(&mu_);
  auto entry = ChangeableEntryLocked(name);
  if (!entry) return entry.status();
  Entry& e = **entry;
  e.changing = what;  // from here on nothing erases the entry
  l.Wait(&open_done_, [&] { return !e.sharing.IsOpening(); });
  std::shared_ptr<OpenExport> open = e.sharing.Current();
  if (!open) e.no_opens = true;  // a client that comes now waits for the change
  *record = e.record;
  return open;
}

void BackstoreRegistry::EndObjectChange(const std::string& name) {
  MutexLock l(&mu_);
  if (auto it = entries_.find(name); it != entries_.end()) {
    it->second.changing = nullptr;
    it->second.no_opens = false;
  }
  open_done_.notify_all();
}

Status BackstoreRegistry::Quiesced(OpenExport* open, double* held_ms,
                                   const std::function<Status(void* handle)>& change) {
  if (!open) return change(nullptr);
  auto held = std::chrono::steady_clock::now();
  open->write_gate()->EnterExclusive();
  Status s = open->Flush();
  if (s.ok()) s = change(open->handle());
  open->write_gate()->LeaveExclusive();
  *held_ms = MsSince(held);
  return s;
}

Status BackstoreRegistry::CopyWhileWriting(const LoadedHandler& h, OpenExport* open,
                                           const std::string& key, const std::string& snapshot,
                                           double* held_ms) {
  const std::string name = MakeExportName(open->record().type, open->record().key);
  DirtyRanges dirty(open->size());
  open->TrackWrites(&dirty);
  Status s =
      h.SnapshotCreate(key, nullptr, snapshot, NBDR_SNAPSHOT_COPY | NBDR_SNAPSHOT_UNFINISHED);
  uint64_t again = 0, bytes = 0, last = UINT64_MAX;
  // Rounds while what is left to copy is large and shrinks.
  for (int round = 0; s.ok() && round < kLiveCopyRounds && dirty.MarkedBytes() > kHeldCopyBytes &&
                      dirty.MarkedBytes() < last;
       round++) {
    std::vector<uint64_t> ranges = dirty.Take(&bytes);
    again += bytes;
    last = bytes;
    s = h.SnapshotCopyRanges(key, snapshot, ranges, 0);
  }
  if (s.ok() && dirty.MarkedBytes() > kMaxHeldCopyBytes)
    s = Status::Error(EBUSY, "not snapshotting " + name + ": its clients change more than " +
                                 FormatSize(kMaxHeldCopyBytes) +
                                 " while it is copied, which would hold their writes for as long "
                                 "as that takes to copy; try again when it is quieter");
  // The last copy, of what was written since, with writes held; writes
  // stop marking while none is in flight (a write marks before it leaves
  // the gate).
  auto held = std::chrono::steady_clock::now();
  open->write_gate()->EnterExclusive();
  open->TrackWrites(nullptr);
  if (s.ok()) s = open->Flush();
  if (s.ok()) {
    std::vector<uint64_t> ranges = dirty.Take(&bytes);
    s = h.SnapshotCopyRanges(key, snapshot, ranges, NBDR_SNAPSHOT_FINISH);
  }
  open->write_gate()->LeaveExclusive();
  *held_ms = MsSince(held);
  if (!s.ok()) {
    if (Status d = h.SnapshotCopyRanges(key, snapshot, {}, NBDR_SNAPSHOT_DISCARD); !d.ok())
      LOG_WARN(name, "%s", d.message().c_str());
    return s;
  }
  LOG_INFO(name,
           "snapshot %s copied while writes went on; copied again: %s written meanwhile, then "
           "%s with writes held",
           snapshot.c_str(), FormatSize(again).c_str(), FormatSize(bytes).c_str());
  return s;
}

Status BackstoreRegistry::RegisteredAsBackstoreLocked(const std::string& type,
                                                      const std::string& key,
                                                      const std::string& snapshot) const {
  const std::string also = MakeExportName(type, key + "@" + snapshot);
  if (!entries_.count(also)) return Status();
  return Status::Error(EEXIST, "backstore " + also + " is registered: " + snapshot +
                                   " names it, not a snapshot of " + key);
}

Expected<double> BackstoreRegistry::SnapshotCreate(const std::string& type, const std::string& key,
                                                   const std::string& snapshot, bool copy) {
  auto h = SnapshotHandler(type, key, &snapshot);
  if (!h) return h.status();
  const std::string name = MakeExportName(type, key);
  BackstoreRecord record;
  auto open = BeginObjectChange(name, "snapshotted", &record);
  if (!open) return open.status();
  Status s;
  {
    MutexLock l(&mu_);
    s = RegisteredAsBackstoreLocked(type, key, snapshot);
  }
  // Other runners of its set are not quiesced: their writes would land in
  // the middle of a copy.
  if (s.ok() && copy && record.runners.size() > 1)
    s = Status::Error(EBUSY, "not copying " + name +
                                 ": other runners of its set may write to it while it is "
                                 "copied, and this one cannot hold their writes");
  auto started = std::chrono::steady_clock::now();
  double held_ms = -1;
  if (s.ok() && copy && *open && (*h)->CanCopySnapshotsLive())
    s = CopyWhileWriting(**h, open->get(), key, snapshot, &held_ms);
  else if (s.ok())
    s = Quiesced(open->get(), &held_ms, [&](void* handle) {
      return (*h)->SnapshotCreate(key, handle, snapshot, copy ? NBDR_SNAPSHOT_COPY : 0);
    });
  EndObjectChange(name);
  if (!s.ok()) return s;
  if (held_ms >= 0)
    LOG_INFO(name, "snapshot %s taken in %.1f ms; writes were held %.1f ms", snapshot.c_str(),
             MsSince(started), held_ms);
  else
    LOG_INFO(name, "snapshot %s taken in %.1f ms (not open)", snapshot.c_str(), MsSince(started));
  return held_ms;
}

Status BackstoreRegistry::SnapshotDelete(const std::string& type, const std::string& key,
                                         const std::string& snapshot) {
  auto h = SnapshotHandler(type, key, &snapshot);
  if (!h) return h.status();
  const std::string name = MakeExportName(type, key);
  const std::string served = name + "@" + snapshot;
  // Marks the backstore first: from here on no open of its snapshots
  // begins, so one found unused below stays unused.
  BackstoreRecord record;
  auto open = BeginObjectChange(name, kDeletingSnapshot, &record);
  if (!open) return open.status();
  Status s;
  if (record.rolling_back == snapshot)
    s = Status::Error(EBUSY, "not deleting snapshot " + snapshot + ": a rollback of " + name +
                                 " to it did not complete; roll back to it again first");
  if (s.ok()) {
    MutexLock l(&mu_);
    s = RegisteredAsBackstoreLocked(type, key, snapshot);
    auto it = snapshot_sharing_.find(served);
    if (s.ok() && it != snapshot_sharing_.end())
      if (std::string busy = it->second.BusyReason(served); !busy.empty())
        s = Status::Error(EBUSY, "not deleting snapshot " + snapshot + ": " + busy);
  }
  if (s.ok()) s = (*h)->SnapshotDelete(key, snapshot);
  if (s.ok()) {
    MutexLock l(&mu_);
    stats_.erase(served);
  }
  EndObjectChange(name);
  if (s.ok()) LOG_INFO(name, "snapshot %s deleted", snapshot.c_str());
  return s;
}

Expected<std::vector<LoadedHandler::Snapshot>> BackstoreRegistry::SnapshotList(
    const std::string& type, const std::string& key) {
  auto h = SnapshotHandler(type, key, nullptr);
  if (!h) return h.status();
  if (auto record = Get(type, key); !record) return record.status();
  auto snaps = (*h)->SnapshotList(key);
  if (!snaps) return snaps;
  // A registered backstore KEY@NAME is no snapshot of KEY.
  MutexLock l(&mu_);
  std::erase_if(*snaps, [&](const LoadedHandler::Snapshot& s) REQUIRES(mu_) {
    return !RegisteredAsBackstoreLocked(type, key, s.name).ok();
  });
  return snaps;
}

Status BackstoreRegistry::RefuseUnforcedRollback(const std::string& name,
                                                 const BackstoreRecord& record,
                                                 const OpenExport* open) {
  const std::string why = "not rolling " + name + " back";
  const std::string force =
      "; or say 'force', and its clients read the snapshot's data "
      "from then on, whatever they cached";
  if (IsMapped(record))
    return Status::Error(EBUSY, why + ": it is " + StatusName(record.status) + " on " +
                                    mapping::WhereMapped(record) + "; unmap it first" + force);
  if (open)
    return Status::Error(EBUSY, why + ": NBD clients have it open; let them go first" + force);
  if (record.runners.size() > 1)
    return Status::Error(EBUSY, why +
                                    ": other runners of its set may have it open or mapped, "
                                    "and this one cannot tell" +
                                    force);
  return Status();
}

Status BackstoreRegistry::SnapshotMustExist(const LoadedHandler& h, const std::string& key,
                                            const std::string& snapshot) {
  auto snaps = h.SnapshotList(key);
  if (!snaps) return snaps.status();
  if (std::none_of(snaps->begin(), snaps->end(),
                   [&](const LoadedHandler::Snapshot& s) { return s.name == snapshot; }))
    return Status::Error(ENOENT, key + " has no snapshot named " + snapshot);
  return Status();
}

Status BackstoreRegistry::SetRollingBack(const std::string& type, const std::string& key,
                                         const std::string& snapshot) {
  return UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
    e.record.rolling_back = snapshot;
    return Status();
  });
}

Expected<uint64_t> BackstoreRegistry::SnapshotRollback(const std::string& type,
                                                       const std::string& key,
                                                       const std::string& snapshot, bool force) {
  auto h = SnapshotHandler(type, key, &snapshot);
  if (!h) return h.status();
  const std::string name = MakeExportName(type, key);
  BackstoreRecord record;
  auto open = BeginObjectChange(name, "rolled back", &record);
  if (!open) return open.status();
  Status s = force ? Status() : RefuseUnforcedRollback(name, record, open->get());
  if (s.ok()) {
    MutexLock l(&mu_);
    s = RegisteredAsBackstoreLocked(type, key, snapshot);
  }
  if (s.ok()) s = SnapshotMustExist(**h, key, snapshot);
  bool marked = false;
  uint64_t size = 0;
  double held_ms = -1;
  if (s.ok())
    s = Quiesced(open->get(), &held_ms, [&](void* handle) {
      // Saved before the object changes: a rollback that stops partway
      // (or a runner that dies meanwhile) leaves a record not served.
      if (Status m = SetRollingBack(type, key, snapshot); !m.ok()) return m;
      marked = true;
      auto rolled = (*h)->SnapshotRollback(key, handle, snapshot);
      // Refused before anything changed (handler ABI): nothing to guard.
      if (!rolled && RollbackLeftObjectAlone(rolled.status().code()))
        marked = !SetRollingBack(type, key, "").ok();
      if (!rolled) return rolled.status();
      size = *rolled;
      if (*open) (*open)->SetSize(size);
      return Status();
    });
  if (s.ok())
    s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
      e.record.size = size;
      e.record.rolling_back.clear();
      return Status();
    });
  else if (marked)
    LOG_ERROR(name, "the rollback to snapshot %s did not complete (%s): not served until one does",
              snapshot.c_str(), s.message().c_str());
  EndObjectChange(name);
  if (!s.ok()) return s;
  LOG_WARN(name, "rolled back to snapshot %s (%s)%s", snapshot.c_str(), FormatSize(size).c_str(),
           *open ? ", forced while open" : "");
  return size;
}

}  // namespace nbdr
