// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// BackstoreRegistry::UpdateAndSave, for the registry's .cc files that
// change one entry and persist it (mapping, access lists, runner sets).
// Include only from them, after backstore_registry.h.
#pragma once

#include "runner/backstore_registry.h"
#include "utils/names.h"

namespace nbdr {

template <typename Fn>
Status BackstoreRegistry::UpdateAndSave(const std::string& type, const std::string& key,
                                        Fn change) {
  if (Status s = ValidateType(type); !s.ok()) return s;
  if (Status s = ValidateKey(key); !s.ok()) return s;
  std::string name = MakeExportName(type, key);
  MutexLock save(&save_mu_);
  BackstoreRecord before;
  MapTicket map_before;
  {
    MutexLock l(&mu_);
    ExpireMappingsLocked();
    auto it = entries_.find(name);
    if (it == entries_.end() || it->second.creating)
      return Status::Error(ENOENT, "backstore " + name + " does not exist");
    if (it->second.busy)
      return Status::Error(EBUSY, "backstore " + name + " is being created or deleted");
    before = it->second.record;
    map_before = it->second.map;
    if (Status s = change(it->second); !s.ok()) return s;
  }
  Status s = SaveLocked();
  if (!s.ok()) {
    MutexLock l(&mu_);
    auto it = entries_.find(name);
    if (it != entries_.end()) {
      it->second.record = before;
      it->second.map = map_before;
    }
    return s.WithContext(name);
  }
  return Status();
}

}  // namespace nbdr
