// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Who may open a backstore over NBD (NBDR_ACCESS): `nbd-cli TYPE modify
// KEY allow|deny ID[,ID...]` and `modify KEY open`, and the access line
// of `info`. Identities
// are TLS identities as the runner names its clients: psk:IDENTITY or
// x509:DN (utils/names.h).
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "utils/names.h"
#include "utils/printable.h"

namespace nbdr::cli {

namespace {

// One NBDR_ACCESS call: call is the transport's failure (the runner was
// not reached, or has no such procedure); otherwise the runner's answer.
struct AccessAnswer {
  Status call;
  int status = 0;
  std::string message;
  std::vector<std::string> identities;  // the list after the call
  std::string psk_line;                 // auth enable: "IDENTITY:HEXKEY"
};

// The list and key of a reply (status and message are the caller's).
void ReadAccessReply(const nbdr_access_reply& r, AccessAnswer* out) {
  for (u_int i = 0; i < r.identities.identities_len; i++)
    out->identities.emplace_back(r.identities.identities_val[i]);
  if (r.psk_line) out->psk_line = r.psk_line;
}

AccessAnswer CallAccess(RunnerClient* client, const Command& c, nbdr_access_op op,
                        const std::vector<std::string>& ids) {
  std::vector<char*> raw;
  for (const auto& id : ids) raw.push_back(const_cast<char*>(id.c_str()));
  nbdr_access_args a{};
  a.type = const_cast<char*>(c.type.c_str());
  a.key = const_cast<char*>(c.key.c_str());
  a.op = op;
  a.identities.identities_len = static_cast<u_int>(raw.size());
  a.identities.identities_val = raw.data();
  RpcResult<nbdr_access_reply> r(NBDR_ACCESS);
  AccessAnswer out;
  if (out.call = client->Call(NBDR_ACCESS, &a, r.get()); !out.call.ok()) return out;
  r.set_filled();
  out.status = r->status;
  out.message = r->message;
  ReadAccessReply(*r, &out);
  return out;
}

// The result of a call that changed the list: text, or one JSON object
// (result: the create's message, when there was one).
void PrintAccess(const Command& c, const AccessAnswer& a, const std::string& result) {
  const std::string name = MakeExportName(c.type, c.key);
  const size_t colon = a.psk_line.find(':');
  if (JsonOutput()) {
    Json o(json_object_new_object());
    if (!result.empty()) json_object_object_add(o.get(), "result", json_object_new_string(result.c_str()));
    json_object_object_add(o.get(), "export", json_object_new_string(name.c_str()));
    json_object* arr = json_object_new_array();
    for (const auto& id : a.identities) json_object_array_add(arr, json_object_new_string(id.c_str()));
    json_object_object_add(o.get(), "access", arr);
    if (colon != std::string::npos) {
      json_object* psk = json_object_new_object();
      json_object_object_add(psk, "identity", json_object_new_string(a.psk_line.substr(0, colon).c_str()));
      json_object_object_add(psk, "key", json_object_new_string(a.psk_line.substr(colon + 1).c_str()));
      json_object_object_add(psk, "psktool_line", json_object_new_string(a.psk_line.c_str()));
      json_object_object_add(o.get(), "psk", psk);
    }
    PrintJson(o.get(), stdout);
    return;
  }
  if (!result.empty()) printf("%s\n", result.c_str());
  printf("%s: access: %s\n", name.c_str(), AccessText(a.identities).c_str());
  if (colon != std::string::npos)
    printf("TLS-PSK key of %s, shown only now (a client's psktool file, e.g. "
           "nbds://%s@RUNNER/%s?tls-psk-file=FILE):\n%s\n",
           name.c_str(), a.psk_line.substr(0, colon).c_str(), name.c_str(), a.psk_line.c_str());
}

}  // namespace

Expected<std::vector<std::string>> AskAccess(RunnerClient* client, const Command& c) {
  AccessAnswer a = CallAccess(client, c, NBDR_ACCESS_SHOW, {});
  if (!a.call.ok()) return a.call;
  if (a.status != 0) return Status::Error(a.status, a.message);
  return a.identities;
}

Status AllowAgain(RunnerClient* client, const Command& c, const std::vector<std::string>& ids) {
  if (ids.empty()) return Status();
  AccessAnswer a = CallAccess(client, c, NBDR_ACCESS_ALLOW, ids);
  if (!a.call.ok()) return a.call;
  return a.status == 0 ? Status() : Status::Error(a.status, a.message);
}

std::string AccessText(const std::vector<std::string>& list) {
  if (list.empty()) return "any client";
  std::string out;
  for (const auto& id : list) {
    if (!out.empty()) out += "; ";
    out += Printable(id);
  }
  return out;
}

int DoModify(const Command& c) {
  if (c.access_op.empty())
    return Usage("modify needs 'allow ID[,ID...]', 'deny ID[,ID...]', 'open' or "
                 "'auth enable|disable'");
  std::vector<std::string> ids;
  if (c.access_op == "allow" || c.access_op == "deny") {
    auto parsed = ParseTlsIdentityList(c.access_ids);
    if (!parsed) return Usage(parsed.status().message());
    ids = *parsed;
  }
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  const nbdr_access_op op = c.access_op == "allow"          ? NBDR_ACCESS_ALLOW
                            : c.access_op == "deny"         ? NBDR_ACCESS_DENY
                            : c.access_op == "auth-enable"  ? NBDR_ACCESS_AUTH_ENABLE
                            : c.access_op == "auth-disable" ? NBDR_ACCESS_AUTH_DISABLE
                                                            : NBDR_ACCESS_OPEN;
  AccessAnswer a = CallAccess(&*client, c, op, ids);
  if (!a.call.ok()) return CallFailed(a.call);
  if (a.status != 0) return Error(kExitFailed, a.status, a.message);
  PrintAccess(c, a, "");
  return kExitOk;
}

int CreateWithAuth(const Command& c, nbdr_create_args* args) {
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  RpcResult<nbdr_access_reply> r(NBDR_CREATE_AUTH);
  if (Status s = client->Call(NBDR_CREATE_AUTH, args, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  AccessAnswer a;
  ReadAccessReply(*r, &a);
  PrintAccess(c, a, r->message);
  return kExitOk;
}

}  // namespace nbdr::cli
