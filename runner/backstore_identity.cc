// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Backing objects' identities, and the registry's checks on them: whether
// a backstore's object is still the one registered, and whether another
// backstore holds the same object; see backstore_identity.h and
// backstore_registry.h.
#include "runner/backstore_identity.h"

#include <json-c/json.h>

#include <cerrno>

#include "runner/backstore_registry.h"
#include "utils/json_ptr.h"
#include "utils/log.h"
#include "utils/names.h"

namespace nbdr {

Expected<std::string> CanonicalIdentity(const std::string& text) {
  JsonPtr o(json_tokener_parse(text.c_str()));
  if (!o || !json_object_is_type(o.get(), json_type_object))
    return Status::Error(EPROTO, "the handler described the object as '" + text +
                                     "', not a JSON object");
  return std::string(json_object_to_json_string_ext(o.get(), JSON_C_TO_STRING_PLAIN));
}

bool SameIdentity(const std::string& a, const std::string& b) {
  JsonPtr x(json_tokener_parse(a.c_str())), y(json_tokener_parse(b.c_str()));
  return x && y && json_object_equal(x.get(), y.get());
}

bool HasIdentity(const BackstoreRecord& r) {
  return !r.extras_json.empty() && r.extras_json != "{}";
}

Status SameObjectError(const std::string& name, const std::string& other) {
  return Status::Error(EEXIST, name + " is the same object as the registered " + other +
                                   " (another path to it); use " + other);
}

// The identity of key's backing object now, canonical; "" when the handler
// keeps none or cannot tell (logged).
std::string BackstoreRegistry::CurrentIdentity(const LoadedHandler* h, const std::string& key) {
  std::string name = MakeExportName(h->name(), key);
  auto id = h->Identify(key);
  if (!id) {
    LOG_WARN(name, "cannot tell which object this is: %s", id.status().message().c_str());
    return "";
  }
  if (id->empty()) return "";
  auto canonical = CanonicalIdentity(*id);
  if (!canonical) {
    LOG_WARN(name, "%s", canonical.status().message().c_str());
    return "";
  }
  return *canonical;
}

BackstoreRegistry::ObjectCheck BackstoreRegistry::CheckObject(
    const BackstoreRecord& record) const {
  const LoadedHandler* h = handlers_->Find(record.type);
  if (!h || !HasIdentity(record) || !h->CanIdentify()) return {};
  auto id = h->Identify(record.key);
  if (!id && id.status().code() == ENOENT)
    return {ObjectCheck::kMissing, "its backing object cannot be found: " + id.status().message(),
            ENOENT};
  if (!id)
    return {ObjectCheck::kUnknown, "its backing object cannot be checked: " +
                                       id.status().message(), id.status().code()};
  auto now = id->empty() ? Expected<std::string>("") : CanonicalIdentity(*id);
  if (!now || now->empty()) return {};
  if (SameIdentity(*now, record.extras_json)) return {};
  return {ObjectCheck::kReplaced, "its backing object was replaced since it was registered "
                                  "(registered " + record.extras_json + ", now " + *now + ")",
          ESTALE};
}

std::map<std::string, BackstoreRecord> BackstoreRegistry::HoldersLocked(
    const std::string& type, const std::string& identity, const std::string& except) const {
  std::map<std::string, BackstoreRecord> holders;
  for (const auto& [name, e] : entries_)
    if (name != except && !e.creating && e.record.type == type && HasIdentity(e.record) &&
        SameIdentity(identity, e.record.extras_json))
      holders.emplace(name, e.record);
  return holders;
}

std::string BackstoreRegistry::RegisteredAs(const std::string& type, const std::string& identity,
                                            const std::string& except,
                                            const std::set<std::string>& stale) const {
  for (const auto& [name, record] : HoldersLocked(type, identity, except))
    if (!stale.count(name)) return name;
  return "";
}

std::set<std::string> BackstoreRegistry::StaleHolders(const std::string& type,
                                                      const std::string& identity,
                                                      const std::string& except) const {
  std::map<std::string, BackstoreRecord> holders;
  {
    MutexLock l(&mu_);
    holders = HoldersLocked(type, identity, except);
  }
  std::set<std::string> stale;
  for (const auto& [name, record] : holders) {
    ObjectCheck c = CheckObject(record);
    if (c.state == ObjectCheck::kMissing || c.state == ObjectCheck::kReplaced)
      stale.insert(name);
  }
  return stale;
}

}  // namespace nbdr
