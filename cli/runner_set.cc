// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Runner sets on nbd-cli's side; see runner_set.h.
#include "cli/runner_set.h"

#include <algorithm>
#include <cerrno>

#include "cli/cli_output.h"
#include "rpc/backstore_status.h"
#include "utils/names.h"
#include "utils/printable.h"

namespace nbdr::cli {

int ParseHosts(const std::string& text, Command* c) {
  c->hosts.clear();
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma - start);
    if (part.empty()) return Usage("'host' has an empty runner in '" + text + "'");
    auto hp = ParseHostPort(part, kDefaultRpcPort);
    if (!hp) return Usage(hp.status().message());
    c->hosts.push_back(*hp);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (c->hosts.size() > NBDR_MAX_RUNNERS)
    return Usage("'host' names more than " + std::to_string(NBDR_MAX_RUNNERS) + " runners");
  c->host = c->hosts.front();
  c->host_given = true;
  return -1;
}

int CheckRunnerSet(const Command& c) {
  const size_t n = c.hosts.size();
  const bool registers = c.verb == "create" || c.verb == "import";
  if (n > 1 && !registers && c.verb != "map")
    return Usage("'host' takes one runner for " + c.verb +
                 "; a list of runners is for create and import (with ha), and map");
  if (c.ha > 1 && n != static_cast<size_t>(c.ha))
    return Usage("ha " + std::to_string(c.ha) + " needs " + std::to_string(c.ha) +
                 " runners in 'host H1,H2,...'; " + std::to_string(n) + " given");
  if (c.ha == 1 && n > 1)
    return Usage("ha 1 takes one runner; " + std::to_string(n) + " given in 'host'");
  const std::vector<std::string> set = RunnerSetOf(c);
  for (size_t i = 0; i < set.size(); i++)
    for (size_t j = i + 1; j < set.size(); j++)
      if (set[i] == set[j]) return Usage("'host' names " + set[i] + " twice");
  if (c.auth && n > 1)
    return Usage("create ... auth with several runners is not supported yet: its key is minted "
                 "by one runner; create with ha, then 'modify KEY allow' the same identity on each");
  return -1;
}

std::vector<std::string> RunnerSetOf(const Command& c) {
  std::vector<std::string> set;
  if (c.hosts.size() < 2) return set;
  for (const auto& hp : c.hosts) set.push_back(FormatHostPort(hp));
  return set;
}

Expected<RunnerClient> ConnectToRunner(const std::string& address, const Command& c) {
  auto hp = ParseHostPort(address, kDefaultRpcPort);
  if (!hp) return hp.status();
  auto client = RunnerClient::Connect(*hp, std::min(10, c.call_timeout_s), &c.tls);
  if (client) client->set_call_timeout(c.call_timeout_s);
  return client;
}

Expected<std::string> AskRunnerId(RunnerClient* client) {
  RpcResult<nbdr_version_reply> r(NBDR_VERSION);
  if (Status s = client->Call(NBDR_VERSION, nullptr, r.get()); !s.ok()) return s;
  r.set_filled();
  if (r->status != 0) return Status::Error(r->status, r->message);
  return std::string(r->runner_id);
}

std::vector<RunnerProbe> ProbeRunners(const std::vector<std::string>& set, const Command& c,
                                      int timeout_s) {
  std::vector<RunnerProbe> out;
  for (const auto& address : set) {
    RunnerProbe p;
    p.address = address;
    Command quick = c;
    quick.call_timeout_s = timeout_s;
    auto client = ConnectToRunner(address, quick);
    auto id = client ? AskRunnerId(&*client) : Expected<std::string>(client.status());
    if (id) {
      p.answers = true;
      p.id = *id;
    } else {
      p.problem = id.status().message();
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::string> RunnersOf(const nbdr_backstore& b) {
  return {b.runners.runners_val, b.runners.runners_val + b.runners.runners_len};
}

std::map<std::string, RunnerProbe> ProbeSets(const nbdr_backstore* list, size_t n,
                                             const Command& c) {
  std::vector<std::string> all;
  for (size_t i = 0; i < n; i++)
    for (const auto& r : RunnersOf(list[i]))
      if (std::find(all.begin(), all.end(), r) == all.end()) all.push_back(r);
  std::map<std::string, RunnerProbe> out;
  for (auto& p : ProbeRunners(all, c, std::min(5, c.call_timeout_s))) out[p.address] = p;
  return out;
}

std::vector<std::string> Answering(const std::vector<std::string>& set,
                                   const std::map<std::string, RunnerProbe>& probes) {
  std::vector<std::string> out;
  for (const auto& r : set)
    if (auto it = probes.find(r); it != probes.end() && it->second.answers) out.push_back(r);
  return out;
}

std::string RunnerSetText(const std::vector<std::string>& set,
                          const std::map<std::string, RunnerProbe>& probes,
                          const std::string& here_id) {
  std::string text;
  for (const auto& r : set) {
    auto it = probes.find(r);
    std::string state = "not asked";
    if (it != probes.end())
      state = !it->second.answers                          ? "does not answer: " + it->second.problem
              : !here_id.empty() && it->second.id == here_id ? "this one"
                                                             : "answers";
    text += (text.empty() ? "" : ", ") + r + " (" + state + ")";
  }
  return text;
}

int ReportRunnerSet(const Command& c, const std::string& done, const std::vector<std::string>& set,
                    const std::string& text) {
  if (!JsonOutput()) {
    printf("%s\n", Printable(text).c_str());
    return kExitOk;
  }
  Json o(json_object_new_object());
  json_object_object_add(o.get(), "result", json_object_new_string(done.c_str()));
  json_object_object_add(o.get(), "export",
                         json_object_new_string(MakeExportName(c.type, c.key).c_str()));
  json_object* list = json_object_new_array();
  for (const auto& r : set) json_object_array_add(list, json_object_new_string(r.c_str()));
  json_object_object_add(o.get(), "runners", list);
  PrintJson(o.get(), stdout);
  return kExitOk;
}

Status StatusCall(SetMember* m, uint32_t proc, void* args, bool* answered) {
  RpcResult<nbdr_status_reply> r(proc);
  if (answered) *answered = false;
  if (Status s = m->client.Call(proc, args, r.get()); !s.ok())
    return Status::Error(s.code(), "runner " + m->address + ": " + s.message());
  r.set_filled();
  if (answered) *answered = true;
  if (r->status != 0) return Status::Error(r->status, "runner " + m->address + ": " + r->message);
  return Status();
}

Registration::Registration(const nbdr_backstore& b, std::vector<std::string> set)
    : type_(b.type), key_(b.key), set_(std::move(set)) {
  for (auto& r : set_) runners_.push_back(r.data());
  args_.type = type_.data();
  args_.key = key_.data();
  args_.size = b.size;
  args_.block_size = b.block_size;
  args_.readonly = b.readonly;
  args_.runners = {static_cast<u_int>(runners_.size()), runners_.data()};
}

Status CheckSetsAgree(const std::vector<RunnerProbe>& probes, const std::string& here_id,
                      const std::vector<std::string>& set, const Command& c,
                      bool must_be_unmapped) {
  for (const auto& p : probes) {
    if (!p.answers || p.id == here_id) continue;
    auto client = ConnectToRunner(p.address, c);
    if (!client) return client.status();
    RpcResult<nbdr_info_reply> info(NBDR_INFO);
    nbdr_key_args key{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
    if (Status s = client->Call(NBDR_INFO, &key, info.get()); !s.ok()) return s;
    info.set_filled();
    // A runner of the set that does not hold it (it forgot it, or was
    // replaced and forgot it since) means this record may be out of date:
    // deleting the object through it could pull it from under runners it
    // does not know of.
    if (info->status != 0 || info->backstore.backstore_len != 1)
      return Status::Error(ESTALE, "runner " + p.address + " of its set does not hold it (" +
                                       info->message + "): the record asked may be out of date; "
                                       "if no runner serves it any more, clear it with 'nbd-cli " +
                                       c.type + " forget " + c.key + "'");
    const nbdr_backstore& theirs_b = info->backstore.backstore_val[0];
    if (must_be_unmapped && ParseStatus(theirs_b.status) != NBDR_STATUS_CREATED)
      return Status::Error(EBUSY, "it is " + std::string(theirs_b.status) + " on runner " +
                                      p.address + "; unmap it there first");
    const std::vector<std::string> theirs = RunnersOf(theirs_b);
    if (theirs != set) {
      std::string text;
      for (const auto& r : theirs) text += (text.empty() ? "" : ", ") + r;
      return Status::Error(ESTALE, "runner " + p.address + " records another runner set for it (" +
                                       text + "): the record asked is out of date (its runner "
                                       "was replaced while it was down); clear it there with "
                                       "'nbd-cli " + c.type + " forget " + c.key + "'");
    }
  }
  return Status();
}

}  // namespace nbdr::cli
