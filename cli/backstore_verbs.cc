// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The backstore verbs of nbd-cli: create, import, delete, list, info and
// version, each one control call (or two) to a runner; see command.h.
#include <json-c/json.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/kernel_nbd.h"
#include "cli/mapping_state.h"
#include "cli/runner_set.h"
#include "utils/names.h"
#include "utils/size_parse.h"
#include "utils/printable.h"

namespace nbdr::cli {

namespace {

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
  Json e(b.extras ? json_tokener_parse(b.extras) : nullptr);
  if (!e || !json_object_is_type(e.get(), json_type_object)) e.reset(json_object_new_object());
  return e.release();
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
  json_object_object_add(o, "owner", json_object_new_string(b.owner));
  json_object_object_add(o, "map_time", json_object_new_string(b.map_time));
  json_object_object_add(o, "create_time", json_object_new_string(b.create_time));
  json_object_object_add(o, "nbd_uri", json_object_new_string(uri.c_str()));
  json_object_object_add(o, "object", ExtrasJson(b));
  json_object* runners = json_object_new_array();
  for (const auto& r : RunnersOf(b)) json_object_array_add(runners, json_object_new_string(r.c_str()));
  json_object_object_add(o, "runners", runners);
  return o;
}

// The runners of set that answer now, as a JSON array.
json_object* AnsweringJson(const std::vector<std::string>& set,
                           const std::map<std::string, RunnerProbe>& probes) {
  json_object* list = json_object_new_array();
  for (const auto& r : Answering(set, probes))
    json_object_array_add(list, json_object_new_string(r.c_str()));
  return list;
}

int RunStatusCall(const Command& c, uint32_t proc, void* args) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  RpcResult<nbdr_status_reply> r(proc);
  if (int rc = CallStatus(&*client, proc, args, &r); rc >= 0) return rc;
  return ReportStatus(c, r->message);
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

}  // namespace

// A status call's success: its message (with the export, in JSON).
int ReportStatus(const Command& c, const char* message) {
  if (JsonOutput()) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "result", json_object_new_string(message));
    json_object_object_add(o.get(), "export",
                           json_object_new_string(MakeExportName(c.type, c.key).c_str()));
    PrintJson(o.get(), stdout);
  } else {
    printf("%s\n", Printable(message).c_str());
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
  if (c.auth) return CreateWithAuth(c, &a);
  if (c.hosts.size() > 1) return CreateOnRunnerSet(c, a);
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
  if (c.hosts.size() > 1) return ImportOnRunnerSet(c, a);
  return RunStatusCall(c, NBDR_IMPORT, &a);
}

int DoDelete(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  // A backstore with a runner set goes from every runner of it.
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  RpcResult<nbdr_info_reply> info(NBDR_INFO);
  if (Status s = client->Call(NBDR_INFO, &a, info.get()); !s.ok()) return CallFailed(s);
  info.set_filled();
  // (Any other answer: the delete itself says what is wrong.)
  if (info->status == 0 && info->backstore.backstore_len == 1 &&
      info->backstore.backstore_val[0].runners.runners_len > 0)
    return DeleteOnRunnerSet(c, &*client, info->backstore.backstore_val[0]);
  RpcResult<nbdr_status_reply> r(NBDR_DELETE);
  if (int rc = CallStatus(&*client, NBDR_DELETE, &a, &r); rc >= 0) return rc;
  return ReportStatus(c, r->message);
}

int DoForget(const Command& c) {
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  return RunStatusCall(c, NBDR_FORGET, &a);
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
  // Each runner of the listed backstores' sets is asked once.
  const auto probes = ProbeSets(list.backstores_val, list.backstores_len, c);
  if (JsonOutput()) {
    Json o(json_object_new_object());
    json_object* arr = json_object_new_array();
    for (u_int i = 0; i < list.backstores_len; i++) {
      const nbdr_backstore& b = list.backstores_val[i];
      json_object* o = BackstoreJson(b, NbdUri(client->connected_host(), r->io,
                                               MakeExportName(b.type, b.key)));
      json_object_object_add(o, "kernel", json_object_new_string(KernelView(*client, b).c_str()));
      json_object_object_add(o, "runners_answering", AnsweringJson(RunnersOf(b), probes));
      json_object_array_add(arr, o);
    }
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "backstores", arr);
    PrintJson(o.get(), stdout);
    return kExitOk;
  }
  if (list.backstores_len == 0) {
    printf("no %sbackstores%s\n", c.type.empty() ? "" : (c.type + " ").c_str(),
           c.filter.empty() || c.filter == "all" ? "" : (" in state " + c.filter).c_str());
    return kExitOk;
  }
  // Without a type (nbd-cli list), each row names its type: TYPE/KEY.
  auto shown_key = [&](const nbdr_backstore& b) {
    return Printable(c.type.empty() ? MakeExportName(b.type, b.key) : std::string(b.key));
  };
  size_t w = 6;
  for (u_int i = 0; i < list.backstores_len; i++)
    w = std::max(w, shown_key(list.backstores_val[i]).size());
  printf("%-*s  %12s  %-8s  %-4s  %-10s  %-12s  %-7s  %s\n", static_cast<int>(w),
         c.type.empty() ? "TYPE/KEY" : "KEY", "SIZE",
         "STATUS", "MODE", "DEVICE", "KERNEL", "RUNNERS", "CLIENT");
  for (u_int i = 0; i < list.backstores_len; i++) {
    const nbdr_backstore& b = list.backstores_val[i];
    // RUNNERS: of its runner set, how many answer ("2/3"); "-" without one.
    std::string runners = "-";
    if (b.runners.runners_len > 0) {
      runners = std::to_string(Answering(RunnersOf(b), probes).size()) + "/" +
                std::to_string(b.runners.runners_len);
    }
    // Text from the runner (or a hand-edited saveconfig.json) is escaped.
    printf("%-*s  %12s  %-8s  %-4s  %-10s  %-12s  %-7s  %s\n", static_cast<int>(w),
           shown_key(b).c_str(), FormatSize(b.size).c_str(), Printable(b.status).c_str(),
           b.readonly ? "ro" : "rw", *b.device ? Printable(b.device).c_str() : "-",
           KernelView(*client, b).c_str(), runners.c_str(),
           *b.client ? Printable(b.client).c_str() : "-");
  }
  return kExitOk;
}

int CallStatus(RunnerClient* client, uint32_t proc, void* args, RpcResult<nbdr_status_reply>* r) {
  if (Status s = client->Call(proc, args, r->get()); !s.ok()) return CallFailed(s);
  r->set_filled();
  if ((*r)->status != 0) return Error(kExitFailed, (*r)->status, (*r)->message);
  return -1;
}

int CallInfo(RunnerClient* client, const Command& c, RpcResult<nbdr_info_reply>* r) {
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  if (Status s = client->Call(NBDR_INFO, &a, r->get()); !s.ok()) return CallFailed(s);
  r->set_filled();
  if ((*r)->status != 0) return Error(kExitFailed, (*r)->status, (*r)->message);
  if ((*r)->backstore.backstore_len != 1)
    return Error(kExitFailed, EPROTO, "runner sent an info reply without a backstore");
  return -1;
}

int DoInfo(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  RpcResult<nbdr_info_reply> r(NBDR_INFO);
  if (int rc = CallInfo(&*client, c, &r); rc >= 0) return rc;
  const nbdr_backstore& b = r->backstore.backstore_val[0];
  std::string export_name = MakeExportName(b.type, b.key);
  std::string uri = NbdUri(client->connected_host(), r->io, export_name);
  ObjectState state = AskObjectState(&*client, c);
  std::string kernel = KernelView(*client, b);
  auto access = AskAccess(&*client, c);
  const auto probes = ProbeSets(&b, 1, c);
  if (JsonOutput()) {
    Json o(BackstoreJson(b, uri));
    json_object_object_add(o.get(), "runners_answering", AnsweringJson(RunnersOf(b), probes));
    json_object_object_add(o.get(), "runner", json_object_new_string(client->target().c_str()));
    json_object_object_add(o.get(), "kernel", json_object_new_string(kernel.c_str()));
    auto text_or_null = [](const std::string& t) {
      return t.empty() ? nullptr : json_object_new_string(t.c_str());
    };
    json_object_object_add(o.get(), "object_problem", text_or_null(state.problem));
    json_object_object_add(o.get(), "object_unchecked", text_or_null(state.unchecked));
    json_object* ids = nullptr;  // null: this runner keeps no access lists
    if (access) {
      ids = json_object_new_array();
      for (const auto& id : *access) json_object_array_add(ids, json_object_new_string(id.c_str()));
    }
    json_object_object_add(o.get(), "access", ids);
    PrintJson(o.get(), stdout);
    return kExitOk;
  }
  if (!state.problem.empty())
    fprintf(stderr, "nbd-cli: warning: %s\n", Printable(state.problem).c_str());
  if (!state.unchecked.empty())
    fprintf(stderr, "nbd-cli: warning: could not check the backing object: %s\n",
            Printable(state.unchecked).c_str());
  printf("export:      %s/%s\n", Printable(b.type).c_str(), Printable(b.key).c_str());
  printf("size:        %s (%llu bytes)\n", FormatSize(b.size).c_str(),
         static_cast<unsigned long long>(b.size));
  printf("block size:  %u\n", b.block_size);
  printf("mode:        %s\n", b.readonly ? "read-only" : "read-write");
  printf("prealloc:    %s\n", b.prealloc ? "yes" : "no");
  printf("status:      %s\n", Printable(b.status).c_str());
  printf("device:      %s\n", *b.device ? Printable(b.device).c_str() : "-");
  printf("kernel:      %s\n", kernel.c_str());
  printf("client:      %s\n", *b.client ? Printable(b.client).c_str() : "-");
  if (*b.owner) printf("owner:       %s\n", Printable(b.owner).c_str());
  printf("mapped at:   %s\n", When(b.map_time).c_str());
  printf("created at:  %s\n", When(b.create_time).c_str());
  std::string object;
  Json extras(ExtrasJson(b));
  json_object_object_foreach(extras.get(), k, v) {
    // (Appended piece by piece: GCC 12 at -O3 warns falsely about
    // "literal" + std::string&&, -Wrestrict.)
    if (!object.empty()) object += ' ';
    object.append(k).append("=").append(json_object_get_string(v));
  }
  printf("object:      %s\n", object.empty() ? "-" : Printable(object).c_str());
  printf("access:      %s\n", access ? AccessText(*access).c_str() : ("? (" + access.status().message() + ")").c_str());
  printf("runner:      %s\n", client->target().c_str());
  if (b.runners.runners_len > 0) {
    auto here_id = AskRunnerId(&*client);
    printf("runner set:  %s\n",
           Printable(RunnerSetText(RunnersOf(b), probes, here_id ? *here_id : "")).c_str());
  }
  printf("nbd uri:     %s\n", uri.c_str());
  return kExitOk;
}

int DoVersion(const Command& c) {
  auto client = ConnectOrFail(c);
  if (!client) {
    if (JsonOutput()) {
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
  if (r->status != 0) {
    if (!JsonOutput()) printf("nbd-cli %s\n", NBDR_PACKAGE_VERSION);
    return Error(kExitFailed, r->status, r->message);
  }
  if (JsonOutput()) {
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

}  // namespace nbdr::cli
