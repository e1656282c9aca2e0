// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The part of BackstoreRegistry that decides who may open a backstore over
// NBD: its access list of TLS identities (BackstoreRecord::tls_allow), and
// the keys minted for backstores with auth (minted_keys.h); see
// backstore_registry.h.
#include <algorithm>
#include <cerrno>
#include <optional>

#include "runner/backstore_registry.h"
#include "runner/backstore_registry_update.h"
#include "utils/log.h"
#include "utils/names.h"

namespace nbdr {

bool BackstoreRegistry::MayOpen(const BackstoreRecord& record,
                                const std::string& tls_identity) const {
  // A key minted for one backstore opens that one only, even where a list
  // is empty (open to every client that passed TLS).
  if (minted_ && tls_identity.starts_with("psk:")) {
    std::optional<std::string> owner = minted_->ExportOf(tls_identity.substr(4));
    // (a snapshot's export is its backstore's)
    if (owner && *owner != MakeExportName(record.type, record.key)) return false;
  }
  if (record.tls_allow.empty()) return true;
  return !tls_identity.empty() && std::find(record.tls_allow.begin(), record.tls_allow.end(),
                                            tls_identity) != record.tls_allow.end();
}

Expected<BackstoreRegistry::AccessResult> BackstoreRegistry::ChangeAccess(
    const std::string& type, const std::string& key, AccessChange change,
    const std::vector<std::string>& identities) {
  const std::string name = MakeExportName(type, key);
  switch (change) {
    case AccessChange::kShow: {
      auto rec = Get(type, key);
      if (!rec) return rec.status();
      return AccessResult{rec->tls_allow, ""};
    }
    case AccessChange::kAuthEnable: {
      if (!minted_)
        return Status::Error(EOPNOTSUPP, "auth needs TLS on this runner (tls = on or require)");
      if (auto rec = Get(type, key); !rec) return rec.status();
      auto minted = minted_->Mint(name);
      if (!minted) return minted.status();
      auto list = EditAccessList(type, key, AccessChange::kAllow, {"psk:" + minted->identity});
      if (!list) {
        (void)minted_->Forget({minted->identity});
        return list.status();
      }
      LOG_INFO(name, "auth: key minted for psk:%s", minted->identity.c_str());
      return AccessResult{*list, minted->PskLine()};
    }
    case AccessChange::kAuthDisable: {
      if (!minted_)
        return Status::Error(EOPNOTSUPP, "auth needs TLS on this runner (tls = on or require)");
      std::vector<std::string> ids;
      for (const auto& id : minted_->IdentitiesOf(name)) ids.push_back("psk:" + id);
      auto list = EditAccessList(type, key, AccessChange::kAuthDisable, ids);
      if (!list) return list.status();
      ForgetMintedKeys(name);
      return AccessResult{*list, ""};
    }
    default: {
      auto list = EditAccessList(type, key, change, identities);
      if (!list) return list.status();
      return AccessResult{*list, ""};
    }
  }
}

Expected<BackstoreRegistry::CreatedWithAuth> BackstoreRegistry::CreateWithAuth(
    CreateParams params) {
  if (!minted_)
    return Status::Error(EOPNOTSUPP, "auth needs TLS on this runner (tls = on or require)");
  const std::string name = MakeExportName(params.type, params.key);
  auto minted = minted_->Mint(name);
  if (!minted) return minted.status();
  params.tls_allow = {"psk:" + minted->identity};
  if (Status s = Create(params); !s.ok()) {
    (void)minted_->Forget({minted->identity});
    return s;
  }
  LOG_INFO(name, "auth: key minted for psk:%s", minted->identity.c_str());
  return CreatedWithAuth{params.size, AccessResult{params.tls_allow, minted->PskLine()}};
}

void BackstoreRegistry::ForgetMintedKeys(const std::string& export_name) {
  if (!minted_) return;
  if (Status s = minted_->Forget(minted_->IdentitiesOf(export_name)); !s.ok())
    LOG_ERROR(export_name, "its minted keys stay in the key file (no access list names them): %s",
              s.message().c_str());
}

Expected<std::vector<std::string>> BackstoreRegistry::EditAccessList(
    const std::string& type, const std::string& key, AccessChange change,
    const std::vector<std::string>& identities) {
  std::vector<std::string> after;
  Status s = UpdateAndSave(type, key, [&](Entry& e) REQUIRES(mu_) -> Status {
    std::vector<std::string> allow = e.record.tls_allow;  // changed only when all is well
    if (change == AccessChange::kOpen) allow.clear();
    for (const auto& id : identities) {
      auto at = std::find(allow.begin(), allow.end(), id);
      if (change == AccessChange::kAllow && at == allow.end()) allow.push_back(id);
      if ((change == AccessChange::kDeny || change == AccessChange::kAuthDisable) &&
          at != allow.end())
        allow.erase(at);
    }
    // Only an explicit open (or turning auth off) may leave the list empty.
    if (change == AccessChange::kDeny && !e.record.tls_allow.empty() && allow.empty())
      return Status::Error(EPERM, std::string("denying every identity on its list would open ") +
                                      MakeExportName(type, key) +
                                      " to every client; 'modify KEY open' does that on purpose");
    e.record.tls_allow = allow;
    after = allow;
    return Status();
  });
  if (!s.ok()) return s;
  std::string list;
  for (const auto& id : after) list += (list.empty() ? "" : ", ") + id;
  LOG_INFO(MakeExportName(type, key), "access: %s", after.empty() ? "any client" : list.c_str());
  return after;
}

}  // namespace nbdr
