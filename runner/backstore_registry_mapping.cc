// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The mapping calls of BackstoreRegistry: begin, confirm, unmap, a lost
// connection, and the expiry of maps never confirmed (their state machine
// is in mapping_machine.cc); see backstore_registry.h.
#include <time.h>

#include "runner/backstore_registry.h"
#include "runner/backstore_registry_update.h"
#include "utils/log.h"
#include "utils/names.h"

namespace nbdr {

namespace {
int64_t MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}
}  // namespace

bool BackstoreRegistry::ExpireMappingsLocked() {
  int64_t now = MonotonicSeconds();
  bool changed = false;
  const int timeout = mapping_timeout_s_;
  for (auto& [name, e] : entries_) {
    // A client that connected its device and then died before NBDR_MAPPED
    // leaves a live device: while it has NBD connections the map stays
    // (no second client may map it), and expires once they are gone.
    if (!e.sharing.InUse() && mapping::Expire(&e.record, &e.map, now, timeout)) {
      LOG_WARN(name, "mapping not confirmed within %d s; back to created", timeout);
      changed = true;
    }
  }
  return changed;
}

void BackstoreRegistry::ExpireMappings() {
  if (!save_mu_.TryLock()) return;
  bool changed;
  {
    MutexLock l(&mu_);
    changed = ExpireMappingsLocked();
  }
  if (changed) {
    if (Status s = SaveLocked(); !s.ok())
      LOG_ERROR("registry", "expired mappings not persisted: %s", s.message().c_str());
  }
  save_mu_.Unlock();
}

Expected<BackstoreRegistry::MapGrant> BackstoreRegistry::BeginMap(const std::string& type,
                                                                  const std::string& key,
                                                                  const MapCaller& caller) {
  if (Status s = CheckHandler(type); !s.ok()) return s;
  MapGrant out;
  Status s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
    if (Status s = mapping::Begin(&e.record, &e.map, caller, MonotonicSeconds(), last_map_token_ + 1);
        !s.ok())
      return s;
    last_map_token_++;
    e.mapper_address = caller.address;
    mapper_changes_.fetch_add(1, std::memory_order_release);
    out.record = e.record;
    out.token = e.map.token;
    return Status();
  });
  if (!s.ok()) return s;
  LOG_INFO(out.record.ExportName(), "mapping by %s (%s)",
           caller.host.empty() ? "an unnamed client" : caller.host.c_str(),
           caller.identity.empty() ? "no identity" : caller.identity.c_str());
  return out;
}

Status BackstoreRegistry::ConfirmMapped(const std::string& type, const std::string& key,
                                        const std::string& device, const MapCaller& caller,
                                        uint64_t token) {
  Status s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
    Status s = mapping::Confirm(&e.record, e.map, device, caller, token, NowIso8601());
    if (s.ok()) {
      e.mapper_address = caller.address;
      mapper_changes_.fetch_add(1, std::memory_order_release);
    }
    return s;
  });
  if (s.ok())
    LOG_INFO(MakeExportName(type, key), "mapped on %s of %s", device.c_str(),
             caller.host.empty() ? "an unnamed client" : caller.host.c_str());
  return s;
}

Status BackstoreRegistry::Unmap(const std::string& type, const std::string& key,
                               const MapCaller& caller, const UnmapOnly& only) {
  Status s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) {
    return mapping::Unmap(&e.record, &e.map, caller, only);
  });
  if (s.ok()) LOG_INFO(MakeExportName(type, key), "unmapped");
  return s;
}

void BackstoreRegistry::NoteConnectionLost(const std::string& export_name) {
  MutexLock save(&save_mu_);
  {
    MutexLock l(&mu_);
    auto it = entries_.find(export_name);
    if (it == entries_.end() || it->second.sharing.IsOpen()) return;  // others still serve it
    if (!mapping::ConnectionLost(&it->second.record)) return;
    LOG_WARN(export_name, "NBD connection of %s dropped without a disconnect; now dead until "
             "its client reconnects", mapping::WhereMapped(it->second.record).c_str());
  }
  if (Status s = SaveLocked(); !s.ok())
    LOG_ERROR(export_name, "dead state not persisted: %s", s.message().c_str());
}

}  // namespace nbdr
