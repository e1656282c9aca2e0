// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli TYPE replace KEY OLD NEW: swaps one runner of a backstore's
// runner set for another (gluster-block's replace), for a node retired or
// dead. The new runner registers the backstore first, the old one (when it
// answers) forgets it, then every other runner takes the new set; a
// refusal anywhere puts back what was done. See command.h.
#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/runner_set.h"
#include "utils/names.h"
#include "utils/printable.h"

namespace nbdr::cli {

namespace {

std::string Joined(const std::vector<std::string>& list) {
  std::string text;
  for (const auto& r : list) text += (text.empty() ? "" : ", ") + r;
  return text;
}

// The runners of probes, other than old, that must answer: all of them.
Status EveryoneElseAnswers(const std::vector<RunnerProbe>& probes, const std::string& old) {
  std::string silent;
  for (const auto& p : probes)
    if (p.address != old && !p.answers)
      silent += (silent.empty() ? "" : ", ") + p.address + " (" + p.problem + ")";
  if (!silent.empty()) return Status::Error(EHOSTUNREACH, "runners do not answer: " + silent);
  const RunnerProbe& added = probes.back();
  for (size_t i = 0; i + 1 < probes.size(); i++)
    if (probes[i].answers && probes[i].id == added.id)
      return Status::Error(EINVAL, added.address + " is " + probes[i].address +
                                       " under another name (runner id " + added.id + ")");
  return Status();
}

// Gives every runner of set other than old the runner set `to` in place
// of `from`; on a refusal, puts `from` back where it got to.
Status ChangeSets(const Command& c, const std::vector<std::string>& set, const std::string& old,
                  std::vector<std::string> from, std::vector<std::string> to) {
  std::vector<nbdr_runner> f, t;
  for (auto& r : from) f.push_back(r.data());
  for (auto& r : to) t.push_back(r.data());
  nbdr_runners_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str()),
                      {static_cast<u_int>(f.size()), f.data()},
                      {static_cast<u_int>(t.size()), t.data()}};
  std::vector<SetMember> done;
  auto put_back = [&](const Status& why) {
    a.expected = {static_cast<u_int>(t.size()), t.data()};
    a.runners = {static_cast<u_int>(f.size()), f.data()};
    for (auto& d : done) (void)StatusCall(&d, NBDR_SET_RUNNERS, &a);
    return why;
  };
  for (const auto& address : set) {
    if (address == old) continue;
    auto client = ConnectToRunner(address, c);
    if (!client) return put_back(client.status());
    SetMember m{address, std::move(*client)};
    if (Status s = StatusCall(&m, NBDR_SET_RUNNERS, &a); !s.ok()) return put_back(s);
    done.push_back(std::move(m));
  }
  return Status();
}

}  // namespace

int DoReplace(const Command& c) {
  const std::string name = MakeExportName(c.type, c.key);
  auto here = ConnectOrFail(c);
  if (!here) return CallFailed(here.status());
  RpcResult<nbdr_info_reply> info(NBDR_INFO);
  if (int rc = CallInfo(&*here, c, &info); rc >= 0) return rc;
  const nbdr_backstore& b = info->backstore.backstore_val[0];
  const std::vector<std::string> set = RunnersOf(b);
  const std::string old = FormatHostPort(c.replace_old), added = FormatHostPort(c.replace_new);
  if (set.empty())
    return Error(kExitFailed, EINVAL, name + " has no runner set (it was not created or "
                                             "imported with ha)");
  if (std::find(set.begin(), set.end(), old) == set.end())
    return Error(kExitFailed, EINVAL, old + " is not in the runner set of " + name + ": " +
                                          Joined(set));
  if (std::find(set.begin(), set.end(), added) != set.end())
    return Error(kExitFailed, EEXIST, added + " is already in the runner set of " + name);
  std::vector<std::string> new_set = set;
  std::replace(new_set.begin(), new_set.end(), old, added);
  std::vector<std::string> asked = set;
  asked.push_back(added);
  const auto probes = ProbeRunners(asked, c, std::min(5, c.call_timeout_s));
  if (Status s = EveryoneElseAnswers(probes, old); !s.ok())
    return CallFailed(s.WithContext("not replacing " + old + " in " + name + " (nothing changed)"));
  // Access lists are each runner's: the new one would start open to all.
  if (auto access = AskAccess(&*here, c); access && !access->empty())
    return Error(kExitFailed, EOPNOTSUPP,
                 "not replacing " + old + " in " + name + ": it has an access list (" +
                     AccessText(*access) + "), which replace does not carry over yet; open it "
                     "('modify KEY open') first and allow the identities again after");
  // The record asked must be the set's current one (not one left on a
  // runner replaced while it was down).
  auto here_id = AskRunnerId(&*here);
  if (!here_id) return CallFailed(here_id.status());
  std::vector<RunnerProbe> members(probes.begin(), probes.end() - 1);
  if (Status s = CheckSetsAgree(members, *here_id, set, c, /*must_be_unmapped=*/false); !s.ok())
    return CallFailed(s.WithContext("not replacing " + old + " in " + name + " (nothing changed)"));
  const bool old_answers =
      std::find_if(probes.begin(), probes.end(), [&](const RunnerProbe& p) {
        return p.address == old && p.answers;
      }) != probes.end();
  // 1. The new runner registers it with the new set.
  auto added_client = ConnectToRunner(added, c);
  if (!added_client) return CallFailed(added_client.status());
  SetMember fresh{added, std::move(*added_client)};
  Registration reg(b, new_set);
  if (Status s = StatusCall(&fresh, NBDR_IMPORT, reg.args()); !s.ok())
    return CallFailed(s.WithContext("not replacing " + old + " in " + name + " (nothing changed)"));
  nbdr_key_args key{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str())};
  // 2. The old one forgets it, when it answers.
  std::optional<SetMember> retired;
  if (old_answers) {
    auto client = ConnectToRunner(old, c);
    Status s = client ? Status() : client.status();
    if (s.ok()) {
      retired.emplace(SetMember{old, std::move(*client)});
      s = StatusCall(&*retired, NBDR_FORGET, &key);
    }
    if (!s.ok() && s.code() != ENOENT) {
      (void)StatusCall(&fresh, NBDR_FORGET, &key);
      return CallFailed(s.WithContext("not replacing " + old + " in " + name + " (nothing changed)"));
    }
  }
  // 3. The others take the new set.
  if (Status s = ChangeSets(c, set, old, set, new_set); !s.ok()) {
    Registration back(b, set);
    if (retired) (void)StatusCall(&*retired, NBDR_IMPORT, back.args());
    (void)StatusCall(&fresh, NBDR_FORGET, &key);
    return CallFailed(s.WithContext("not replacing " + old + " in " + name + " (put back)"));
  }
  std::string done = "replaced " + old + " by " + added + " in the runner set of " + name;
  if (!old_answers)
    done += " (" + old + " did not answer: it keeps its out-of-date record until 'nbd-cli " +
            c.type + " forget " + c.key + "' runs there)";
  return ReportRunnerSet(c, done, new_set, done + "; runner set: " + Joined(new_set));
}

}  // namespace nbdr::cli
