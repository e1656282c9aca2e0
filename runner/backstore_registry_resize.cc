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
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.creating)
    return Status::Error(ENOENT, "backstore " + name + " does not exist");
  Entry& e = it->second;
  if (e.busy) return Status::Error(EBUSY, "backstore " + name + " is being created or deleted");
  if (e.resizing_to) return Status::Error(EBUSY, "backstore " + name + " is being resized");
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
    if (e.record.status == NBDR_STATUS_MAPPING || e.record.status == NBDR_STATUS_MAPPED ||
        e.record.status == NBDR_STATUS_DEAD)
      return Status::Error(EBUSY, "not shrinking " + name + ": it is " +
                                      StatusName(e.record.status) + " on " +
                                      mapping::WhereMapped(e.record) + "; unmap it first");
    if (std::string busy = e.sharing.BusyReason(name); !busy.empty())
      return Status::Error(EBUSY, "not shrinking " + name + ": it" + busy.substr(busy.find(" is ")) +
                                      "; shrink it when no client has it open");
  }
  e.resizing_to = size;
  return Status();
}

void BackstoreRegistry::EndResize(const std::string& name, bool done) {
  MutexLock l(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  // An open that began before the handler resized the object may have
  // read the old size: wait for it, then set the new size on what is open.
  l.Wait(&open_done_, [&] { return !it->second.sharing.IsOpening(); });
  if (done)
    if (auto open = it->second.sharing.Current()) open->SetSize(it->second.resizing_to);
  it->second.resizing_to = 0;
}

Expected<std::pair<uint64_t, uint64_t>> BackstoreRegistry::Resize(const std::string& type,
                                                                  const std::string& key,
                                                                  uint64_t size, bool shrink) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  const std::string name = MakeExportName(type, key);
  uint64_t old_size = 0;
  if (Status s = BeginResize(name, size, shrink, &old_size); !s.ok()) return s;
  if (size == old_size) {
    EndResize(name, false);
    return std::make_pair(old_size, size);
  }
  const LoadedHandler* h = handlers_->Find(type);
  Status s = h->Resize(key, size);
  if (s.ok()) {
    s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
      e.record.size = size;
      return Status();
    });
    if (!s.ok()) {
      // The object changed but the record could not: put the object back
      // (a grow loses nothing; a shrink already lost its tail).
      Status back = h->Resize(key, old_size);
      LOG_ERROR(name, "resized to %s but saveconfig.json was not updated (%s); %s",
                FormatSize(size).c_str(), s.message().c_str(),
                back.ok() ? "the backing object is back at its old size"
                          : ("and it could not be put back: " + back.message()).c_str());
    }
  }
  EndResize(name, s.ok());
  if (!s.ok()) return s;
  LOG_INFO(name, "resized: %s -> %s", FormatSize(old_size).c_str(), FormatSize(size).c_str());
  return std::make_pair(old_size, size);
}

}  // namespace nbdr
