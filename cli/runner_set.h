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

}  // namespace nbdr::cli
