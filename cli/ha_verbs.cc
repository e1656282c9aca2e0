// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// create, import and delete of a backstore served by a runner set (high
// availability): the backing object is created once, through the first
// runner, and registered on every runner of the set with the whole set;
// all or nothing, so a failure on one runner is rolled back on those the
// command got to. delete unregisters it everywhere (NBDR_FORGET) and
// deletes the object through the runner it was asked of. See command.h.
#include <json-c/json.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/runner_set.h"
#include "utils/names.h"
#include "utils/printable.h"
#include "utils/size_parse.h"

namespace nbdr::cli {

namespace {

// Connects to every runner of set: all of them, or an error naming the
// first that does not answer, or two addresses that reach one runner.
Expected<std::vector<SetMember>> ConnectAll(const std::vector<std::string>& set, const Command& c) {
  std::vector<SetMember> members;
  std::vector<std::string> ids;
  for (const auto& address : set) {
    auto client = ConnectToRunner(address, c);
    auto id = client ? AskRunnerId(&*client) : Expected<std::string>(client.status());
    if (!id) return Status::Error(id.status().code(), "runner " + address + ": " + id.status().message());
    for (size_t i = 0; i < ids.size(); i++)
      if (!id->empty() && ids[i] == *id)
        return Status::Error(EINVAL, set[i] + " and " + address + " are the same runner (id " +
                                         *id + "); a runner set names each runner once");
    ids.push_back(*id);
    members.push_back({address, std::move(*client)});
  }
  return members;
}

// Undoes a registration that got to members[0, registered): forgets it on
// each (deletes it on the first when this command created the object).
// What it did, as a sentence.
std::string RollBack(std::vector<SetMember>* members, size_t registered, bool created,
                     const Command& c) {
  nbdr_key_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  std::string done, failed;
  // Forgotten everywhere but where it was made; the object is removed only
  // when every forget went through: a runner that kept its record (it may
  // serve it already) must not be left pointing at nothing.
  const size_t last = created ? 1 : 0;
  for (size_t i = registered; i-- > last;) {
    Status s = StatusCall(&(*members)[i], NBDR_FORGET, &a);
    if (s.code() == ENOENT) s = Status();  // never got there
    std::string& list = s.ok() ? done : failed;
    list += (list.empty() ? "" : ", ") + (*members)[i].address;
    if (!s.ok()) failed += " (" + s.message() + ")";
  }
  if (created && registered > 0) {
    Status s = failed.empty() ? StatusCall(&(*members)[0], NBDR_DELETE, &a)
                              : Status::Error(EBUSY, "kept while other runners still record it");
    std::string& list = s.ok() ? done : failed;
    list += (list.empty() ? "" : ", ") + (*members)[0].address;
    if (!s.ok()) failed += " (object and record kept: " + s.message() + ")";
  }
  std::string text = done.empty() ? "" : "rolled back on " + done;
  if (!failed.empty())
    text += (text.empty() ? "" : "; ") + std::string("not rolled back on ") + failed +
            ": check with info there, then forget or delete it";
  return text.empty() ? "nothing to roll back" : text;
}

// "DONE on N runners: A, B, C"
std::string OnRunners(const std::string& done, const std::vector<std::string>& set) {
  std::string runners;
  for (const auto& r : set) runners += (runners.empty() ? "" : ", ") + r;
  return done + " on " + std::to_string(set.size()) + " runners: " + runners;
}

// Registers args on members[first, end) with NBDR_IMPORT; on a failure,
// rolls back everything (created: members[0] made the object) and reports.
int RegisterOnRest(std::vector<SetMember>* members, size_t first, nbdr_create_args args,
                   bool created, const Command& c) {
  args.prealloc = false;
  for (size_t i = first; i < members->size(); i++) {
    bool answered = false;
    if (Status s = StatusCall(&(*members)[i], NBDR_IMPORT, &args, &answered); !s.ok()) {
      // Without an answer the import may have happened there: undone too.
      const std::string undo = RollBack(members, answered ? i : i + 1, created, c);
      return CallFailed(Status::Error(s.code(), std::string(created ? "create" : "import") +
                                                    " of " + MakeExportName(c.type, c.key) +
                                                    " refused: " + s.message() + "; " + undo));
    }
  }
  return -1;
}

int RegisterOnSet(const Command& c, nbdr_create_args a, bool create) {
  const std::vector<std::string> set = RunnerSetOf(c);
  const std::string name = MakeExportName(c.type, c.key);
  auto members = ConnectAll(set, c);
  if (!members)
    return CallFailed(members.status().WithContext(std::string("not ") +
                                                   (create ? "creating " : "importing ") + name +
                                                   " (nothing changed)"));
  std::vector<nbdr_runner> runners;
  for (const auto& r : set) runners.push_back(const_cast<char*>(r.c_str()));
  a.runners = {static_cast<u_int>(runners.size()), runners.data()};
  if (create)
    if (Status s = StatusCall(&(*members)[0], NBDR_CREATE, &a); !s.ok()) return CallFailed(s);
  if (int rc = RegisterOnRest(&*members, create ? 1 : 0, a, create, c); rc >= 0) return rc;
  const std::string done =
      create ? "created " + name + " (" + FormatSize(a.size) + ")" : "imported " + name;
  return ReportRunnerSet(c, done, set, OnRunners(done, set));
}

// The runners of probes that do not answer, with why, as a sentence part.
std::string Silent(const std::vector<RunnerProbe>& probes) {
  std::string text;
  for (const auto& p : probes)
    if (!p.answers) text += (text.empty() ? "" : ", ") + p.address + " (" + p.problem + ")";
  return text;
}

// A runner a delete made forget the backstore, and the access list it had.
struct Forgotten {
  SetMember m;
  std::vector<std::string> access;
};

Status ForgetKeepingAccess(Forgotten* f, const Command& c) {
  auto access = AskAccess(&f->m.client, c);
  if (access) f->access = *access;
  nbdr_key_args key{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  Status s = StatusCall(&f->m, NBDR_FORGET, &key);
  return s.code() == ENOENT ? Status() : s;  // already gone there
}

// Undoes ForgetKeepingAccess: registered again, its access list put back.
Status RegisterAgain(Forgotten* f, Registration* reg, const Command& c) {
  if (Status s = StatusCall(&f->m, NBDR_IMPORT, reg->args()); !s.ok()) return s;
  return AllowAgain(&f->m.client, c, f->access);
}

}  // namespace

int CreateOnRunnerSet(const Command& c, const nbdr_create_args& args) {
  return RegisterOnSet(c, args, /*create=*/true);
}

int ImportOnRunnerSet(const Command& c, const nbdr_create_args& args) {
  return RegisterOnSet(c, args, /*create=*/false);
}

int DeleteOnRunnerSet(const Command& c, RunnerClient* here, const nbdr_backstore& b) {
  const std::string name = MakeExportName(c.type, c.key);
  Registration reg(b);
  auto here_id = AskRunnerId(here);
  if (!here_id) return CallFailed(here_id.status());
  const std::vector<RunnerProbe> probes = ProbeRunners(reg.set(), c, std::min(5, c.call_timeout_s));
  if (const std::string silent = Silent(probes); !silent.empty() && !c.force)
    return Error(kExitFailed, EHOSTUNREACH,
                 "not deleting " + name + ": runners of its set do not answer: " + silent +
                     "; their records would outlive the object. Bring them back, or add "
                     "'force' (a runner that comes back then refuses to serve the record, its "
                     "object being gone, until it is deleted there too)");
  if (Status s = CheckSetsAgree(probes, *here_id, reg.set(), c); !s.ok())
    return CallFailed(s.WithContext("not deleting " + name));
  // Everywhere else first, so that a refusal (mapped or served there)
  // leaves the object and this runner's record as they were.
  std::vector<Forgotten> forgotten;
  Status failed;
  for (const auto& p : probes) {
    if (!p.answers || p.id == *here_id) continue;
    auto client = ConnectToRunner(p.address, c);
    if (!client) {
      failed = client.status();
      break;
    }
    Forgotten f{{p.address, std::move(*client)}, {}};
    failed = ForgetKeepingAccess(&f, c);
    if (!failed.ok()) break;
    forgotten.push_back(std::move(f));
  }
  SetMember self{here->target(), std::move(*here)};
  nbdr_key_args key{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  if (failed.ok()) failed = StatusCall(&self, NBDR_DELETE, &key);
  if (!failed.ok()) {
    std::string undo;
    for (auto& f : forgotten)
      if (Status s = RegisterAgain(&f, &reg, c); !s.ok())
        undo += "; could not register it again on " + f.m.address + ": " + s.message();
    return CallFailed(failed.WithContext("not deleting " + name + undo));
  }
  std::vector<std::string> done{self.address};
  for (const auto& f : forgotten) done.push_back(f.m.address);
  return ReportRunnerSet(c, "deleted " + name, done, OnRunners("deleted " + name, done));
}

}  // namespace nbdr::cli
