// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Backstore registry: the record table, create, import, delete and
// forget, runner sets, and the save with rollback (the mapping calls are
// in backstore_registry_mapping.cc, access lists in backstore_access.cc,
// identities in backstore_identity.cc, opening for NBD clients in
// backstore_registry_open.cc, sharing an open export in open_export.cc);
// see backstore_registry.h.
#include "runner/backstore_registry.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

#include "runner/backstore_identity.h"
#include "runner/backstore_registry_update.h"
#include "runner/saveconfig.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/size_parse.h"

namespace nbdr {

namespace {

uint64_t ClockNanoseconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

BackstoreRegistry::BackstoreRegistry(const HandlerSet* handlers, std::string saveconfig_path)
    : handlers_(handlers), path_(std::move(saveconfig_path)), last_map_token_(ClockNanoseconds()) {}

Status BackstoreRegistry::Load() {
  auto records = LoadSaveconfig(path_);
  if (!records) return records.status();
  MutexLock save(&save_mu_);
  size_t dead = 0;
  {
    MutexLock l(&mu_);
    entries_.clear();
    for (auto& r : *records) {
      if (!handlers_->Find(r.type))
        LOG_WARN(r.ExportName(), "handler '%s' is not loaded: backstore kept but not served",
                 r.type.c_str());
      // Whatever was mapped lost its connections when the runner stopped:
      // it stays dead until its client reconnects or maps it again.
      const BackstoreStatus was = r.status;
      if (mapping::Restart(&r)) {
        LOG_WARN(r.ExportName(),
                 "was %s on %s when the runner stopped; now dead until the "
                 "client reconnects",
                 StatusName(was), mapping::WhereMapped(r).c_str());
        dead++;
      }
      entries_[r.ExportName()].record = std::move(r);
    }
    LOG_INFO("registry", "loaded %zu backstore(s) from %s", entries_.size(), path_.c_str());
  }
  if (dead == 0) return Status();
  return SaveLocked().WithContext("record dead mappings");
}

Status BackstoreRegistry::CheckHandler(const std::string& type) const {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (handlers_->Find(type)) return Status();
  std::string loaded;
  for (const auto& t : handlers_->Types()) loaded += (loaded.empty() ? "" : ", ") + t;
  return Status::Error(EOPNOTSUPP,
                       "handler '" + type + "' is not loaded on this runner" +
                           (loaded.empty() ? " (none are)" : " (loaded: " + loaded + ")"));
}

Status BackstoreRegistry::SaveLocked(const std::string& also) {
  std::vector<BackstoreRecord> records;
  {
    MutexLock l(&mu_);
    for (const auto& [name, e] : entries_) {
      if (e.creating && name != also) continue;
      records.push_back(e.record);
    }
  }
  return StoreSaveconfig(path_, records);
}

namespace {

Status CheckGeometry(uint64_t size, uint32_t block_size) {
  if (block_size != 512 && block_size != 4096)
    return Status::Error(EINVAL, "block size must be 512 or 4096");
  if (size == 0 || size > kMaxBackstoreSize || size % block_size != 0)
    return Status::Error(EINVAL, "size " + std::to_string(size) +
                                     ": must be a positive multiple of the block size (" +
                                     std::to_string(block_size) + ")");
  return Status();
}

}  // namespace

Status BackstoreRegistry::Create(const CreateParams& p) {
  if (Status s = CheckHandler(p.type); !s.ok()) return s;
  if (Status s = ValidateNewKey(p.type, p.key); !s.ok()) return s;
  if (Status s = ValidateRunnerSet(p.runners); !s.ok()) return s;
  if (Status s = CheckGeometry(p.size, p.block_size); !s.ok()) return s;
  const LoadedHandler* h = handlers_->Find(p.type);
  nbdr_create_params cp{};
  cp.struct_size = sizeof cp;
  cp.block_size = p.block_size;
  cp.size = p.size;
  cp.prealloc = p.prealloc ? 1 : 0;
  auto size = Register(
      p,
      [&]() -> Expected<uint64_t> {
        if (Status s = h->Create(p.key, cp); !s.ok()) return s;
        return p.size;
      },
      /*created=*/true);
  if (!size) return size.status();
  LOG_INFO(MakeExportName(p.type, p.key), "created: %s%s%s", FormatSize(p.size).c_str(),
           p.prealloc ? ", preallocated" : "", p.readonly ? ", read-only" : "");
  return Status();
}

Expected<uint64_t> BackstoreRegistry::Import(const CreateParams& p) {
  if (Status s = CheckHandler(p.type); !s.ok()) return s;
  if (Status s = ValidateNewKey(p.type, p.key); !s.ok()) return s;
  if (Status s = ValidateRunnerSet(p.runners); !s.ok()) return s;
  const LoadedHandler* h = handlers_->Find(p.type);
  std::string name = MakeExportName(p.type, p.key);
  auto inspect = [&]() -> Expected<uint64_t> {
    // Opening it read-only proves it exists and tells its size.
    nbdr_export_info info{};
    void* handle = nullptr;
    if (Status s = h->Open(p.key, NBDR_OPEN_READONLY, &info, &handle); !s.ok()) return s;
    h->desc().close(handle);
    if (p.size && p.size != info.size)
      return Status::Error(
          EINVAL, name + " holds " + FormatSize(info.size) + ", not " + FormatSize(p.size));
    if (Status s = CheckGeometry(info.size, p.block_size); !s.ok())
      return s.WithContext("cannot import " + name);
    return info.size;
  };
  if (auto existing = Get(p.type, p.key); existing.ok() && HasIdentity(*existing))
    return Readopt(p, *existing, inspect);
  auto size = Register(p, inspect, /*created=*/false);
  if (size)
    LOG_INFO(name, "imported: %s%s", FormatSize(*size).c_str(), p.readonly ? ", read-only" : "");
  return size;
}

// Import of a registered key: allowed only when its backing object was
// replaced (another identity); the record then describes the new object.
Expected<uint64_t> BackstoreRegistry::Readopt(const CreateParams& p,
                                              const BackstoreRecord& existing,
                                              const std::function<Expected<uint64_t>()>& inspect) {
  const LoadedHandler* h = handlers_->Find(p.type);
  std::string name = MakeExportName(p.type, p.key);
  std::string now = CurrentIdentity(h, p.key);
  if (now.empty() || SameIdentity(now, existing.extras_json))
    return Status::Error(EEXIST, "backstore " + name + " already exists");
  auto size = inspect();
  if (!size) return size.status();
  std::set<std::string> stale = StaleHolders(p.type, now, name);
  Status s = UpdateAndSave(p.type, p.key, [&](Entry& e) REQUIRES(mu_) -> Status {
    if (e.sharing.InUse())
      return Status::Error(EBUSY, "backstore " + name + " is being served; stop its clients first");
    if (std::string other = RegisteredAs(p.type, now, name, stale); !other.empty())
      return SameObjectError(name, other);
    e.record.size = *size;
    e.record.block_size = p.block_size;
    e.record.readonly = p.readonly;
    e.record.runners = p.runners;
    e.record.extras_json = now;
    return Status();
  });
  if (!s.ok()) return s;
  LOG_WARN(name, "re-imported: now the object %s (was %s), %s", now.c_str(),
           existing.extras_json.c_str(), FormatSize(*size).c_str());
  return size;
}

// Reserves the registry entry, runs make (which creates or inspects the
// backing object and returns its size), then persists. On failure the
// entry goes away again, and a backing object this call created is
// removed; one it only found is never touched.
Expected<uint64_t> BackstoreRegistry::Register(const CreateParams& p,
                                               const std::function<Expected<uint64_t>()>& make,
                                               bool created) {
  const LoadedHandler* h = handlers_->Find(p.type);
  std::string name = MakeExportName(p.type, p.key);
  {
    MutexLock l(&mu_);
    if (entries_.count(name)) return Status::Error(EEXIST, "backstore " + name + " already exists");
    Entry& e = entries_[name];
    e.busy = e.creating = true;
    e.record.type = p.type;
    e.record.key = p.key;
    e.record.size = p.size;
    e.record.block_size = p.block_size;
    e.record.readonly = p.readonly;
    e.record.prealloc = p.prealloc;
    e.record.tls_allow = p.tls_allow;
    e.record.runners = p.runners;
  }
  auto size = make();
  std::string identity = size ? CurrentIdentity(h, p.key) : "";
  // An object just created is no other backstore's, whatever stale records
  // say; an imported one may be (another path to it), unless that other
  // record's object is gone or replaced.
  bool check_alias = !created && !identity.empty();
  std::set<std::string> stale;
  if (check_alias) stale = StaleHolders(p.type, identity, name);
  MutexLock save(&save_mu_);
  if (!size) {
    MutexLock l(&mu_);
    entries_.erase(name);
    return size.status();
  }
  {
    MutexLock l(&mu_);
    if (std::string other = check_alias ? RegisteredAs(p.type, identity, name, stale) : "";
        !other.empty()) {
      entries_.erase(name);  // what import found is left as it is
      return SameObjectError(name, other);
    }
    Entry& e = entries_[name];
    e.record.size = *size;
    e.record.extras_json = identity.empty() ? "{}" : identity;
    e.record.create_time = NowIso8601();
  }
  Status s = SaveLocked(name);
  if (s.ok()) {
    MutexLock l(&mu_);
    Entry& e = entries_[name];
    e.busy = e.creating = false;
  } else {
    LOG_ERROR(name, "registered but could not persist, rolling back: %s", s.message().c_str());
    if (created) {
      Status undo = h->Remove(p.key);
      if (!undo.ok()) LOG_ERROR(name, "roll back failed: %s", undo.message().c_str());
    }
    MutexLock l(&mu_);
    entries_.erase(name);
    return s.WithContext((created ? "create " : "import ") + name);
  }
  return *size;
}

Status BackstoreRegistry::Delete(const std::string& type, const std::string& key) {
  return Unregister(type, key, /*remove_object=*/true);
}

Status BackstoreRegistry::Forget(const std::string& type, const std::string& key) {
  return Unregister(type, key, /*remove_object=*/false);
}

Status BackstoreRegistry::Unregister(const std::string& type, const std::string& key,
                                     bool remove_object) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  std::string name = MakeExportName(type, key);
  BackstoreRecord saved;
  {
    MutexLock l(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return Status::Error(ENOENT, "backstore " + name + " does not exist");
    Entry& e = it->second;
    if (e.busy) return Status::Error(EBUSY, "backstore " + name + " is being created or deleted");
    if (e.changing) return Status::Error(EBUSY, "backstore " + name + " is being " + e.changing);
    if (e.record.status == NBDR_STATUS_MAPPING)
      return Status::Error(EBUSY, "backstore " + name + " is being mapped by a client");
    if (e.record.status == NBDR_STATUS_MAPPED || e.record.status == NBDR_STATUS_DEAD)
      return Status::Error(EBUSY, "backstore " + name + " is " + StatusName(e.record.status) +
                                      " on " + mapping::WhereMapped(e.record) + "; unmap it first");
    if (std::string busy = e.sharing.BusyReason(name); !busy.empty())
      return Status::Error(EBUSY, busy);
    if (std::string busy = SnapshotInUseLocked(name); !busy.empty())
      return Status::Error(EBUSY, busy);
    e.busy = true;
    saved = e.record;
  }
  if (!remove_object) return ForgetEntry(name);
  Status s = CheckHandler(type);
  if (ObjectCheck c = s.ok() ? CheckObject(saved) : ObjectCheck();
      c.state == ObjectCheck::kReplaced) {
    LOG_ERROR(name, "not deleted: %s", c.problem.c_str());
    s = Status::Error(
        EEXIST, "not deleting " + name + ": " + c.problem +
                    "; that object is "
                    "not this backstore's to remove: move it away and delete again, or, if it "
                    "is no other backstore's, 'nbd-cli " +
                    type + " import " + key + "' adopts it");
  }
  if (!s.ok()) {
    MutexLock l(&mu_);
    entries_[name].busy = false;
    return s;
  }
  s = handlers_->Find(type)->Remove(key);
  if (!s.ok() && s.code() != ENOENT) {
    MutexLock l(&mu_);
    entries_[name].busy = false;
    return s;
  }
  if (!s.ok())
    LOG_WARN(name, "backing object was already gone (%s); removing the entry", s.message().c_str());
  MutexLock save(&save_mu_);
  {
    MutexLock l(&mu_);
    entries_.erase(name);
    ForgetStatsLocked(name);
  }
  Status ps = SaveLocked();
  if (!ps.ok()) {
    LOG_ERROR(name,
              "deleted, but saveconfig.json could not be written and lists it until the "
              "next successful write: %s",
              ps.message().c_str());
    return Status::Error(
        ps.code(), "backstore " + name +
                       " and its backing object are "
                       "deleted, but saveconfig.json still lists it until its next successful "
                       "write: " +
                       ps.message());
  }
  LOG_INFO(name, "deleted");
  ForgetMintedKeys(name);
  return Status();
}

Status BackstoreRegistry::ForgetEntry(const std::string& name) {
  MutexLock save(&save_mu_);
  Entry kept;
  {
    MutexLock l(&mu_);
    kept = std::move(entries_[name]);
    entries_.erase(name);
    ForgetStatsLocked(name);
  }
  if (Status ps = SaveLocked(); !ps.ok()) {
    MutexLock l(&mu_);
    kept.busy = false;
    entries_[name] = std::move(kept);
    return Status::Error(ps.code(), "backstore " + name +
                                        " is still registered: saveconfig.json "
                                        "could not be written: " +
                                        ps.message());
  }
  LOG_INFO(name, "forgotten (its backing object left in place)");
  ForgetMintedKeys(name);
  return Status();
}

Expected<BackstoreRecord> BackstoreRegistry::Get(const std::string& type, const std::string& key) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  ExpireMappings();
  std::string name = MakeExportName(type, key);
  MutexLock l(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.creating)
    return Status::Error(ENOENT, "backstore " + name + " does not exist");
  return it->second.record;
}

std::vector<BackstoreRecord> BackstoreRegistry::List(const std::string& type,
                                                     std::optional<BackstoreStatus> status) {
  ExpireMappings();
  std::vector<BackstoreRecord> out;
  MutexLock l(&mu_);
  for (const auto& [name, e] : entries_) {
    if (e.creating) continue;
    if (!type.empty() && e.record.type != type) continue;
    if (status && e.record.status != *status) continue;
    out.push_back(e.record);
  }
  return out;
}

Status BackstoreRegistry::SetRunners(const std::string& type, const std::string& key,
                                     const std::vector<std::string>& expected,
                                     const std::vector<std::string>& runners) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  if (Status s = ValidateRunnerSet(runners); !s.ok()) return s;
  const std::string name = MakeExportName(type, key);
  Status s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) -> Status {
    if (e.record.runners != expected)
      return Status::Error(ESTALE, "the runner set of " + name + " changed meanwhile; ask again");
    e.record.runners = runners;
    return Status();
  });
  if (s.ok()) {
    std::string text;
    for (const auto& r : runners) text += (text.empty() ? "" : ", ") + r;
    LOG_INFO(name, "runner set now: %s", text.empty() ? "this runner only" : text.c_str());
  }
  return s;
}

}  // namespace nbdr
