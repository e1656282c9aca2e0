// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The part of BackstoreRegistry that opens a backstore for NBD clients: the
// first client's open goes through the handler (after the object's
// identity is checked), the next ones share it through the entry's
// ExportSharing (open_export.h).
#include <algorithm>
#include <cerrno>

#include "runner/backstore_registry.h"
#include "runner/backstore_registry_update.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/net.h"
#include "utils/size_parse.h"

namespace nbdr {

std::optional<BackstoreRegistry::ServingSlot> BackstoreRegistry::FindServingLocked(
    const std::string& export_name) {
  auto it = entries_.find(export_name);
  if (it != entries_.end()) {
    if (it->second.busy) return std::nullopt;
    return ServingSlot{&it->second, &it->second.sharing, it->second.record};
  }
  // TYPE/KEY@NAME: snapshot NAME of backstore KEY (a registered key with
  // an '@' in it is found above first).
  auto parsed = ParseExportName(export_name);
  std::string key, snapshot;
  if (!parsed || !SplitSnapshotKey(parsed->key, &key, &snapshot)) return std::nullopt;
  const LoadedHandler* h = handlers_->Find(parsed->type);
  it = entries_.find(MakeExportName(parsed->type, key));
  if (!h || !h->CanSnapshot() || it == entries_.end() || it->second.busy || it->second.creating)
    return std::nullopt;
  std::erase_if(snapshot_sharing_, [](const auto& kv) { return !kv.second.InUse(); });
  ServingSlot slot{&it->second, &snapshot_sharing_[export_name], it->second.record};
  slot.record.snapshot = snapshot;
  slot.record.readonly = true;
  slot.record.runners.clear();
  return slot;
}

bool BackstoreRegistry::MustWaitToOpen(const ServingSlot& slot) const {
  return slot.record.snapshot.empty() ? slot.entry->no_opens : slot.entry->changing != nullptr;
}

std::string BackstoreRegistry::SnapshotInUseLocked(const std::string& name) const {
  for (const auto& [served, sharing] : snapshot_sharing_) {
    auto parsed = ParseExportName(served);
    std::string key, snapshot;
    if (!parsed || !SplitSnapshotKey(parsed->key, &key, &snapshot) ||
        MakeExportName(parsed->type, key) != name)
      continue;
    if (std::string busy = sharing.BusyReason(served); !busy.empty()) return busy;
  }
  return "";
}

Expected<BackstoreRecord> BackstoreRegistry::ServedRecord(const std::string& export_name) {
  MutexLock l(&mu_);
  auto slot = FindServingLocked(export_name);
  if (!slot || slot->entry->creating)
    return Status::Error(ENOENT, "no backstore " + export_name + " on this runner");
  return slot->record;
}

Status BackstoreRegistry::NotMidRollback(const BackstoreRecord& record) {
  if (!record.snapshot.empty() || record.rolling_back.empty()) return Status();
  const std::string name = record.ExportName();
  LOG_ERROR(name, "not served: a rollback to snapshot %s did not complete",
            record.rolling_back.c_str());
  return Status::Error(
      EIO, "refusing to serve " + name + ": a rollback to snapshot " + record.rolling_back +
               " did not complete, so it may hold parts of both; 'nbd-cli " + record.type +
               " snapshot rollback " + record.key + " " + record.rolling_back + "' completes it");
}

Expected<std::shared_ptr<OpenExport>> BackstoreRegistry::OpenForServing(
    const std::string& export_name, const std::string& tls_identity) {
  if (auto parsed = ParseExportName(export_name); !parsed) return parsed.status();
  BackstoreRecord record;
  ExportSharing* sharing = nullptr;
  std::shared_ptr<OpenExport> shared;
  {
    MutexLock l(&mu_);
    for (;;) {
      auto slot = FindServingLocked(export_name);
      if (!slot) return Status::Error(ENOENT, "no backstore " + export_name + " on this runner");
      if (!MayOpen(slot->record, tls_identity))
        return Status::Error(EACCES, tls_identity.empty() ? export_name +
                                                                " is open only to clients with a "
                                                                "TLS identity on its access list"
                                                          : "TLS identity " + tls_identity +
                                                                " may not open " + export_name);
      if ((shared = slot->sharing->Current())) {
        record = slot->record;
        break;
      }
      if (MustWaitToOpen(*slot)) {
        // A shrink or a rollback keeps the object to itself until it ends;
        // a snapshot is not opened while its backstore's snapshots change.
        l.Wait(&open_done_, [&]() REQUIRES(mu_) {
          auto again = FindServingLocked(export_name);
          return !again || !MustWaitToOpen(*again);
        });
        continue;
      }
      if (!slot->sharing->IsOpening()) {
        record = slot->record;
        // Until the open is recorded below, Delete and re-import refuse:
        // the entry, and the object it names, stay as they are (and the
        // sharing, which is ended through this pointer).
        sharing = slot->sharing;
        sharing->BeginOpen();
        break;
      }
      // Another client is opening this export: share what it opens (or,
      // if that fails, try again). Opens of other exports go on meanwhile.
      l.Wait(&open_done_, [&]() REQUIRES(mu_) {
        auto again = FindServingLocked(export_name);
        return !again || !again->sharing->IsOpening();
      });
    }
  }
  if (shared) {
    // Still open after a forced rollback that failed: not for new clients.
    if (Status s = NotMidRollback(record); !s.ok()) return s;
    // A client joins an open export: it is told the size the object has now.
    if (record.snapshot.empty()) FollowOpenSize(record, shared.get());
    return shared;
  }
  auto opened = OpenBackend(export_name, record);
  if (opened) (*opened)->SetStats(StatsFor(export_name));
  bool resizing = false;
  {
    MutexLock l(&mu_);
    // Still there: nothing erases an entry, or a sharing, while it opens.
    sharing->EndOpen(opened ? *opened : nullptr);
    auto it = entries_.find(export_name);
    resizing = it != entries_.end() && it->second.changing != nullptr;
    open_done_.notify_all();
  }
  if (opened && !resizing && record.snapshot.empty() && (*opened)->info().size != record.size)
    FollowBackendSize(record, (*opened)->info().size);
  return opened;
}

void BackstoreRegistry::FollowBackendSize(const BackstoreRecord& record, uint64_t size,
                                          OpenExport* grow) {
  const std::string name = record.ExportName();
  Status s = UpdateAndSave(record.type, record.key, [&](Entry& e) REQUIRES(mu_) {
    // A resize since the open set the size itself.
    if (e.changing || e.record.size != record.size)
      return Status::Error(EAGAIN, "resized through the runner meanwhile");
    e.record.size = size;
    if (grow) grow->SetSize(size);
    return Status();
  });
  if (s.code() == EAGAIN) return;
  if (s.ok())
    LOG_WARN(name,
             "its backing object is %s, not the %s recorded: resized behind the runner's "
             "back; the record follows",
             FormatSize(size).c_str(), FormatSize(record.size).c_str());
  else
    LOG_WARN(name,
             "its backing object is %s, not the %s recorded, and the record cannot follow: "
             "%s",
             FormatSize(size).c_str(), FormatSize(record.size).c_str(), s.message().c_str());
}

Expected<std::shared_ptr<OpenExport>> BackstoreRegistry::OpenBackend(
    const std::string& export_name, const BackstoreRecord& record) const {
  const LoadedHandler* h = handlers_->Find(record.type);
  if (!h) return CheckHandler(record.type);
  if (Status s = NotMidRollback(record); !s.ok()) return s;
  ObjectCheck c = record.snapshot.empty() ? CheckObject(record) : ObjectCheck{};
  if (c.state == ObjectCheck::kUnknown) LOG_WARN(export_name, "%s", c.problem.c_str());
  if (c.state == ObjectCheck::kReplaced) {
    LOG_ERROR(export_name, "not served: %s", c.problem.c_str());
    return Status::Error(ESTALE, "refusing to serve " + export_name +
                                     ": its backing object was replaced since it was "
                                     "registered; 'nbd-cli " +
                                     record.type + " import " + record.key +
                                     "' serves the new one");
  }
  auto exp = std::make_shared<OpenExport>(record, h);
  if (Status s = exp->Open(); !s.ok()) return s;
  return exp;
}

size_t BackstoreRegistry::OpenCount() const {
  MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [name, e] : entries_)
    if (e.sharing.IsOpen()) n++;
  return n;
}

bool BackstoreRegistry::IsMappingPeer(const std::string& export_name,
                                      const std::string& peer_host) const {
  MutexLock l(&mu_);
  auto it = entries_.find(export_name);
  if (it == entries_.end() || it->second.record.status == NBDR_STATUS_CREATED ||
      !it->second.mapper_address)
    return false;
  const std::string& mapper = *it->second.mapper_address;
  return mapper.empty() ? IsLoopbackHost(peer_host) : mapper == peer_host;
}

bool BackstoreRegistry::HasRunnerSet(const std::string& export_name) const {
  MutexLock l(&mu_);
  auto it = entries_.find(export_name);
  return it != entries_.end() && it->second.record.runners.size() > 1;
}

Status BackstoreRegistry::TakeOver(const std::string& type, const std::string& key,
                                   const MapCaller& caller) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  const std::string name = MakeExportName(type, key);
  auto record = Get(type, key);
  if (!record) return Status::Error(ENOENT, "backstore " + name + " does not exist");
  if (!caller.admin) {
    MutexLock l(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second.record.status == NBDR_STATUS_CREATED ||
        !it->second.mapper_address || *it->second.mapper_address != caller.address)
      return Status::Error(EPERM, "not taking " + name +
                                      " over: only the client that maps it "
                                      "through this runner (or an admin) may");
  }
  if (record->runners.size() < 2)
    return Status::Error(EINVAL, name +
                                     " has no runner set (this runner serves it alone): "
                                     "there is no other runner to take it over from");
  if (ObjectCheck c = CheckObject(*record);
      c.state == ObjectCheck::kReplaced || c.state == ObjectCheck::kMissing)
    return Status::Error(c.code, "not taking " + name + " over: " + c.problem);
  Status s = handlers_->Find(type)->TakeOver(key);
  if (s.ok())
    LOG_WARN(name,
             "taken over: the other runners of its set are fenced out of its backing "
             "object");
  return s;
}

void BackstoreRegistry::FollowOpenSize(const BackstoreRecord& record, OpenExport* open) {
  auto size = open->handler().ExportSize(open->handle());
  if (!size || *size == record.size) return;
  // A grown object serves its new end at once; a shrunk one keeps failing
  // requests past its end in the handler (EIO), as the client was told
  // the larger size.
  FollowBackendSize(record, *size, *size > open->size() ? open : nullptr);
}

void BackstoreRegistry::FollowOpenSize(const std::string& type, const std::string& key) {
  BackstoreRecord record;
  std::shared_ptr<OpenExport> open;
  {
    MutexLock l(&mu_);
    auto it = entries_.find(MakeExportName(type, key));
    if (it == entries_.end() || it->second.creating || it->second.busy || it->second.changing)
      return;
    open = it->second.sharing.Current();
    record = it->second.record;
  }
  if (open) FollowOpenSize(record, open.get());
}

}  // namespace nbdr
