// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Keys nbd-runner mints for backstores with auth; see minted_keys.h.
#include "runner/minted_keys.h"

#include <json-c/json.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "utils/atomic_file.h"
#include "utils/hex.h"
#include "utils/json_ptr.h"
#include "utils/random.h"

namespace nbdr {

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kIdentityBytes = 16;
constexpr char kIdentityPrefix[] = "nbdr-";

}  // namespace

Status MintedKeys::Load() {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) return errno == ENOENT ? Status() : PosixError(path_);
  if ((st.st_mode & 077) != 0)
    return Status::Error(EPERM, path_ + " holds secret keys but group or others may use it; "
                                        "run chmod 600 " + path_);
  std::ifstream in(path_);
  std::stringstream text;
  text << in.rdbuf();
  JsonPtr root(json_tokener_parse(text.str().c_str()));
  auto bad = [&](const std::string& why) { return Status::Error(EINVAL, path_ + ": " + why); };
  if (!root || !json_object_is_type(root.get(), json_type_object)) return bad("not a JSON object");
  std::map<std::string, Entry> keys;
  json_object_object_foreach(root.get(), identity, value) {
    json_object *exp = nullptr, *key = nullptr;
    std::string raw;
    if (!json_object_is_type(value, json_type_object) ||
        !json_object_object_get_ex(value, "export", &exp) ||
        !json_object_object_get_ex(value, "key", &key) || !json_object_is_type(exp, json_type_string) ||
        !json_object_is_type(key, json_type_string) || !DecodeHex(json_object_get_string(key), &raw) ||
        raw.size() != kKeyBytes)
      return bad(std::string("entry '") + identity + "' is not {\"export\": ..., \"key\": HEX}");
    keys[identity] = {json_object_get_string(exp), json_object_get_string(key)};
  }
  MutexLock l(&mu_);
  keys_ = std::move(keys);
  return Status();
}

Status MintedKeys::SaveLocked(const std::map<std::string, Entry>& keys) const {
  JsonPtr root(json_object_new_object());
  for (const auto& [identity, e] : keys) {
    json_object* o = json_object_new_object();
    json_object_object_add(o, "export", json_object_new_string(e.export_name.c_str()));
    json_object_object_add(o, "key", json_object_new_string(e.key_hex.c_str()));
    json_object_object_add(root.get(), identity.c_str(), o);
  }
  std::string text = json_object_to_json_string_ext(root.get(), JSON_C_TO_STRING_PRETTY |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
  text += '\n';
  return WriteFileAtomically(path_, text, 0600);
}

Expected<MintedKeys::Minted> MintedKeys::Mint(const std::string& export_name) {
  auto id = RandomBytes(kIdentityBytes);
  if (!id) return id.status();
  auto key = RandomBytes(kKeyBytes);
  if (!key) return key.status();
  Minted m{std::string(kIdentityPrefix) + EncodeHex(*id), EncodeHex(*key)};
  MutexLock l(&mu_);
  auto next = keys_;
  next[m.identity] = {export_name, m.key_hex};
  if (Status s = SaveLocked(next); !s.ok()) return s.WithContext("minting a key");
  keys_ = std::move(next);
  return m;
}

Status MintedKeys::Forget(const std::vector<std::string>& identities) {
  MutexLock l(&mu_);
  auto next = keys_;
  for (const auto& id : identities) next.erase(id);
  if (next.size() == keys_.size()) return Status();
  if (Status s = SaveLocked(next); !s.ok()) return s.WithContext("forgetting minted keys");
  keys_ = std::move(next);
  return Status();
}

std::vector<std::string> MintedKeys::IdentitiesOf(const std::string& export_name) const {
  MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [identity, e] : keys_)
    if (e.export_name == export_name) out.push_back(identity);
  return out;
}

std::optional<std::string> MintedKeys::ExportOf(const std::string& identity) const {
  MutexLock l(&mu_);
  auto it = keys_.find(identity);
  if (it == keys_.end()) return std::nullopt;
  return it->second.export_name;
}

std::optional<std::string> MintedKeys::Key(const std::string& identity) const {
  MutexLock l(&mu_);
  auto it = keys_.find(identity);
  std::string raw;
  if (it == keys_.end() || !DecodeHex(it->second.key_hex, &raw)) return std::nullopt;
  return raw;
}

}  // namespace nbdr
