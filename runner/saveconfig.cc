// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// saveconfig.json persistence; see saveconfig.h.
#include "runner/saveconfig.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>

#include "nbd_rpc.h"
#include "utils/atomic_file.h"
#include "utils/json_ptr.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/net.h"
#include "utils/unique_fd.h"

namespace nbdr {

namespace {

constexpr int kSaveconfigVersion = 1;

Status Corrupt(const std::string& origin, const std::string& why) {
  return Status::Error(EINVAL, origin + ": " + why);
}

// Reads a member of obj with the expected type; missing optional members
// leave *out unchanged.
bool GetMember(json_object* obj, const char* name, json_type type, json_object** out) {
  json_object* v = nullptr;
  if (!json_object_object_get_ex(obj, name, &v) || v == nullptr) return false;
  if (!json_object_is_type(v, type)) return false;
  *out = v;
  return true;
}

// An optional array of strings, each checked by validate: "tls_allow"
// (the TLS identities that may open the backstore; none: any client) and
// "runners" (its runner set; none: this runner only).
Status ReadStringList(json_object* e, const char* name, Status (*validate)(std::string_view),
                      std::vector<std::string>* out) {
  json_object* list = nullptr;
  if (!json_object_object_get_ex(e, name, &list)) return Status();
  const std::string quoted = std::string("'") + name + "'";
  if (!json_object_is_type(list, json_type_array))
    return Status::Error(EINVAL, quoted + " is not an array");
  for (size_t i = 0; i < json_object_array_length(list); i++) {
    json_object* item = json_object_array_get_idx(list, i);
    if (!json_object_is_type(item, json_type_string))
      return Status::Error(EINVAL, quoted + " holds something other than a string");
    std::string text = json_object_get_string(item);
    if (Status s = validate(text); !s.ok())
      return Status::Error(EINVAL, quoted + ": " + s.message());
    out->push_back(std::move(text));
  }
  return Status();
}

// "2026-11-22T16:10:20Z", as NowIso8601 writes it.
bool IsIso8601(const std::string& t) {
  static constexpr char kShape[] = "dddd-dd-ddTdd:dd:ddZ";
  if (t.size() != sizeof kShape - 1) return false;
  for (size_t i = 0; i < t.size(); i++)
    if (kShape[i] == 'd' ? !isdigit(static_cast<unsigned char>(t[i])) : t[i] != kShape[i])
      return false;
  return true;
}

// A loaded record holds only what the runner itself could have stored:
// each field within the limits the control protocol enforces, so that one
// hand-edited record cannot make LIST or INFO unencodable for all.
Status ValidateRecord(const BackstoreRecord& r) {
  if (!r.device.empty() && ParseNbdDevice(r.device) < 0)
    return Status::Error(EINVAL, "'device' is not /dev/nbdN");
  if (!r.client.empty())
    if (Status s = ValidateHostId(r.client); !s.ok())
      return Status::Error(EINVAL, "'client': " + s.message());
  if (!r.owner.empty() && r.owner != "uid:0")
    if (Status s = ValidateTlsIdentity(r.owner); !s.ok())
      return Status::Error(EINVAL, "'owner': " + s.message());
  if (!r.map_time.empty() && !IsIso8601(r.map_time))
    return Status::Error(EINVAL, "'map_time' is not a time like 2026-11-22T16:10:20Z");
  if (!r.create_time.empty() && !IsIso8601(r.create_time))
    return Status::Error(EINVAL, "'create_time' is not a time like 2026-11-22T16:10:20Z");
  if (!r.rolling_back.empty())
    if (Status s = ValidateSnapshotName(r.rolling_back); !s.ok())
      return Status::Error(EINVAL, "'rolling_back': " + s.message());
  if (r.extras_json.size() > NBDR_MAX_MSG)
    return Status::Error(EINVAL,
                         "'extras' is longer than " + std::to_string(NBDR_MAX_MSG) + " bytes");
  if (r.tls_allow.size() > NBDR_MAX_IDENTITIES)
    return Status::Error(EINVAL, "'tls_allow' holds more than " +
                                     std::to_string(NBDR_MAX_IDENTITIES) + " identities");
  if (Status s = ValidateRunnerSet(r.runners); !s.ok())
    return Status::Error(EINVAL, "'runners': " + s.message());
  return Status();
}

// The members of one record's JSON object. An optional member of another
// type is an error, not a default.
class MemberReader {
 public:
  explicit MemberReader(json_object* e) : e_(e) {}

  json_object* Optional(const char* name, json_type type) {
    json_object* m = nullptr;
    if (!json_object_object_get_ex(e_, name, &m) || m == nullptr) return nullptr;
    if (json_object_is_type(m, type)) return m;
    if (wrong_type_.empty()) wrong_type_ = name;
    return nullptr;
  }
  void String(const char* name, std::string* dst) {
    if (json_object* m = Optional(name, json_type_string)) *dst = json_object_get_string(m);
  }
  void Bool(const char* name, bool* dst) {
    if (json_object* m = Optional(name, json_type_boolean)) *dst = json_object_get_boolean(m);
  }
  Status NeedString(const char* name, std::string* dst) {
    json_object* m = nullptr;
    if (!GetMember(e_, name, json_type_string, &m))
      return Status::Error(EINVAL, std::string("missing string '") + name + "'");
    *dst = json_object_get_string(m);
    return Status();
  }
  Status Finish() const {
    if (wrong_type_.empty()) return Status();
    return Status::Error(EINVAL, "'" + wrong_type_ + "' has the wrong JSON type");
  }

 private:
  json_object* e_;
  std::string wrong_type_;
};

// size and block_size of a record.
Status ReadSize(json_object* e, MemberReader* m, BackstoreRecord* r) {
  json_object* v = nullptr;
  if (!GetMember(e, "size", json_type_int, &v) || json_object_get_int64(v) <= 0)
    return Status::Error(EINVAL, "missing or non-positive 'size'");
  r->size = static_cast<uint64_t>(json_object_get_int64(v));
  if (json_object* bs = m->Optional("block_size", json_type_int)) {
    int64_t n = json_object_get_int64(bs);
    if (n != 512 && n != 4096) return Status::Error(EINVAL, "block_size must be 512 or 4096");
    r->block_size = static_cast<uint32_t>(n);
  }
  if (r->size % r->block_size != 0)
    return Status::Error(EINVAL, "size " + std::to_string(r->size) +
                                     " is not a multiple of its block size " +
                                     std::to_string(r->block_size));
  return Status();
}

// One entry of "backstores"; *where ("backstore #3") gains its export name
// once known, for the caller's message.
Expected<BackstoreRecord> ParseRecord(json_object* e, std::string* where) {
  if (!json_object_is_type(e, json_type_object)) return Status::Error(EINVAL, "not an object");
  MemberReader m(e);
  BackstoreRecord r;
  if (Status s = m.NeedString("type", &r.type); !s.ok()) return s;
  if (Status s = m.NeedString("key", &r.key); !s.ok()) return s;
  if (Status s = ValidateType(r.type); !s.ok()) return s;
  if (Status s = ValidateKey(r.key); !s.ok()) return s;
  *where += " (" + r.ExportName() + ")";
  if (Status s = ReadSize(e, &m, &r); !s.ok()) return s;
  m.Bool("readonly", &r.readonly);
  m.Bool("prealloc", &r.prealloc);
  std::string status_text = StatusName(r.status);
  m.String("status", &status_text);
  auto status = ParseStatus(status_text);
  if (!status) return Status::Error(EINVAL, "unknown status '" + status_text + "'");
  r.status = *status;
  m.String("device", &r.device);
  m.String("client", &r.client);
  m.String("owner", &r.owner);
  m.String("map_time", &r.map_time);
  m.String("create_time", &r.create_time);
  m.String("rolling_back", &r.rolling_back);
  if (json_object* x = m.Optional("extras", json_type_object))
    r.extras_json = json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN);
  if (Status s = ReadStringList(e, "tls_allow", ValidateTlsIdentity, &r.tls_allow); !s.ok())
    return s;
  if (Status s = ReadStringList(e, "runners", ValidateRunnerAddress, &r.runners); !s.ok()) return s;
  if (Status s = m.Finish(); !s.ok()) return s;
  if (Status s = ValidateRecord(r); !s.ok()) return s;
  return r;
}

}  // namespace

Status ValidateRunnerSet(const std::vector<std::string>& runners) {
  if (runners.size() > NBDR_MAX_RUNNERS)
    return Status::Error(EINVAL, "a runner set holds at most " + std::to_string(NBDR_MAX_RUNNERS) +
                                     " runners, not " + std::to_string(runners.size()));
  for (const auto& r : runners)
    if (Status s = ValidateRunnerAddress(r); !s.ok()) return s;
  if (std::set<std::string>(runners.begin(), runners.end()).size() != runners.size())
    return Status::Error(EINVAL, "a runner set names one runner twice");
  return Status();
}

std::string NowIso8601() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Expected<std::vector<BackstoreRecord>> ParseSaveconfig(const std::string& text,
                                                       const std::string& origin) {
  std::unique_ptr<json_tokener, decltype(&json_tokener_free)> tok(json_tokener_new(),
                                                                  json_tokener_free);
  JsonPtr root(json_tokener_parse_ex(tok.get(), text.c_str(), static_cast<int>(text.size())));
  json_tokener_error jerr = json_tokener_get_error(tok.get());
  if (root == nullptr || jerr != json_tokener_success) {
    const char* why =
        jerr == json_tokener_continue ? "unexpected end of file" : json_tokener_error_desc(jerr);
    return Corrupt(origin, std::string("not valid JSON: ") + why + " at byte " +
                               std::to_string(json_tokener_get_parse_end(tok.get())));
  }
  if (tok->char_offset < static_cast<int>(text.size())) {
    for (size_t i = static_cast<size_t>(tok->char_offset); i < text.size(); i++)
      if (!isspace(static_cast<unsigned char>(text[i])))
        return Corrupt(origin, "trailing data after the JSON object at byte " + std::to_string(i));
  }
  if (!json_object_is_type(root.get(), json_type_object))
    return Corrupt(origin, "top level is not a JSON object");
  json_object* v = nullptr;
  if (!GetMember(root.get(), "version", json_type_int, &v))
    return Corrupt(origin, "missing integer 'version'");
  if (json_object_get_int(v) != kSaveconfigVersion)
    return Corrupt(origin, "unsupported version " + std::to_string(json_object_get_int(v)));
  json_object* list = nullptr;
  if (!GetMember(root.get(), "backstores", json_type_array, &list))
    return Corrupt(origin, "missing array 'backstores'");

  std::vector<BackstoreRecord> out;
  std::set<std::string> seen;
  size_t n = json_object_array_length(list);
  for (size_t i = 0; i < n; i++) {
    std::string where = "backstore #" + std::to_string(i + 1);
    auto r = ParseRecord(json_object_array_get_idx(list, i), &where);
    if (!r) return Corrupt(origin, where + ": " + r.status().message());
    if (!seen.insert(r->ExportName()).second) return Corrupt(origin, where + ": listed twice");
    out.push_back(std::move(*r));
  }
  return out;
}

std::string SaveconfigToJson(const std::vector<BackstoreRecord>& records) {
  JsonPtr root(json_object_new_object());
  json_object_object_add(root.get(), "version", json_object_new_int(kSaveconfigVersion));
  json_object* list = json_object_new_array();
  for (const auto& r : records) {
    json_object* e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(r.type.c_str()));
    json_object_object_add(e, "key", json_object_new_string(r.key.c_str()));
    json_object_object_add(e, "size", json_object_new_int64(static_cast<int64_t>(r.size)));
    json_object_object_add(e, "block_size", json_object_new_int(static_cast<int>(r.block_size)));
    json_object_object_add(e, "readonly", json_object_new_boolean(r.readonly));
    json_object_object_add(e, "prealloc", json_object_new_boolean(r.prealloc));
    json_object_object_add(e, "status", json_object_new_string(StatusName(r.status)));
    json_object_object_add(e, "device", json_object_new_string(r.device.c_str()));
    json_object_object_add(e, "client", json_object_new_string(r.client.c_str()));
    if (!r.owner.empty())
      json_object_object_add(e, "owner", json_object_new_string(r.owner.c_str()));
    json_object_object_add(e, "map_time", json_object_new_string(r.map_time.c_str()));
    json_object_object_add(e, "create_time", json_object_new_string(r.create_time.c_str()));
    if (!r.rolling_back.empty())
      json_object_object_add(e, "rolling_back", json_object_new_string(r.rolling_back.c_str()));
    JsonPtr extras(json_tokener_parse(r.extras_json.c_str()));
    if (!extras || !json_object_is_type(extras.get(), json_type_object))
      extras.reset(json_object_new_object());
    json_object_object_add(e, "extras", extras.release());
    AddStringArray(e, "tls_allow", r.tls_allow);
    AddStringArray(e, "runners", r.runners);
    json_object_array_add(list, e);
  }
  json_object_object_add(root.get(), "backstores", list);
  std::string out =
      json_object_to_json_string_ext(root.get(), JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
  out += '\n';
  return out;
}

Expected<std::vector<BackstoreRecord>> LoadSaveconfig(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::vector<BackstoreRecord>();
    return PosixError("read " + path);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read " + path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (256u << 20)) return Corrupt(path, "larger than 256 MiB");
  }
  return ParseSaveconfig(text, path);
}

Status StoreSaveconfig(const std::string& path, const std::vector<BackstoreRecord>& records) {
  std::string dir_error;
  if (Status s = WriteFileAtomically(path, SaveconfigToJson(records), 0600, &dir_error); !s.ok())
    return s;
  // The new file is in place: a failure to sync its directory is
  // reported, but is no reason to undo what the callers changed (the file
  // says what they now hold).
  if (!dir_error.empty())
    LOG_ERROR("saveconfig",
              "%s written, but syncing its directory failed (%s): the change may "
              "not survive a power loss",
              path.c_str(), dir_error.c_str());
  return Status();
}

}  // namespace nbdr
