// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli TYPE resize KEY size SIZE [shrink]: the runner resizes the
// backing object and records the new size; a backstore with a runner set
// is resized on the runner asked, then recorded on the others of its set.
#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/kernel_nbd.h"
#include "cli/mapping_state.h"
#include "cli/runner_set.h"
#include "utils/names.h"
#include "utils/size_parse.h"

namespace nbdr::cli {
namespace {

// Records the new size on the runners of the set other than here_id: the
// object already has it, so each runner's resize only updates its record.
// What went wrong, runner by runner ("" when nothing did); *done gets the
// addresses that did it.
std::string ResizeOnOthers(const Command& c, const nbdr_backstore& b, const std::string& here_id,
                           nbdr_resize_args* a, std::vector<std::string>* done) {
  std::string problems;
  for (const auto& p : ProbeRunners(RunnersOf(b), c, std::min(5, c.call_timeout_s))) {
    if (p.answers && p.id == here_id) continue;
    Status s = p.answers ? Status() : Status::Error(EHOSTUNREACH, p.address + ": " + p.problem);
    if (s.ok()) {
      auto client = ConnectToRunner(p.address, c);
      if (!client) {
        s = client.status();
      } else {
        SetMember m{p.address, std::move(*client)};
        s = StatusCall(&m, NBDR_RESIZE, a);
      }
    }
    if (s.ok())
      done->push_back(p.address);
    else
      problems += "; " + s.message();
  }
  return problems;
}

// Grows this host's devices that map c's backstore to size, at once
// (nbd-clid would within a poll): what happened, as "; ..." clauses.
std::string GrowLocalDevices(const Command& c, uint64_t size) {
  auto mappings = LoadMappings();
  if (!mappings) return "; this host's mappings unknown: " + mappings.status().message();
  std::string text;
  for (const auto& m : *mappings) {
    if (m.type != c.type || m.key != c.key) continue;
    auto grown = GrowDevice(ParseNbdDevice(m.device), size);
    if (!grown)
      text += "; " + m.device + " keeps its size: " + grown.status().message();
    else if (*grown)
      text += "; " + m.device + " grown";
  }
  return text;
}

}  // namespace

int DoResize(const Command& c) {
  if (!c.have_size) return Usage("resize needs 'size SIZE'");
  auto size = ParseBackstoreSize(c.size_text);
  if (!size) return Usage(size.status().message());
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  RpcResult<nbdr_info_reply> info(NBDR_INFO);
  if (int rc = CallInfo(&*client, c, &info); rc >= 0) return rc;
  const nbdr_backstore& b = info->backstore.backstore_val[0];
  nbdr_resize_args a{const_cast<char*>(c.type.c_str()), const_cast<char*>(c.key.c_str()), *size,
                     c.shrink};
  const std::vector<std::string> set = RunnersOf(b);
  std::string here_id;
  if (!set.empty()) {
    auto id = AskRunnerId(&*client);
    if (!id) return CallFailed(id.status());
    here_id = *id;
  }
  RpcResult<nbdr_status_reply> r(NBDR_RESIZE);
  if (int rc = CallStatus(&*client, NBDR_RESIZE, &a, &r); rc >= 0) return rc;
  if (set.empty()) return ReportStatus(c, (r->message + GrowLocalDevices(c, *size)).c_str());
  // The devices grow only once every runner that may serve them does.
  std::vector<std::string> done{client->target()};
  const std::string problems = ResizeOnOthers(c, b, here_id, &a, &done);
  if (!problems.empty())
    return Error(kExitFailed, EAGAIN,
                 std::string(r->message) + ", but not recorded on every runner of its set" +
                     problems + ": run the resize again once they answer");
  const std::string message = r->message + GrowLocalDevices(c, *size);
  std::string text = message + " on " + std::to_string(done.size()) + " runners:";
  for (const auto& d : done) text += " " + d;
  return ReportRunnerSet(c, message, done, text);
}

}  // namespace nbdr::cli
