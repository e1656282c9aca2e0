// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Runner sets on nbd-cli's side: the runners given as "host H1,H2,..."
// (with "ha N"), and which runners of a backstore's set answer now, told
// apart by their runner ids (two addresses of one runner are one runner).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/command.h"

namespace nbdr::cli {

// "H1[:P],H2[:P],...": fills c->hosts (c->host is the first). -1, or the
// exit status of a usage error.
int ParseHosts(const std::string& text, Command* c);
// The rules between host, ha and the verb, once the command is parsed:
// -1, or the exit status of a usage error.
int CheckRunnerSet(const Command& c);
// c's runners as a runner set stores them ("HOST:PORT" each).
std::vector<std::string> RunnerSetOf(const Command& c);

// One runner of a set, asked for its version and id.
struct RunnerProbe {
  std::string address;  // as the set names it
  bool answers = false;
  std::string id;       // its runner id, when it answers
  std::string problem;  // why it does not answer
};
// Asks each runner of set, waiting at most timeout_s for each.
std::vector<RunnerProbe> ProbeRunners(const std::vector<std::string>& set, const Command& c,
                                      int timeout_s);
// The runner set a runner answered for a backstore.
std::vector<std::string> RunnersOf(const nbdr_backstore& b);
// Which runners of the backstores' sets answer now, each asked once:
// address -> probe.
std::map<std::string, RunnerProbe> ProbeSets(const nbdr_backstore* list, size_t n,
                                             const Command& c);
// The runners of set that answered in probes.
std::vector<std::string> Answering(const std::vector<std::string>& set,
                                   const std::map<std::string, RunnerProbe>& probes);
// "a:1 (this one), b:2 (answers), c:3 (does not answer: why)"; here_id is
// the id of the runner asked ("" when unknown).
std::string RunnerSetText(const std::vector<std::string>& set,
                          const std::map<std::string, RunnerProbe>& probes,
                          const std::string& here_id);
// A connection to one runner of a set (address as the set names it).
Expected<RunnerClient> ConnectToRunner(const std::string& address, const Command& c);
// The runner id of the runner client is connected to ("" if it does not say).
Expected<std::string> AskRunnerId(RunnerClient* client);

// OK when every runner of probes that answers (other than here_id) holds
// the backstore c names, unmapped, with this same set: ESTALE naming the
// first that does not hold it or records another set (the record asked
// may be out of date), EBUSY the first where it is mapped. (force skips
// runners that do not answer: it trusts the record asked for those.)
Status CheckSetsAgree(const std::vector<RunnerProbe>& probes, const std::string& here_id,
                      const std::vector<std::string>& set, const Command& c,
                      bool must_be_unmapped = true);

// Reports a change to a backstore with a runner set: text as it is, or
// in JSON {"result": done, "export", "runners": set}.
int ReportRunnerSet(const Command& c, const std::string& done, const std::vector<std::string>& set,
                    const std::string& text);

// One runner of a set, connected.
struct SetMember {
  std::string address;
  RunnerClient client;
};
// Calls proc (its reply an nbdr_status_reply) on m: OK, or the error with
// the runner named.
// *answered (if given) tells whether the runner answered at all.
Status StatusCall(SetMember* m, uint32_t proc, void* args, bool* answered = nullptr);

// The create args that register backstore b (with set, or b's own set):
// a rollback's import, or replace's on the new runner.
class Registration {
 public:
  explicit Registration(const nbdr_backstore& b) : Registration(b, RunnersOf(b)) {}
  Registration(const nbdr_backstore& b, std::vector<std::string> set);
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  const std::vector<std::string>& set() const { return set_; }
  nbdr_create_args* args() { return &args_; }

 private:
  std::string type_, key_;
  std::vector<std::string> set_;
  std::vector<nbdr_runner> runners_;  // point into set_
  nbdr_create_args args_{};
};

}  // namespace nbdr::cli
