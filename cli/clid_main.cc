// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-clid: keeps the mappings nbd-cli made on this host alive. When a
// device's link dies (NBD_CMD_LINK_DEAD on the nbd multicast group) or its
// runner reports it dead (the runner restarted; polled every --interval
// seconds), it reconnects: a fresh NBD handshake on new sockets, then
// NBD_CMD_RECONFIGURE with the same backend identifier, within the
// device's dead-connection timeout, so applications see no error.
//
//   nbd-clid [--foreground] [--interval SECONDS]
#include <poll.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string>

#include "cli/host_identity.h"
#include "cli/kernel_nbd.h"
#include "cli/mapping_state.h"
#include "cli/nbd_client_handshake.h"
#include "cli/call_signals.h"
#include "cli/runner_client.h"
#include "rpc/backstore_status.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/size_parse.h"

using namespace nbdr;

namespace {

std::atomic<bool> g_stop{false};
int g_wake_fd = -1;  // an eventfd the main loop polls: a signal ends its wait
// On the signal thread (call_signals.h), for SIGINT or SIGTERM outside a
// call: stop after this pass.
void OnSignal(int) {
  g_stop = true;
  const uint64_t one = 1;
  ssize_t ignored = write(g_wake_fd, &one, sizeof one);
  (void)ignored;
}

// Asks the runner for a mapping's backstore (NBDR_INFO): *info is filled
// when the call went through, whatever its status.
Status AskRunner(RunnerClient* client, const MappingRecord& m, RpcResult<nbdr_info_reply>* info) {
  nbdr_key_args a{const_cast<char*>(m.type.c_str()), const_cast<char*>(m.key.c_str())};
  if (Status s = client->Call(NBDR_INFO, &a, info->get()); !s.ok()) return s;
  info->set_filled();
  return Status();
}

// The runner's view of a mapping (dead after it restarted) in its INFO
// reply, or nullopt when the runner could not tell.
std::optional<BackstoreStatus> RunnerStatus(const RpcResult<nbdr_info_reply>& info) {
  if (info->status != 0 || info->backstore.backstore_len != 1) return std::nullopt;
  return ParseStatus(info->backstore.backstore_val[0].status);
}

// How long nbd-clid waits for one runner's reply (--timeout): one hung
// runner must not hold up the devices of the others past their
// dead-connection timeout, hence shorter than nbd-cli's.
int g_call_timeout_s = 10;
// ... and for its connection to be accepted.
constexpr int kConnectTimeoutS = 3;

// A connection to a runner, with this daemon's call timeout, or nothing
// when the runner does not answer.
std::optional<RunnerClient> ConnectRunner(const HostPort& where, const ClientTlsCredentials& tls) {
  auto client = RunnerClient::Connect(where, kConnectTimeoutS, &tls);
  if (!client) return std::nullopt;
  client->set_call_timeout(g_call_timeout_s);
  return std::move(*client);
}

// Reconnect's answer when the mapping is no longer this device's to
// reconnect: the backstore was unmapped, or another client mapped it, or
// the device now holds something else.
constexpr int kNotOurs = ESTALE;

// OK while /dev/nbd<index> still holds mapping m (by its backend id);
// kNotOurs once it holds something else or nothing.
Status DeviceHolds(const MappingRecord& m, int index) {
  std::string backend = BackendIdFor(m.runner, MakeExportName(m.type, m.key));
  if (std::string held = NbdBackend(index); held != backend)
    return Status::Error(kNotOurs, m.device + " now holds " +
                                       (held.empty() ? "nothing" : "'" + held + "'"));
  return Status();
}

// Reconnects mapping m on /dev/nbd<index>, given the runner's INFO reply
// on its backstore (info).
Status Reconnect(RunnerClient* client, const MappingRecord& m, int index,
                 const std::string& host_id, const RpcResult<nbdr_info_reply>& info) {
  std::string export_name = MakeExportName(m.type, m.key);
  std::string backend = BackendIdFor(m.runner, export_name);
  if (Status s = DeviceHolds(m, index); !s.ok()) return s;
  if (info->status == ENOENT) return Status::Error(kNotOurs, info->message);
  if (info->status != 0) return Status::Error(info->status, info->message);
  if (info->backstore.backstore_len != 1)
    return Status::Error(EPROTO, "the runner's answer about " + export_name + " is malformed");
  // Only a mapping the runner still gives to this device of this host is
  // reconnected: dead (the runner restarted or every connection dropped)
  // or mapped (some of its connections dropped). Anything else means it
  // was unmapped or another client has it now (perhaps on a device of the
  // same name), and reattaching would put two writers on one disk.
  const nbdr_backstore& b = info->backstore.backstore_val[0];
  const auto status = ParseStatus(b.status);
  bool this_host = !*b.client || b.client == host_id;  // none: recorded before clients were
  if ((status != NBDR_STATUS_DEAD && status != NBDR_STATUS_MAPPED) || m.device != b.device ||
      !this_host)
    return Status::Error(kNotOurs, export_name + " is " + b.status +
                                       (*b.device ? std::string(" on ") + b.device : "") +
                                       (*b.client ? std::string(" of ") + b.client : "") +
                                       " on the runner");
  auto socks = ConnectExportSockets(IoHostFor(*client, info->io.host),
                                    static_cast<uint16_t>(info->io.port), export_name,
                                    m.connections > 0 ? m.connections : 1, m.tls);
  if (!socks) return socks.status();
  std::vector<int> fds;
  for (auto& f : socks->fds) fds.push_back(f.get());
  // The handshake took a while: unmap may have run meanwhile. It forgets
  // the record before it disconnects, so a record still here (and the
  // device still holding this backstore) means the device is still ours
  // to reconnect; a reconfigure would bring an unmapped device back.
  auto still = FindMapping(m.device, m.type, m.key);
  if (!still) return still.status();
  if (!*still) return Status::Error(kNotOurs, m.device + " was unmapped meanwhile");
  if (Status s = DeviceHolds(m, index); !s.ok()) return s;
  if (Status s = NbdReconfigure(index, fds, backend); !s.ok()) return s;
  if (status == NBDR_STATUS_MAPPED) return Status();  // the runner's record is already right
  nbdr_mapped_args ma{const_cast<char*>(m.type.c_str()), const_cast<char*>(m.key.c_str()),
                      const_cast<char*>(m.device.c_str()), const_cast<char*>(host_id.c_str()),
                      0};
  RpcResult<nbdr_status_reply> mr(NBDR_MAPPED);
  if (Status s = client->Call(NBDR_MAPPED, &ma, mr.get()); !s.ok()) return s;
  mr.set_filled();
  if (mr->status != 0) return Status::Error(mr->status, mr->message);
  return Status();
}

// Grows m's device (index) when its backstore grew (nbd-cli resize on
// another host, or through another runner): the kernel learns the size
// within one poll. A refusal is logged once per device.
void FollowGrowth(const MappingRecord& m, int index, uint64_t backstore_size) {
  static std::set<std::string> refused;
  auto grown = GrowDevice(index, backstore_size);
  if (!grown) {
    if (refused.insert(m.device).second)
      LOG_WARN("clid", "%s: %s/%s grew to %s but the device keeps its size: %s", m.device.c_str(),
               m.type.c_str(), m.key.c_str(), FormatSize(backstore_size).c_str(),
               grown.status().message().c_str());
  } else if (*grown) {
    refused.erase(m.device);
    LOG_INFO("clid", "%s: grown to %s, as %s/%s was resized", m.device.c_str(),
             FormatSize(backstore_size).c_str(), m.type.c_str(), m.key.c_str());
  }
}

// Asks the runner a device moves to (client) to fence the runners of m's
// set out of its backing object first (NBDR_TAKE_OVER: rbd breaks the
// image's lock, and the cluster blocklists its holder), so the kernel's
// held requests find it free; asked once the runner recorded this host's
// map (only the mapping client may). Never fatal: a backend without a fence of
// its own, or an older runner, takes the device all the same.
void AskToTakeOver(RunnerClient* client, const MappingRecord& m, const std::string& runner) {
  nbdr_key_args a{const_cast<char*>(m.type.c_str()), const_cast<char*>(m.key.c_str())};
  RpcResult<nbdr_status_reply> r(NBDR_TAKE_OVER);
  Status s = client->Call(NBDR_TAKE_OVER, &a, r.get());
  if (s.ok()) {
    r.set_filled();
    if (r->status != 0) s = Status::Error(r->status, r->message);
  }
  if (s.ok())
    LOG_INFO("clid", "%s: %s %s", m.device.c_str(), runner.c_str(), r->message);
  else if (s.code() == ENOTSUP)
    LOG_DEBUG("clid", "%s: %s: %s", m.device.c_str(), runner.c_str(), s.message().c_str());
  else
    LOG_WARN("clid", "%s: %s did not fence the runner left behind: %s", m.device.c_str(),
             runner.c_str(), s.message().c_str());
}

// Maps m's backstore to this host through runner (client) and hands the
// kernel new sockets to it. Only a device that no longer holds m (or whose
// record is gone) answers kNotOurs; a runner's own refusal never does.
// A runner that still records this mapping of this device as dead (the
// device moved off it earlier) is revived instead (Reconnect).
Status MoveTo(RunnerClient* client, const MappingRecord& m, int index, const std::string& made_as) {
  const std::string export_name = MakeExportName(m.type, m.key);
  RpcResult<nbdr_info_reply> info(NBDR_INFO);
  if (Status s = AskRunner(client, m, &info); !s.ok()) return s;
  const auto state = RunnerStatus(info);
  if (state == NBDR_STATUS_DEAD) {
    Status s = Reconnect(client, m, index, made_as, info);
    return s.code() == kNotOurs && DeviceHolds(m, index).ok() ? Status::Error(EBUSY, s.message()) : s;
  }
  nbdr_map_args a{const_cast<char*>(m.type.c_str()), const_cast<char*>(m.key.c_str()),
                  const_cast<char*>(made_as.c_str())};
  RpcResult<nbdr_map_reply> r(NBDR_MAP);
  if (Status s = client->Call(NBDR_MAP, &a, r.get()); !s.ok()) return s;
  r.set_filled();
  if (r->status != 0) return Status::Error(r->status == kNotOurs ? EIO : r->status, r->message);
  AskToTakeOver(client, m, client->target());
  // The same disk: a runner whose backstore of that name is smaller is not
  // serving what this device holds (larger: it grew, and the device follows).
  Status s;
  const uint64_t have = NbdDeviceBytes(index);
  if (r->backstore.backstore_len != 1 ||
      (have != 0 && r->backstore.backstore_val[0].size < have))
    s = Status::Error(EIO, "its " + export_name + " is not the size of " + m.device);
  auto socks = s.ok() ? ConnectExportSockets(IoHostFor(*client, r->io.host),
                                             static_cast<uint16_t>(r->io.port), export_name,
                                             m.connections > 0 ? m.connections : 1, m.tls)
                      : Expected<ExportSockets>(s);
  std::vector<int> fds;
  if (socks)
    for (auto& f : socks->fds) fds.push_back(f.get());
  s = socks ? Status() : socks.status();
  // As in Reconnect: unmap may have run during the handshake.
  if (s.ok()) {
    auto still = FindMapping(m.device, m.type, m.key);
    s = !still ? still.status()
        : !*still ? Status::Error(kNotOurs, m.device + " was unmapped meanwhile")
                  : DeviceHolds(m, index);
  }
  if (s.ok()) s = NbdReconfigure(index, fds, BackendIdFor(m.runner, export_name));
  nbdr_mapped_args ma{a.type, a.key, const_cast<char*>(m.device.c_str()), a.client, r->map_token};
  RpcResult<nbdr_status_reply> mr(NBDR_MAPPED);
  if (s.ok()) s = client->Call(NBDR_MAPPED, &ma, mr.get());
  if (s.ok()) {
    mr.set_filled();
    if (mr->status != 0) s = Status::Error(mr->status == kNotOurs ? EIO : mr->status, mr->message);
  }
  if (!s.ok()) {  // this map undoes itself, by its token
    nbdr_unmap_args u{a.type, a.key, const_cast<char*>(""), const_cast<char*>(""), r->map_token};
    RpcResult<nbdr_status_reply> ur(NBDR_UNMAP);
    if (client->Call(NBDR_UNMAP, &u, ur.get()).ok()) ur.set_filled();
  }
  return s;
}

// Moves mapping m's device to another runner of its set, whose runner
// `from` does not answer: the first other runner that takes it (MoveTo),
// and this host's record names the runner now serving it and the one left
// behind.
Status Failover(const MappingRecord& m, int index, const std::string& made_as,
                const std::string& from) {
  const std::string export_name = MakeExportName(m.type, m.key);
  Status last = Status::Error(EHOSTUNREACH, "no other runner of its set answers");
  for (const auto& runner : m.runners) {
    if (runner == from || g_stop) continue;
    auto hp = ParseHostPort(runner, kDefaultRpcPort);
    auto client = hp ? ConnectRunner(*hp, m.tls) : std::nullopt;
    if (!client) continue;
    Status s = MoveTo(&*client, m, index, made_as);
    if (s.code() == kNotOurs) return s;
    if (!s.ok()) {
      last = Status::Error(s.code(), runner + ": " + s.message());
      continue;
    }
    auto still = FindMapping(m.device, m.type, m.key);
    if (still && *still) {  // not unmapped meanwhile
      MappingRecord moved = **still;
      moved.serving = runner == m.runner ? "" : runner;
      // The runner left behind still records the mapping: cleared once it
      // answers (ClearLeftBehind).
      std::erase(moved.left, runner);
      if (std::find(moved.left.begin(), moved.left.end(), from) == moved.left.end())
        moved.left.push_back(from);
      if (Status rs = RecordMapping(moved); !rs.ok()) LOG_ERROR("clid", "%s", rs.message().c_str());
    }
    LOG_INFO("clid", "%s: moved %s from %s to %s", m.device.c_str(), export_name.c_str(),
             from.c_str(), runner.c_str());
    return Status();
  }
  return last;
}

// A dead link whose runner does not answer: moved to another runner of
// its set, or left for the next pass.
void MoveOrWait(const MappingRecord& m, int index, const std::string& made_as,
                const std::string& serving, std::set<int>* link_dead) {
  Status s = Failover(m, index, made_as, serving);
  if (s.ok()) {
    link_dead->erase(index);
  } else if (s.code() == kNotOurs) {
    LOG_ERROR("clid", "%s: no longer reconnecting %s/%s (%s); forgetting it", m.device.c_str(),
              m.type.c_str(), m.key.c_str(), s.message().c_str());
    link_dead->erase(index);
    if (Status f = ForgetMapping(m); !f.ok()) LOG_ERROR("clid", "%s", f.message().c_str());
  } else {
    LOG_WARN("clid", "%s: runner %s does not answer and no other runner took it yet: %s",
             m.device.c_str(), serving.c_str(), s.message().c_str());
  }
}

// Clears the mapping's record on the runners its device moved away from
// (MappingRecord::left) that answer now: only their record of this device
// of this host (unmap with device and client), which, left there, would
// keep the backstore mapped to a device that another runner serves. A
// runner that says the backstore is not mapped there has nothing to
// clear; one that refuses is asked again next pass.
void ClearLeftBehind(const MappingRecord& m, const std::string& made_as) {
  std::vector<std::string> still;
  for (const auto& runner : m.left) {
    auto hp = ParseHostPort(runner, kDefaultRpcPort);
    auto client = hp ? ConnectRunner(*hp, m.tls) : std::nullopt;
    nbdr_unmap_args u{const_cast<char*>(m.type.c_str()), const_cast<char*>(m.key.c_str()),
                      const_cast<char*>(m.device.c_str()), const_cast<char*>(made_as.c_str()), 0};
    RpcResult<nbdr_status_reply> r(NBDR_UNMAP);
    Status s = client ? client->Call(NBDR_UNMAP, &u, r.get()) : Status::Error(EHOSTUNREACH, "");
    if (s.ok()) r.set_filled();
    // Not mapped there (any more), or no such backstore: nothing to clear.
    // Any other refusal (the record names another device or client) is
    // asked again next pass.
    if (s.ok() && (r->status == 0 || r->status == ENOENT || r->status == EINVAL)) {
      if (r->status == 0)
        LOG_INFO("clid", "%s: cleared the old mapping of %s/%s at %s", m.device.c_str(),
                 m.type.c_str(), m.key.c_str(), runner.c_str());
      else
        LOG_INFO("clid", "%s: nothing to clear of the old mapping of %s/%s at %s: %s",
                 m.device.c_str(), m.type.c_str(), m.key.c_str(), runner.c_str(), r->message);
      continue;
    }
    if (s.ok())
      LOG_DEBUG("clid", "%s: the old mapping of %s/%s at %s stays: %s", m.device.c_str(),
                m.type.c_str(), m.key.c_str(), runner.c_str(), r->message);
    still.push_back(runner);
  }
  if (still.size() == m.left.size()) return;
  // Written over what the file holds now (an unmap may have run).
  auto fresh = FindMapping(m.device, m.type, m.key);
  if (!fresh || !*fresh) return;
  MappingRecord cleared = **fresh;
  std::erase_if(cleared.left, [&](const std::string& r) {
    return std::find(m.left.begin(), m.left.end(), r) != m.left.end() &&
           std::find(still.begin(), still.end(), r) == still.end();
  });
  if (Status s = RecordMapping(cleared); !s.ok()) LOG_ERROR("clid", "%s", s.message().c_str());
}

// Follows the runner set the serving runner reports now (a replace
// changed it): the next failover then goes where the backstore is served
// now, not where it was at map time.
void FollowRunnerSet(const RunnerClient& client, const MappingRecord& m,
                     const RpcResult<nbdr_info_reply>& info) {
  if (info->status != 0 || info->backstore.backstore_len != 1) return;
  const nbdr_backstore& b = info->backstore.backstore_val[0];
  if (b.runners.runners_len == 0) return;  // served by that runner alone
  const std::vector<std::string> now = ReachableSet(client, b);
  if (now.empty() || now == m.runners) return;
  auto fresh = FindMapping(m.device, m.type, m.key);
  if (!fresh || !*fresh || (*fresh)->runners != m.runners) return;  // changed: next pass
  MappingRecord updated = **fresh;
  updated.runners = now;
  if (Status s = RecordMapping(updated); !s.ok()) {
    LOG_ERROR("clid", "%s", s.message().c_str());
    return;
  }
  auto joined = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& r : v) out += (out.empty() ? "" : ",") + r;
    return out.empty() ? std::string("(none)") : out;
  };
  LOG_INFO("clid", "%s: the runner set of %s/%s is now %s (was %s)", m.device.c_str(),
           m.type.c_str(), m.key.c_str(), joined(now).c_str(), joined(m.runners).c_str());
}

// One pass over this host's mappings: each device whose link died, or
// whose runner reports its mapping dead, is reconnected; a mapping the
// runner gives to someone else now is forgotten. Devices whose link died
// go first, and a runner that does not answer costs a pass one connect or
// call timeout, not one per mapping of it: the other devices'
// dead-connection timeouts keep running meanwhile.
void CheckPass(std::vector<MappingRecord>* mappings, const std::string& host_id,
               std::set<int>* link_dead) {
  std::stable_partition(mappings->begin(), mappings->end(), [&](const MappingRecord& m) {
    return link_dead->count(ParseNbdDevice(m.device)) > 0;
  });
  std::set<std::string> silent;  // runners that did not answer this pass
  for (const auto& m : *mappings) {
    if (g_stop) break;
    int index = ParseNbdDevice(m.device);
    if (index < 0) continue;
    const std::string& serving = m.ServingRunner();
    auto hp = ParseHostPort(serving, kDefaultRpcPort);
    if (!hp) continue;
    // The identity the mapping was made under: this host's may have
    // been renamed since.
    const std::string& made_as = m.host_id.empty() ? host_id : m.host_id;
    auto client = silent.count(serving) ? std::nullopt : ConnectRunner(*hp, m.tls);
    if (!client) {
      silent.insert(serving);
      if (link_dead->count(index) && m.runners.size() > 1)
        MoveOrWait(m, index, made_as, serving, link_dead);
      else if (link_dead->count(index))
        LOG_INFO("clid", "%s: runner %s not back yet", m.device.c_str(), serving.c_str());
      continue;
    }
    RpcResult<nbdr_info_reply> info(NBDR_INFO);
    // A dead link whose device now holds something else is forgotten
    // even while its runner cannot be asked.
    Status s = link_dead->count(index) ? DeviceHolds(m, index) : Status();
    if (s.ok()) s = AskRunner(&*client, m, &info);
    if (s.code() == ETIMEDOUT || s.code() == ECOMM) {
      silent.insert(serving);
      if (link_dead->count(index) && m.runners.size() > 1) {
        MoveOrWait(m, index, made_as, serving, link_dead);
        continue;
      }
    }
    if (!link_dead->count(index) && s.ok()) {
      FollowRunnerSet(*client, m, info);
      if (info->status == 0 && info->backstore.backstore_len == 1)
        FollowGrowth(m, index, info->backstore.backstore_val[0].size);
    }
    if (!link_dead->count(index) && !m.left.empty()) ClearLeftBehind(m, made_as);
    if (!link_dead->count(index) && (!s.ok() || RunnerStatus(info) != NBDR_STATUS_DEAD)) continue;
    if (s.ok()) s = Reconnect(&*client, m, index, made_as, info);
    if (s.ok()) {
      LOG_INFO("clid", "%s: reconnected to %s/%s at %s", m.device.c_str(), m.type.c_str(),
               m.key.c_str(), serving.c_str());
      link_dead->erase(index);
    } else if (s.code() == kNotOurs) {
      LOG_ERROR("clid", "%s: no longer reconnecting %s/%s at %s (%s); forgetting it",
                m.device.c_str(), m.type.c_str(), m.key.c_str(), m.runner.c_str(),
                s.message().c_str());
      link_dead->erase(index);
      if (Status f = ForgetMapping(m); !f.ok()) LOG_ERROR("clid", "%s", f.message().c_str());
    } else {
      LOG_WARN("clid", "%s: reconnect failed, will retry: %s", m.device.c_str(),
               s.message().c_str());
    }
  }
}

// Parses nbd-clid's arguments: -1 to go on, else the exit status.
int ParseArgs(int argc, char** argv, bool* foreground, int* interval) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--foreground") {
      *foreground = true;
    } else if (a == "--interval" && i + 1 < argc) {
      *interval = atoi(argv[++i]);
      if (*interval < 1 || *interval > 3600) {
        fprintf(stderr, "nbd-clid: --interval must be 1 to 3600 seconds\n");
        return 2;
      }
    } else if (a == "--timeout" && i + 1 < argc) {
      g_call_timeout_s = atoi(argv[++i]);
      if (g_call_timeout_s < 1 || g_call_timeout_s > 3600) {
        fprintf(stderr, "nbd-clid: --timeout must be 1 to 3600 seconds\n");
        return 2;
      }
    } else if (a == "--version") {
      printf("nbd-clid %s\n", NBDR_PACKAGE_VERSION);
      return 0;
    } else if (a == "--help") {
      printf("Usage: nbd-clid [--foreground] [--interval SECONDS] [--timeout SECONDS]\n"
             "       nbd-clid --version | --help\n"
             "Reconnects the devices nbd-cli mapped on this host (records in %s)\n"
             "when their runner restarts or their connection dies.\n\n"
             "  --foreground        stay in the foreground\n"
             "  --interval SECONDS  how often to poll the runners, 1 to 3600 (default 2)\n"
             "  --timeout SECONDS   how long a call waits for a runner, 1 to 3600 (default 10)\n"
             "  --version           print the version and exit\n"
             "  --help              print this help and exit\n",
             MappingStatePath().c_str());
      return 0;
    } else {
      fprintf(stderr, "nbd-clid: unexpected '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  bool foreground = false;
  int interval = 2;
  if (int rc = ParseArgs(argc, argv, &foreground, &interval); rc >= 0) return rc;
  if (!foreground && daemon(0, 0) < 0) {
    perror("nbd-clid: daemon");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  g_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_wake_fd < 0) {
    LOG_ERROR("clid", "eventfd: %s", strerror(errno));
    return 1;
  }
  // SIGINT/SIGTERM: stop; during a call to a hung runner, at once.
  StartCallSignalWatch(0, OnSignal);
  auto listener = LinkDeadListener::Open();
  if (!listener)
    LOG_WARN("clid", "no LINK_DEAD events (%s); polling runners every %d s only",
             listener.status().message().c_str(), interval);
  auto host_id = ThisHostId();
  if (!host_id) {
    LOG_ERROR("clid", "%s", host_id.status().message().c_str());
    return 1;
  }
  LOG_INFO("clid", "watching the mappings in %s as %s", MappingStatePath().c_str(),
           host_id->c_str());
  std::set<int> link_dead;
  while (!g_stop) {
    pollfd pfd[2] = {{g_wake_fd, POLLIN, 0}, {listener ? listener->fd() : -1, POLLIN, 0}};
    poll(pfd, listener ? 2 : 1, interval * 1000);
    if (g_stop) break;
    if (listener && (pfd[1].revents & POLLIN)) {
      for (int idx : listener->Drain()) {
        LOG_WARN("clid", "/dev/nbd%d: link dead; reconnecting", idx);
        link_dead.insert(idx);
      }
    }
    auto mappings = LoadMappings();
    if (!mappings) {
      LOG_ERROR("clid", "%s", mappings.status().message().c_str());
      continue;
    }
    CheckPass(&*mappings, *host_id, &link_dead);
  }
  LOG_INFO("clid", "stopping");
  return 0;
}
