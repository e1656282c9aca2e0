// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Client mapping records; see mapping_state.h.
#include "cli/mapping_state.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "utils/atomic_file.h"
#include "utils/hex.h"
#include "utils/json_ptr.h"
#include "utils/unique_fd.h"

namespace nbdr {

namespace {

// An array of strings member ("runners", "left"); anything else in it,
// or another type, reads as unset.
std::vector<std::string> Strings(json_object* e, const char* name) {
  std::vector<std::string> out;
  json_object* list = nullptr;
  if (!json_object_object_get_ex(e, name, &list) || !json_object_is_type(list, json_type_array))
    return out;
  for (size_t i = 0; i < json_object_array_length(list); i++)
    if (json_object* v = json_object_array_get_idx(list, i); json_object_is_type(v, json_type_string))
      out.push_back(json_object_get_string(v));
  return out;
}


std::string Dir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

void MakeDirs(const std::string& path) {
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    std::string cur = path.substr(0, pos);
    if (!cur.empty()) mkdir(cur.c_str(), 0755);
  }
}

Expected<std::vector<MappingRecord>> ParseLocked(const std::string& path) {
  std::ifstream in(path);
  std::vector<MappingRecord> out;
  if (!in) {
    if (access(path.c_str(), F_OK) != 0 && errno == ENOENT) return out;  // no file yet
    return PosixError("cannot read " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  JsonPtr owner(json_tokener_parse(ss.str().c_str()));
  json_object* root = owner.get();
  if (!root || !json_object_is_type(root, json_type_array)) {
    return Status::Error(EINVAL, path + ": not a JSON array of mappings (left untouched)");
  }
  for (size_t i = 0; i < json_object_array_length(root); i++) {
    json_object* e = json_object_array_get_idx(root, i);
    auto str = [&](const char* k) {
      json_object* v = nullptr;
      // Only a string counts: a hand-edited null or number reads as unset.
      return json_object_object_get_ex(e, k, &v) && json_object_is_type(v, json_type_string)
                 ? std::string(json_object_get_string(v))
                 : std::string();
    };
    auto num = [&](const char* k) {
      json_object* v = nullptr;
      return json_object_object_get_ex(e, k, &v) ? json_object_get_int64(v) : 0;
    };
    MappingRecord m;
    m.device = str("device");
    m.type = str("type");
    m.key = str("key");
    m.runner = str("runner");
    m.connections = static_cast<int>(num("connections"));
    m.timeout_s = static_cast<uint64_t>(num("timeout"));
    m.dead_timeout_s = static_cast<uint64_t>(num("dead_timeout"));
    json_object* ro = nullptr;
    m.readonly = json_object_object_get_ex(e, "readonly", &ro) && json_object_get_boolean(ro);
    m.map_time = str("map_time");
    m.host_id = str("host_id");
    m.serving = str("serving");
    m.runners = Strings(e, "runners");
    m.left = Strings(e, "left");
    m.tls.psk_identity = str("tls_psk_identity");
    m.tls.certificates_dir = str("tls_certificates");
    if (!m.tls.psk_identity.empty() && !DecodeHex(str("tls_psk_key"), &m.tls.psk_key))
      return Status::Error(EINVAL, path + ": the TLS key of " + m.device +
                                       " is not hexadecimal (left untouched)");
    out.push_back(m);
  }
  return out;
}

Status StoreLocked(const std::string& path, const std::vector<MappingRecord>& records) {
  JsonPtr owner(json_object_new_array());
  json_object* root = owner.get();
  for (const auto& m : records) {
    json_object* e = json_object_new_object();
    json_object_object_add(e, "device", json_object_new_string(m.device.c_str()));
    json_object_object_add(e, "type", json_object_new_string(m.type.c_str()));
    json_object_object_add(e, "key", json_object_new_string(m.key.c_str()));
    json_object_object_add(e, "runner", json_object_new_string(m.runner.c_str()));
    json_object_object_add(e, "connections", json_object_new_int(m.connections));
    json_object_object_add(e, "timeout", json_object_new_int64(static_cast<int64_t>(m.timeout_s)));
    json_object_object_add(e, "dead_timeout",
                           json_object_new_int64(static_cast<int64_t>(m.dead_timeout_s)));
    json_object_object_add(e, "readonly", json_object_new_boolean(m.readonly));
    json_object_object_add(e, "map_time", json_object_new_string(m.map_time.c_str()));
    json_object_object_add(e, "host_id", json_object_new_string(m.host_id.c_str()));
    AddStringArray(e, "runners", m.runners);
    AddStringArray(e, "left", m.left);
    if (!m.serving.empty())
      json_object_object_add(e, "serving", json_object_new_string(m.serving.c_str()));
    if (!m.tls.psk_identity.empty()) {
      json_object_object_add(e, "tls_psk_identity",
                             json_object_new_string(m.tls.psk_identity.c_str()));
      json_object_object_add(e, "tls_psk_key",
                             json_object_new_string(EncodeHex(m.tls.psk_key).c_str()));
    }
    if (!m.tls.certificates_dir.empty())
      json_object_object_add(e, "tls_certificates",
                             json_object_new_string(m.tls.certificates_dir.c_str()));
    json_object_array_add(root, e);
  }
  std::string text = json_object_to_json_string_ext(
      root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  text += '\n';
  // A directory that cannot be synced leaves the new records in place; a
  // power loss may bring the old ones back, which nbd-clid tolerates.
  // Only root reads it: a TLS mapping's record holds its PSK.
  return WriteFileAtomically(path, text, 0600);
}

// Runs fn on the records with the state file locked, then stores them.
template <typename Fn>
Status Update(Fn fn) {
  std::string path = MappingStatePath();
  MakeDirs(Dir(path));
  UniqueFd lock(open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid() || flock(lock.get(), LOCK_EX) < 0) return PosixError("lock " + path);
  auto records = ParseLocked(path);
  if (!records) return records.status();
  fn(&*records);
  return StoreLocked(path, *records);
}

}  // namespace

std::string MappingStatePath() {
  const char* env = getenv("NBD_CLI_STATE");
  return env && *env ? env : "/var/lib/nbd-cli/mappings.json";
}

Status RecordMapping(const MappingRecord& m) {
  return Update([&](std::vector<MappingRecord>* v) {
    std::erase_if(*v, [&](const MappingRecord& r) { return r.device == m.device; });
    v->push_back(m);
  });
}

Status ForgetMapping(const MappingRecord& m) {
  return Update([&](std::vector<MappingRecord>* v) {
    std::erase_if(*v, [&](const MappingRecord& r) {
      return r.device == m.device && r.runner == m.runner && r.type == m.type && r.key == m.key;
    });
  });
}

Expected<std::vector<MappingRecord>> LoadMappings() { return ParseLocked(MappingStatePath()); }

Expected<std::optional<MappingRecord>> FindMapping(const std::string& device,
                                                   const std::string& type,
                                                   const std::string& key) {
  auto mine = LoadMappings();
  if (!mine) return mine.status();
  for (auto& m : *mine)
    if (m.device == device && m.type == type && m.key == key)
      return std::optional<MappingRecord>(std::move(m));
  return std::optional<MappingRecord>();
}

}  // namespace nbdr
