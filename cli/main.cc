// nbd-cli: the operator's tool. Creates, deletes, lists and describes
// backstores on an nbd-runner over its control RPC.
//
// Results go to stdout (text, or JSON with --json anywhere on the line),
// errors to stderr. Exit status: 0 success, 1 the operation failed,
// 2 bad usage, 3 the runner could not be reached.
#include <json-c/json.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/host_identity.h"
#include "cli/kernel_nbd.h"
#include "cli/mapping_state.h"
#include "cli/nbd_client_handshake.h"
#include "cli/runner_client.h"
#include "utils/nbd_protocol.h"
#include "utils/names.h"
#include "utils/net.h"
#include "utils/size_parse.h"

using namespace nbdr;

namespace {

constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3;

bool g_json = false;

const char kUsage[] =
    "Usage: nbd-cli [--json] COMMAND\n"
    "\n"
    "  nbd-cli TYPE create KEY [prealloc] size SIZE [readonly] [block-size 512|4096]\n"
    "                          [host HOST[:PORT]]\n"
    "  nbd-cli TYPE import KEY [size SIZE] [readonly] [block-size 512|4096] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE delete KEY [host HOST[:PORT]]\n"
    "  nbd-cli TYPE list [created|mapped|dead|all] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE info KEY [host HOST[:PORT]]\n"
    "  nbd-cli TYPE map KEY [/dev/nbdX] [readonly] [timeout SECONDS] [dead-timeout SECONDS]\n"
    "                       [connections N] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE unmap </dev/nbdX|KEY> [force] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE help\n"
    "  nbd-cli version [host HOST[:PORT]]\n"
    "  nbd-cli help\n"
    "\n"
    "TYPE is file, gluster or rbd (alias ceph). KEY names the backstore:\n"
    "  file     a path under the runner's file directory, e.g. disks/a.img\n"
    "  gluster  VOLUME/PATH, e.g. vol1/disks/a.img\n"
    "  rbd      POOL/IMAGE or POOL/NAMESPACE/IMAGE\n"
    "SIZE takes a unit: 1048576, 512B, 4K, 4KiB, 1M, 1G, 1.5G, 1T (binary units).\n"
    "HOST defaults to localhost:24110. import serves a KEY that already exists\n"
    "(made by another tool, e.g. rbd create) without creating it; delete then\n"
    "removes it like any backstore.\n"
    "\n"
    "--json prints results as JSON on stdout. Exit status: 0 success, 1 the\n"
    "operation failed, 2 bad usage, 3 the runner could not be reached.\n";

std::string TypeHelp(const std::string& type) {
  std::string key = type == "file"      ? "a path under the runner's file directory (file-dir)"
                    : type == "gluster" ? "VOLUME/PATH inside a GlusterFS volume"
                                        : "POOL/IMAGE or POOL/NAMESPACE/IMAGE in Ceph RBD";
  return "Usage: nbd-cli " + type +
         " create KEY [prealloc] size SIZE [readonly] [block-size 512|4096] [host HOST[:PORT]]\n"
         "       nbd-cli " + type +
         " import KEY [size SIZE] [readonly] [block-size 512|4096] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " delete KEY [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " list [created|mapped|dead|all] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " info KEY [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " map KEY [/dev/nbdX] [readonly] [timeout S] [dead-timeout S]"
         " [connections N] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " unmap </dev/nbdX|KEY> [force] [host HOST[:PORT]]\n"
         "KEY: " + key + ".\n";
}

struct JsonDeleter {
  void operator()(json_object* o) const { json_object_put(o); }
};
using Json = std::unique_ptr<json_object, JsonDeleter>;

void PrintJson(json_object* o, FILE* out) {
  fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char* ErrnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOSPC: return "ENOSPC";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EOVERFLOW: return "EOVERFLOW";
    case EIO: return "EIO";
    default: return "EOTHER";
  }
}

int Error(int exit_code, int err, const std::string& message) {
  if (g_json) {
    Json o(json_object_new_object());
    json_object* e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_int(err));
    json_object_object_add(e, "errno", json_object_new_string(ErrnoName(err)));
    json_object_object_add(e, "message", json_object_new_string(message.c_str()));
    json_object_object_add(o.get(), "error", e);
    PrintJson(o.get(), stderr);
  } else {
    fprintf(stderr, "nbd-cli: %s\n", message.c_str());
  }
  return exit_code;
}

int Usage(const std::string& why) {
  if (g_json) return Error(kExitUsage, EINVAL, why);
  fprintf(stderr, "nbd-cli: %s\n(see 'nbd-cli help')\n", why.c_str());
  return kExitUsage;
}

// Parsed "create" and friends.
struct Command {
  std::string type;
  std::string verb;
  std::string key;
  std::string size_text;
  bool have_size = false;
  bool prealloc = false;
  bool readonly = false;
  uint32_t block_size = 512;
  std::string filter;
  HostPort host{"localhost", kDefaultRpcPort};
  bool host_given = false;
  // map
  int device_index = -1;
  uint64_t timeout_s = 30;
  uint64_t dead_timeout_s = 0;
  int connections = 1;
  // unmap ... force: disconnect a device even while it is in use; by KEY,
  // also clear the runner's record even when it looks live
  bool force = false;
};

std::string NbdUri(const std::string& runner_host, const nbdr_io_address& io,
                   const std::string& export_name) {
  std::string host = io.host;
  if (IsWildcardOrLoopback(host)) host = runner_host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  // The export name is a URI path: everything but unreserved characters
  // and '/' is percent-encoded (a key may hold '?', '#', '%' or spaces).
  std::string path;
  for (unsigned char ch : export_name) {
    if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/') {
      path += static_cast<char>(ch);
    } else {
      char hex[4];
      snprintf(hex, sizeof hex, "%%%02X", ch);
      path += hex;
    }
  }
  return "nbd://" + host + ":" + std::to_string(io.port) + "/" + path;
}

// The handler's identity of the backing object (saveconfig.json extras):
// a JSON object, {} when the handler keeps none.
json_object* ExtrasJson(const nbdr_backstore& b) {
  json_object* e = b.extras ? json_tokener_parse(b.extras) : nullptr;
  if (!e || !json_object_is_type(e, json_type_object)) {
    json_object_put(e);
    e = json_object_new_object();
  }
  return e;
}

json_object* BackstoreJson(const nbdr_backstore& b, const std::string& uri) {
  json_object* o = json_object_new_object();
  json_object_object_add(o, "type", json_object_new_string(b.type));
  json_object_object_add(o, "key", json_object_new_string(b.key));
  json_object_object_add(o, "export",
                         json_object_new_string(MakeExportName(b.type, b.key).c_str()));
  json_object_object_add(o, "size", json_object_new_int64(static_cast<int64_t>(b.size)));
  json_object_object_add(o, "block_size", json_object_new_int(static_cast<int>(b.block_size)));
  json_object_object_add(o, "readonly", json_object_new_boolean(b.readonly));
  json_object_object_add(o, "prealloc", json_object_new_boolean(b.prealloc));
  json_object_object_add(o, "status", json_object_new_string(b.status));
  json_object_object_add(o, "device", json_object_new_string(b.device));
  json_object_object_add(o, "client", json_object_new_string(b.client));
  json_object_object_add(o, "map_time", json_object_new_string(b.map_time));
  json_object_object_add(o, "create_time", json_object_new_string(b.create_time));
  json_object_object_add(o, "nbd_uri", json_object_new_string(uri.c_str()));
  json_object_object_add(o, "object", ExtrasJson(b));
  return o;
}

Expected<RunnerClient> ConnectOrFail(const Command& c) { return RunnerClient::Connect(c.host); }

int CallFailed(const Status& s) {
  bool unreachable = s.code() == ECONNREFUSED || s.code() == EHOSTUNREACH ||
                     s.code() == ETIMEDOUT || s.code() == ECOMM || s.code() == ENETUNREACH;
  return Error(unreachable ? kExitUnreachable : kExitFailed, s.code(), s.message());
}

int RunStatusCall(const Command& c, uint32_t proc, void* args) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  RpcResult<nbdr_status_reply> r(proc);
  if (Status s = client->Call(proc, args, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  if (g_json) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "result", json_object_new_string(r->message));
    json_object_object_add(o.get(), "export",
                           json_object_new_string(MakeExportName(c.type, c.key).c_str()));
    PrintJson(o.get(), stdout);
  } else {
    printf("%s\n", r->message);
  }
  return kExitOk;
}

int DoCreate(const Command& c) {
  if (!c.have_size) return Usage("create needs 'size SIZE'");
  auto size = ParseBackstoreSize(c.size_text);
  if (!size) return Usage(size.status().message());
  if (*size % c.block_size != 0)
    return Usage("size " + c.size_text + " is not a multiple of the block size " +
                 std::to_string(c.block_size));
  nbdr_create_args a{};
  a.type = const_cast<char*>(c.type.c_str());
  a.key = const_cast<char*>(c.key.c_str());
  a.size = *size;
  a.block_size = c.block_size;
  a.readonly = c.readonly;
  a.prealloc = c.prealloc;
  return RunStatusCall(c, NBDR_CREATE, &a);
}

int DoImport(const Command& c) {
  nbdr_create_args a{};
  if (c.have_size) {
    auto size = ParseBackstoreSize(c.size_text);
    if (!size) return Usage(size.status().message());
    a.size = *size;
  }
  a.type = const_cast<char*>(c.type.c_str());
  a.key = const_cast<char*>(c.key.c_str());
  a.block_size = c.block_size;
  a.readonly = c.readonly;
  return RunStatusCall(c, NBDR_IMPORT, &a);
}

int DoDelete(const Command& c) {
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  return RunStatusCall(c, NBDR_DELETE, &a);
}

std::string When(const char* iso) { return *iso ? iso : "-"; }

// What this host's kernel says about a backstore's device: "connected" or
// "disconnected" when this host mapped it, "-" otherwise.
std::string KernelView(const RunnerClient& client, const nbdr_backstore& b) {
  int index = ParseNbdDevice(b.device);
  if (index < 0 || access("/sys/module/nbd", F_OK) != 0) return "-";
  auto mine = FindMapping(b.device, b.type, b.key);
  if (!mine) return "?";  // this host's records cannot be read
  if (!*mine || (*mine)->runner != client.target()) return "-";
  auto devices = NbdStatus();
  if (!devices) return "?";
  for (const auto& d : *devices)
    if (d.index == index) return d.connected ? "connected" : "disconnected";
  return "disconnected";
}

int DoList(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  nbdr_list_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.filter.c_str())};
  RpcResult<nbdr_list_reply> r(NBDR_LIST);
  if (Status s = client->Call(NBDR_LIST, &a, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  const auto& list = r->backstores;
  if (g_json) {
    Json o(json_object_new_object());
    json_object* arr = json_object_new_array();
    for (u_int i = 0; i < list.backstores_len; i++) {
      const nbdr_backstore& b = list.backstores_val[i];
      json_object* o = BackstoreJson(b, NbdUri(client->connected_host(), r->io,
                                               MakeExportName(b.type, b.key)));
      json_object_object_add(o, "kernel", json_object_new_string(KernelView(*client, b).c_str()));
      json_object_array_add(arr, o);
    }
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "backstores", arr);
    PrintJson(o.get(), stdout);
    return kExitOk;
  }
  if (list.backstores_len == 0) {
    printf("no %s backstores%s\n", c.type.c_str(),
           c.filter.empty() || c.filter == "all" ? "" : (" in state " + c.filter).c_str());
    return kExitOk;
  }
  size_t w = 6;
  for (u_int i = 0; i < list.backstores_len; i++)
    w = std::max(w, strlen(list.backstores_val[i].key));
  printf("%-*s  %12s  %-8s  %-4s  %-10s  %-12s  %s\n", static_cast<int>(w), "KEY", "SIZE",
         "STATUS", "MODE", "DEVICE", "KERNEL", "CLIENT");
  for (u_int i = 0; i < list.backstores_len; i++) {
    const nbdr_backstore& b = list.backstores_val[i];
    printf("%-*s  %12s  %-8s  %-4s  %-10s  %-12s  %s\n", static_cast<int>(w), b.key,
           FormatSize(b.size).c_str(), b.status, b.readonly ? "ro" : "rw",
           *b.device ? b.device : "-", KernelView(*client, b).c_str(),
           *b.client ? b.client : "-");
  }
  return kExitOk;
}

// What the runner says of c's backing object (NBDR_CHECK): problem is a
// sentence when it is missing or replaced; unchecked says why the runner
// could not tell (a runner without the procedure says nothing).
struct ObjectState {
  std::string problem;
  std::string unchecked;
};
ObjectState AskObjectState(RunnerClient* client, const Command& c) {
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  RpcResult<nbdr_status_reply> r(NBDR_CHECK);
  if (Status s = client->Call(NBDR_CHECK, &a, r.get()); !s.ok())
    return {"", s.code() == EOPNOTSUPP ? "" : s.message()};
  r.set_filled();
  if (r->status == ENOENT || r->status == ESTALE) return {r->message, ""};
  return {"", r->status == 0 ? "" : r->message};
}

int DoInfo(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  RpcResult<nbdr_info_reply> r(NBDR_INFO);
  if (Status s = client->Call(NBDR_INFO, &a, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  if (r->backstore.backstore_len != 1)
    return Error(kExitFailed, EPROTO, "runner sent an info reply without a backstore");
  const nbdr_backstore& b = r->backstore.backstore_val[0];
  std::string export_name = MakeExportName(b.type, b.key);
  std::string uri = NbdUri(client->connected_host(), r->io, export_name);
  ObjectState state = AskObjectState(&*client, c);
  std::string kernel = KernelView(*client, b);
  if (g_json) {
    Json o(BackstoreJson(b, uri));
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "kernel", json_object_new_string(kernel.c_str()));
    auto text_or_null = [](const std::string& t) {
      return t.empty() ? nullptr : json_object_new_string(t.c_str());
    };
    json_object_object_add(o.get(), "object_problem", text_or_null(state.problem));
    json_object_object_add(o.get(), "object_unchecked", text_or_null(state.unchecked));
    PrintJson(o.get(), stdout);
    return kExitOk;
  }
  if (!state.problem.empty()) fprintf(stderr, "nbd-cli: warning: %s\n", state.problem.c_str());
  if (!state.unchecked.empty())
    fprintf(stderr, "nbd-cli: warning: could not check the backing object: %s\n",
            state.unchecked.c_str());
  printf("export:      %s/%s\n", b.type, b.key);
  printf("size:        %s (%llu bytes)\n", FormatSize(b.size).c_str(),
         static_cast<unsigned long long>(b.size));
  printf("block size:  %u\n", b.block_size);
  printf("mode:        %s\n", b.readonly ? "read-only" : "read-write");
  printf("prealloc:    %s\n", b.prealloc ? "yes" : "no");
  printf("status:      %s\n", b.status);
  printf("device:      %s\n", *b.device ? b.device : "-");
  printf("kernel:      %s\n", kernel.c_str());
  printf("client:      %s\n", *b.client ? b.client : "-");
  printf("mapped at:   %s\n", When(b.map_time).c_str());
  printf("created at:  %s\n", When(b.create_time).c_str());
  std::string object;
  Json extras(ExtrasJson(b));
  json_object_object_foreach(extras.get(), k, v) {
    object += (object.empty() ? "" : " ") + std::string(k) + "=" + json_object_get_string(v);
  }
  printf("object:      %s\n", object.empty() ? "-" : object.c_str());
  printf("runner:      %s\n", client->target().c_str());
  printf("nbd uri:     %s\n", uri.c_str());
  return kExitOk;
}

int DoVersion(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) {
    if (g_json) {
      Json o(json_object_new_object());
      json_object_object_add(o.get(), "cli_version", json_object_new_string(NBDR_PACKAGE_VERSION));
      PrintJson(o.get(), stdout);
    } else {
      printf("nbd-cli %s\n", NBDR_PACKAGE_VERSION);
    }
    return CallFailed(client.status());
  }
  RpcResult<nbdr_version_reply> r(NBDR_VERSION);
  if (Status s = client->Call(NBDR_VERSION, nullptr, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (g_json) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "cli_version", json_object_new_string(NBDR_PACKAGE_VERSION));
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "runner_version", json_object_new_string(r->runner_version));
    json_object_object_add(o.get(), "handlers", json_object_new_string(r->handlers));
    json_object_object_add(o.get(), "io_port", json_object_new_int(static_cast<int>(r->io.port)));
    PrintJson(o.get(), stdout);
  } else {
    printf("nbd-cli %s\nnbd-runner %s at %s (handlers: %s; NBD port %u)\n", NBDR_PACKAGE_VERSION,
           r->runner_version, client->target().c_str(), *r->handlers ? r->handlers : "none",
           r->io.port);
  }
  return kExitOk;
}

// Parses a backend identifier; false when it is not ours.
bool ParseBackendId(const std::string& id, HostPort* runner, std::string* type, std::string* key) {
  const std::string prefix = "nbd-runner://";
  if (id.rfind(prefix, 0) != 0) return false;
  std::string rest = id.substr(prefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return false;
  auto hp = ParseHostPort(rest.substr(0, slash), kDefaultRpcPort);
  auto name = ParseExportName(rest.substr(slash + 1));
  if (!hp || !name) return false;
  *runner = *hp;
  *type = name->type;
  *key = name->key;
  return true;
}

// What a runner's unmap may clear (see nbdr_unmap_args): the mapping a map
// token began, or the one on device of host_id, or (all empty) any.
struct UnmapOnly {
  std::string device;
  std::string host_id;
  uint64_t token = 0;
};

// The host identity this host's record of device (mapping type/key) was
// made under; "" when it has no such record.
Expected<std::string> RecordedHostId(const std::string& device, const std::string& type,
                                     const std::string& key) {
  auto mine = FindMapping(device, type, key);
  if (!mine) return mine.status();
  return *mine ? (*mine)->host_id : "";
}

Status RunnerUnmap(RunnerClient* client, const std::string& type, const std::string& key,
                   const UnmapOnly& only) {
  nbdr_unmap_args a{const_cast<char*>(type.c_str()), const_cast<char*>(key.c_str()),
                    const_cast<char*>(only.device.c_str()), const_cast<char*>(only.host_id.c_str()),
                    only.token};
  RpcResult<nbdr_status_reply> r(NBDR_UNMAP);
  if (Status s = client->Call(NBDR_UNMAP, &a, r.get()); !s.ok()) return s;
  r.set_filled();
  if (r->status != 0) return Status::Error(r->status, r->message);
  return Status();
}

int DoMap(const Command& c) {
  if (geteuid() != 0)
    return Error(kExitFailed, EPERM,
                 "map needs root: handing sockets to the kernel takes CAP_SYS_ADMIN");
  if (Status s = EnsureNbdModule(); !s.ok()) return Error(kExitFailed, s.code(), s.message());
  auto host_id = ThisHostId();
  if (!host_id) return Error(kExitFailed, host_id.status().code(), host_id.status().message());
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  std::string export_name = MakeExportName(c.type, c.key);
  nbdr_map_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str()),
                  const_cast<char*>(host_id->c_str())};
  RpcResult<nbdr_map_reply> r(NBDR_MAP);
  if (Status s = client->Call(NBDR_MAP, &a, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  if (r->backstore.backstore_len != 1)
    return Error(kExitFailed, EPROTO, "runner sent a map reply without a backstore");
  const nbdr_backstore& b = r->backstore.backstore_val[0];
  // Undo the runner's "mapping" state on any failure from here on (only
  // this map's: if it outlived the mapping timeout, another's is left).
  auto abort_map = [&](int err, const std::string& msg) {
    Status u = RunnerUnmap(&*client, c.type, c.key, {"", "", r->map_token});
    std::string after;
    if (u.code() == EINVAL)  // not mapped any more: its mapping timed out
      after = " (the runner had already dropped this map)";
    else if (!u.ok())
      after = " (and resetting the runner failed: " + u.message() + ")";
    return Error(kExitFailed, err, msg + after);
  };
  std::string io_host = IoHostFor(*client, r->io.host);
  auto opened = ConnectExportSockets(io_host, static_cast<uint16_t>(r->io.port), export_name,
                                     c.connections);
  if (!opened) return abort_map(opened.status().code(), opened.status().message());
  std::vector<UniqueFd>& socks = opened->fds;
  const NbdExportInfo& info = opened->info;
  KernelConnect kc;
  kc.index = c.device_index;
  for (auto& s : socks) kc.sockets.push_back(s.get());
  kc.size = info.size;
  // The kernel's logical block: the backstore's, or the server's minimum
  // if that is larger; the nbd driver takes at most a page.
  kc.block_size = std::max(b.block_size, info.min_block);
  if (kc.block_size > 4096)
    return abort_map(EINVAL, "the server needs " + std::to_string(info.min_block) +
                                 "-byte blocks; the kernel's nbd driver takes at most 4096");
  kc.server_flags = info.transmission_flags | ((c.readonly || b.readonly) ? nbd::kFlagReadOnly : 0);
  kc.timeout_s = c.timeout_s;
  kc.dead_conn_timeout_s = c.dead_timeout_s;
  kc.backend_id = BackendIdFor(client->target(), export_name);
  auto index = NbdConnect(kc);
  if (!index) {
    std::string why = index.status().message();
    if (index.status().code() == EBUSY && c.device_index >= 0)
      why = "/dev/nbd" + std::to_string(c.device_index) + " is busy (already connected)";
    return abort_map(index.status().code(), why);
  }
  socks.clear();  // the kernel holds its own references now
  std::string device = "/dev/nbd" + std::to_string(*index);
  nbdr_mapped_args ma{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str()),
                      const_cast<char*>(device.c_str()), const_cast<char*>(host_id->c_str()),
                      r->map_token};
  RpcResult<nbdr_status_reply> mr(NBDR_MAPPED);
  Status ms = client->Call(NBDR_MAPPED, &ma, mr.get());
  if (ms.ok()) {
    mr.set_filled();
    if (mr->status != 0) ms = Status::Error(mr->status, mr->message);
  }
  if (!ms.ok()) {
    (void)NbdDisconnect(*index);
    return abort_map(ms.code(), "runner did not record the mapping: " + ms.message());
  }
  MappingRecord rec{device,        c.type,      c.key,      client->target(), c.connections,
                    c.timeout_s,   c.dead_timeout_s, c.readonly || b.readonly, "", *host_id};
  {
    time_t now = time(nullptr);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    rec.map_time = when;
  }
  if (Status s = RecordMapping(rec); !s.ok())
    fprintf(stderr, "nbd-cli: warning: %s is mapped, but recording it in %s failed: %s\n",
            device.c_str(), MappingStatePath().c_str(), s.message().c_str());
  if (g_json) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "device", json_object_new_string(device.c_str()));
    json_object_object_add(o.get(), "type", json_object_new_string(c.type.c_str()));
    json_object_object_add(o.get(), "key", json_object_new_string(c.key.c_str()));
    json_object_object_add(o.get(), "export", json_object_new_string(export_name.c_str()));
    json_object_object_add(o.get(), "size", json_object_new_int64(static_cast<int64_t>(info.size)));
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "connections", json_object_new_int(c.connections));
    PrintJson(o.get(), stdout);
  } else {
    printf("%s\n", device.c_str());
  }
  return kExitOk;
}

int PrintUnmapped(const std::string& device, const std::string& name, const std::string& text) {
  if (g_json) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "device", json_object_new_string(device.c_str()));
    json_object_object_add(o.get(), "export", json_object_new_string(name.c_str()));
    PrintJson(o.get(), stdout);
  } else {
    printf("%s\n", text.c_str());
  }
  return kExitOk;
}

// Disconnects this host's device index, which holds type/key, and forgets
// this host's record of that mapping (only that one: a map that reused the
// device meanwhile keeps its own). A device in use (mounted, used as swap,
// or held by device mapper or md) is refused unless force: its in-flight
// I/O would fail and unwritten data be lost.
Status DisconnectDevice(int index, const std::string& type, const std::string& key, bool force) {
  std::string device = "/dev/nbd" + std::to_string(index);
  if (std::string use = force ? "" : NbdDeviceUse(index); !use.empty())
    return Status::Error(EBUSY, "not disconnecting " + device + ": " + use +
                                    "; stop that use first, or add 'force' to disconnect it "
                                    "anyway (its in-flight I/O then fails and what it has not "
                                    "written is lost)");
  // The record goes first: nbd-clid checks it just before it reconnects a
  // device, so it does not bring this one back once it is disconnected.
  auto record = FindMapping(device, type, key);
  Status forgot = !record ? record.status() : *record ? ForgetMapping(**record) : Status();
  if (!forgot.ok()) fprintf(stderr, "nbd-cli: warning: %s\n", forgot.message().c_str());
  if (Status s = NbdDisconnect(index); !s.ok()) {
    if (record && *record && forgot.ok()) (void)RecordMapping(**record);  // still mapped
    return Status::Error(s.code(), "cannot disconnect " + device + ": " + s.message());
  }
  return Status();
}

int DoUnmap(Command c) {
  if (geteuid() != 0) return Error(kExitFailed, EPERM, "unmap needs root");
  int index = ParseNbdDevice(c.key);
  const bool by_device = index >= 0;
  if (by_device) {
    std::string backend = NbdBackend(index);
    HostPort runner;
    std::string type, key;
    if (!ParseBackendId(backend, &runner, &type, &key))
      return Error(kExitFailed, EINVAL,
                   c.key + " is not mapped by nbd-cli" +
                       (backend.empty() ? "" : " (backend '" + backend + "')"));
    if (type != c.type)
      return Error(kExitFailed, EINVAL, c.key + " holds " + type + "/" + key + ", not a " + c.type +
                                            " backstore");
    if (!c.host_given) c.host = runner;
    c.key = key;
  } else {
    if (Status s = ValidateKey(c.key); !s.ok()) return Usage(s.message());
  }
  auto client = ConnectOrFail(c);
  if (!client && by_device) {
    // The device is this host's to release even when its runner is gone;
    // the runner's record is cleared later with unmap KEY (it is this
    // host's and dead by then, and nothing here holds it).
    std::string device = "/dev/nbd" + std::to_string(index);
    if (Status s = DisconnectDevice(index, c.type, c.key, c.force); !s.ok())
      return Error(kExitFailed, s.code(), s.message());
    std::string host = c.host.host.find(':') == std::string::npos ? c.host.host
                                                                   : "[" + c.host.host + "]";
    return Error(kExitUnreachable, client.status().code(),
                 device + " disconnected, but its runner could not be told (" +
                     client.status().message() + "); once it is back, 'nbd-cli " + c.type +
                     " unmap " + c.key + " host " + host + ":" +
                     std::to_string(c.host.port) + "' clears its record");
  }
  if (!client) return CallFailed(client.status());
  auto host_id = ThisHostId();
  if (!host_id) return Error(kExitFailed, host_id.status().code(), host_id.status().message());
  if (index < 0) {
    nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
    RpcResult<nbdr_info_reply> r(NBDR_INFO);
    if (Status s = client->Call(NBDR_INFO, &a, r.get()); !s.ok()) return CallFailed(s);
    r.set_filled();
    if (r->status != 0) return Error(kExitFailed, r->status, r->message);
    if (r->backstore.backstore_len != 1)
      return Error(kExitFailed, EPROTO, "runner sent an info reply without a backstore");
    const nbdr_backstore& b = r->backstore.backstore_val[0];
    std::string name = MakeExportName(c.type, c.key);
    std::string status = b.status;
    if (status == "created")
      return Error(kExitFailed, EINVAL, "backstore " + name + " is not mapped (status created)");
    // The runner's record names a device of whichever host mapped it; only
    // this host's device that holds this very backstore of this runner is
    // disconnected.
    index = ParseNbdDevice(b.device);
    std::string device = index >= 0 ? "/dev/nbd" + std::to_string(index) : "";
    std::string held = index >= 0 ? NbdBackend(index) : "";
    HostPort held_runner;
    std::string held_type, held_key;
    bool holds_this = ParseBackendId(held, &held_runner, &held_type, &held_key) &&
                      held_type == c.type && held_key == c.key;
    bool ours = holds_this && held_runner.host == c.host.host && held_runner.port == c.host.port;
    if (holds_this && !ours && !c.force)
      return Error(kExitFailed, EBUSY,
                   device + " on this host holds " + name + " of the runner at " +
                       held_runner.host + ":" + std::to_string(held_runner.port) +
                       ", named otherwise here; unmap it by device: nbd-cli " + c.type +
                       " unmap " + device);
    if (!ours) {
      bool here = index >= 0 && (!held.empty() || NbdConnected(index));
      // This host's own record, whose device no longer holds the disk
      // (disconnected, or reused after a reboot): nothing else can hold
      // it, so it is cleared. A map still in progress is not.
      bool stale_own = *b.client && status != "mapping" && !holds_this && b.client == *host_id;
      if (*b.client && status != "mapping" && !holds_this && !stale_own && !c.force) {
        auto recorded = RecordedHostId(device, c.type, c.key);  // made before a rename?
        if (recorded)
          stale_own = b.client == *recorded;
        else
          fprintf(stderr, "nbd-cli: warning: %s\n", recorded.status().message().c_str());
      }
      std::string owner = *b.client ? std::string(b.client) : "another host";
      if (here && !c.force && !stale_own)
        return Error(kExitFailed, EBUSY,
                     "the runner records " + name + " on " + device + " of " + owner + ", but " +
                         device + " on this host holds " +
                         (held.empty() ? "another client's disk" : held) +
                         "; unmap it on the host that mapped it");
      if (!c.force && !stale_own)
        return Error(kExitFailed, EBUSY,
                     name + " is " + status +
                         (device.empty() ? " with no device recorded (mapped by " + owner + ")"
                                         : " on " + device + " of " + owner +
                                               (*b.client ? "" : " (" + device +
                                                                     " is not connected here)")) +
                         "; unmap it on the host that holds it, or, if no host does any more, "
                         "add 'force'");
      // Nothing of it here: only the runner's record is cleared (this
      // host's own only while it still names this device).
      UnmapOnly only;
      if (stale_own && !c.force) only = {b.device, b.client, 0};
      if (Status s = RunnerUnmap(&*client, c.type, c.key, only); !s.ok())
        return Error(kExitFailed, s.code(), s.message());
      std::string why = device.empty() ? "no device recorded"
                                       : device + (here ? " here holds something else"
                                                        : " is not connected here");
      std::string what =
          stale_own && !c.force ? "cleared this host's stale " : "forced: cleared the ";
      return PrintUnmapped(device, name, what + status + " mapping of " + name + " (" + why +
                                             "; nothing disconnected)");
    }
  }
  std::string device = "/dev/nbd" + std::to_string(index);
  std::string name = MakeExportName(c.type, c.key);
  // The identity the device was mapped under (this host's may have been
  // renamed since). An unreadable record file is reported by ForgetMapping.
  auto recorded = RecordedHostId(device, c.type, c.key);
  std::string mapped_as = recorded && !recorded->empty() ? *recorded : *host_id;
  if (Status s = DisconnectDevice(index, c.type, c.key, c.force); !s.ok())
    return Error(kExitFailed, s.code(), s.message());
  // The runner's record is cleared only while it is this device's of this
  // host: this host may have lost the backstore while it was dead, and
  // then it is another client's.
  Status s = RunnerUnmap(&*client, c.type, c.key, {device, mapped_as, 0});
  if (s.code() == EBUSY || s.code() == EINVAL)
    return PrintUnmapped(device, name, "disconnected " + device + "; " + s.message());
  if (!s.ok())
    return Error(kExitFailed, s.code(), device + " disconnected, but the runner: " + s.message());
  return PrintUnmapped(device, name, "unmapped " + device + " (" + name + ")");
}

// Parses trailing "word [value]" options of a command.
int ParseOptions(const std::vector<std::string>& args, size_t i, Command* c) {
  std::set<std::string> seen;
  for (; i < args.size(); i++) {
    const std::string& w = args[i];
    if (!seen.insert(w).second) return Usage("'" + w + "' given twice");
    auto value = [&](std::string* out) -> bool {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    auto number = [&](const char* what, uint64_t min, uint64_t max, uint64_t* out) -> int {
      if (!value(&v)) return Usage(std::string("'") + what + "' needs a number");
      char* end = nullptr;
      unsigned long long n = strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || v[0] == '-' || n < min || n > max)
        return Usage(std::string("'") + what + "' must be a number from " + std::to_string(min) +
                     " to " + std::to_string(max));
      *out = n;
      return -1;
    };
    if (w == "host") {
      if (!value(&v)) return Usage("'host' needs HOST[:PORT]");
      auto hp = ParseHostPort(v, kDefaultRpcPort);
      if (!hp) return Usage(hp.status().message());
      c->host = *hp;
      c->host_given = true;
    } else if (c->verb == "map" && ParseNbdDevice(w) >= 0 && c->device_index < 0) {
      c->device_index = ParseNbdDevice(w);
    } else if (c->verb == "map" && w == "readonly") {
      c->readonly = true;
    } else if (c->verb == "map" && w == "timeout") {
      if (int rc = number("timeout", 1, 86400, &c->timeout_s); rc >= 0) return rc;
    } else if (c->verb == "map" && w == "dead-timeout") {
      if (int rc = number("dead-timeout", 0, 86400, &c->dead_timeout_s); rc >= 0) return rc;
    } else if (c->verb == "map" && w == "connections") {
      uint64_t n = 0;
      if (int rc = number("connections", 1, 16, &n); rc >= 0) return rc;
      c->connections = static_cast<int>(n);
    } else if ((c->verb == "create" || c->verb == "import") && w == "size") {
      if (!value(&c->size_text)) return Usage("'size' needs a value, e.g. size 1G");
      c->have_size = true;
    } else if (c->verb == "unmap" && w == "force") {
      c->force = true;
    } else if (c->verb == "create" && w == "prealloc") {
      c->prealloc = true;
    } else if ((c->verb == "create" || c->verb == "import") && w == "readonly") {
      c->readonly = true;
    } else if ((c->verb == "create" || c->verb == "import") && w == "block-size") {
      if (!value(&v) || (v != "512" && v != "4096"))
        return Usage("'block-size' must be 512 or 4096");
      c->block_size = static_cast<uint32_t>(std::stoul(v));
    } else if (c->verb == "list" && c->filter.empty() &&
               (w == "created" || w == "mapped" || w == "dead" || w == "all" || w == "mapping")) {
      c->filter = w;
    } else {
      return Usage("unexpected '" + w + "' for " + c->verb);
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  // A runner that goes away mid-call is an error to report, not a silent
  // death by SIGPIPE (libtirpc writes with plain write()).
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args;
  bool help = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") g_json = true;
    else if (a == "--help" || a == "-h") help = true;  // wherever it is: never runs a command
    else if (a == "--version" && args.empty()) args.push_back("version");
    else args.push_back(a);
  }
  if (help) {
    bool typed = !args.empty() && (args[0] == "ceph" || ValidateType(args[0]).ok());
    fputs(typed ? TypeHelp(args[0] == "ceph" ? "rbd" : args[0]).c_str() : kUsage, stdout);
    return kExitOk;
  }
  if (args.empty()) {
    fputs(kUsage, stderr);
    return kExitUsage;
  }
  Command c;
  if (args[0] == "help") {
    fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args[0].starts_with("-")) return Usage("unknown option '" + args[0] + "'");
  if (args[0] == "version") {
    c.verb = "version";
    if (int rc = ParseOptions(args, 1, &c); rc >= 0) return rc;
    return DoVersion(c);
  }
  c.type = args[0] == "ceph" ? "rbd" : args[0];
  if (c.type != "file" && c.type != "gluster" && c.type != "rbd") {
    if (Status s = ValidateType(c.type); !s.ok()) return Usage("unknown command '" + args[0] + "'");
  }
  if (args.size() < 2) return Usage("missing command after '" + args[0] + "'");
  c.verb = args[1];
  if (c.verb == "help") {
    fputs(TypeHelp(c.type).c_str(), stdout);
    return kExitOk;
  }
  size_t next = 2;
  if (c.verb == "unmap") {
    if (args.size() < 3) return Usage("unmap needs /dev/nbdX or a KEY");
    c.key = args[2];
    next = 3;
  } else if (c.verb == "create" || c.verb == "import" || c.verb == "delete" || c.verb == "info" ||
             c.verb == "map") {
    if (args.size() < 3) return Usage(c.verb + " needs a KEY");
    c.key = args[2];
    if (Status s = ValidateKey(c.key); !s.ok()) return Usage(s.message());
    next = 3;
  } else if (c.verb != "list") {
    return Usage("unknown command '" + c.verb + "' for " + c.type);
  }
  if (int rc = ParseOptions(args, next, &c); rc >= 0) return rc;
  if (c.verb == "create") return DoCreate(c);
  if (c.verb == "import") return DoImport(c);
  if (c.verb == "delete") return DoDelete(c);
  if (c.verb == "info") return DoInfo(c);
  if (c.verb == "map") return DoMap(c);
  if (c.verb == "unmap") return DoUnmap(c);
  return DoList(c);
}
