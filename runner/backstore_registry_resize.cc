// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The part of BackstoreRegistry that changes a backstore's size: the
// handler resizes the backing object, saveconfig.json records the new
// size, and an export that is open serves it at once.
#include <cerrno>

#include "runner/backstore_registry.h"
#include "runner/backstore_registry_update.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/size_parse.h"

namespace nbdr {

Status BackstoreRegistry::BeginResize(const std::string& name, uint64_t size, bool shrink,
                                      uint64_t* old_size) {
  MutexLock l(&mu_);
  auto entry = ChangeableEntryLocked(name);
  if (!entry) return entry.status();
  Entry& e = **entry;
  const uint32_t block = e.record.block_size;
  if (size == 0 || size > kMaxBackstoreSize || size % block != 0)
    return Status::Error(EINVAL, "size " + std::to_string(size) + " for " + name +
                                     ": must be a positive multiple of its block size (" +
                                     std::to_string(block) + ")");
  *old_size = e.record.size;
  if (size < e.record.size) {
    if (!shrink)
      return Status::Error(EINVAL, name + " is " + FormatSize(e.record.size) + "; " +
                                       FormatSize(size) + " would shrink it and lose what is "
                                       "stored past the new end: say 'shrink' to do that");
    if (e.record.runners.size() > 1)
      return Status::Error(EBUSY, "not shrinking " + name + ": other runners of its set may "
                                      "have it open or mapped, and this one cannot tell");
    if (e.record.status == NBDR_STATUS_MAPPING || e.record.status == NBDR_STATUS_MAPPED ||
        e.record.status == NBDR_STATUS_DEAD)
      return Status::Error(EBUSY, "not shrinking " + name + ": it is " +
                                      StatusName(e.record.status) + " on " +
                                      mapping::WhereMapped(e.record) + "; unmap it first");
    if (std::string busy = e.sharing.BusyReason(name); !busy.empty())
      return Status::Error(EBUSY, "not shrinking " + name + ": it" + busy.substr(busy.find(" is ")) +
                                      "; shrink it when no client has it open");
  }
  e.changing = "resized";
  e.no_opens = size < e.record.size;
  return Status();
}

void BackstoreRegistry::SetOpenSize(const std::string& name, uint64_t size) {
  MutexLock l(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  // An open that began before the object changed may have read the old
  // size: wait for it, then set the size on what is open.
  l.Wait(&open_done_, [&] { return !it->second.sharing.IsOpening(); });
  if (auto open = it->second.sharing.Current()) open->SetSize(size);
}

Status BackstoreRegistry::SaveSize(const std::string& type, const std::string& key,
                                   uint64_t size) {
  return UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
    e.record.size = size;
    return Status();
  });
}

Status BackstoreRegistry::Shrink(const std::string& type, const std::string& key,
                                 uint64_t old_size, uint64_t size) {
  // Nothing has it open or mapped. The record first: a failed save
  // changes nothing, and the object never holds less than recorded.
  if (Status s = SaveSize(type, key, size); !s.ok()) return s;
  Status s = handlers_->Find(type)->Resize(key, size, /*may_shrink=*/true);
  if (!s.ok())
    if (Status back = SaveSize(type, key, old_size); !back.ok())
      LOG_ERROR(MakeExportName(type, key), "the shrink failed and the record cannot say %s "
                "again (%s): it says %s until the next open finds the real size",
                FormatSize(old_size).c_str(), back.message().c_str(), FormatSize(size).c_str());
  return s;
}

Status BackstoreRegistry::Grow(const std::string& type, const std::string& key,
                               uint64_t old_size, uint64_t size) {
  if (Status s = handlers_->Find(type)->Resize(key, size, /*may_shrink=*/false); !s.ok())
    return s;
  // Served before the record says it, so that nbd-clid, which grows
  // devices from the record, never sends what the export would refuse.
  const std::string name = MakeExportName(type, key);
  SetOpenSize(name, size);
  Status s = SaveSize(type, key, size);
  if (!s.ok()) {
    // Clients may already have written past the old end: the object
    // stays grown, and the next open makes the record follow.
    LOG_ERROR(name, "grown to %s but saveconfig.json still says %s (%s)",
              FormatSize(size).c_str(), FormatSize(old_size).c_str(), s.message().c_str());
    return s.WithContext("grown to " + FormatSize(size) + ", but the record is not");
  }
  return Status();
}

Expected<std::pair<uint64_t, uint64_t>> BackstoreRegistry::Resize(const std::string& type,
                                                                  const std::string& key,
                                                                  uint64_t size, bool shrink) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  const std::string name = MakeExportName(type, key);
  uint64_t old_size = 0;
  if (Status s = BeginResize(name, size, shrink, &old_size); !s.ok()) return s;
  Status s;
  if (size < old_size) s = Shrink(type, key, old_size, size);
  else if (size > old_size) s = Grow(type, key, old_size, size);
  EndObjectChange(name);
  if (!s.ok()) return s;
  if (size != old_size)
    LOG_INFO(name, "resized: %s -> %s", FormatSize(old_size).c_str(), FormatSize(size).c_str());
  return std::make_pair(old_size, size);
}

}  // namespace nbdr
