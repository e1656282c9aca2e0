// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The kernel mapping verbs of nbd-cli: map (a control call, the NBD
// handshake, netlink NBD_CMD_CONNECT, the mapping recorded on both sides)
// and unmap (by device or by key, deciding whose mapping it is); see
// command.h.
#include <json-c/json.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/host_identity.h"
#include "cli/kernel_nbd.h"
#include "cli/mapping_state.h"
#include "cli/nbd_client_handshake.h"
#include "cli/runner_set.h"
#include "cli/unmap_decision.h"
#include "rpc/backstore_status.h"
#include "utils/names.h"
#include "utils/nbd_protocol.h"

namespace nbdr::cli {

namespace {

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

int PrintUnmapped(const std::string& device, const std::string& name, const std::string& text) {
  if (JsonOutput()) {
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

// Records a new mapping in this host's mapping state (a failure there is
// a warning: the device is mapped) and prints it.
int ReportMapped(const Command& c, const std::string& runner, MappingRecord rec, uint64_t size) {
  time_t now = time(nullptr);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  rec.map_time = when;
  if (Status s = RecordMapping(rec); !s.ok())
    fprintf(stderr, "nbd-cli: warning: %s is mapped, but recording it in %s failed: %s\n",
            rec.device.c_str(), MappingStatePath().c_str(), s.message().c_str());
  if (JsonOutput()) {
    Json o(json_object_new_object());
    json_object_object_add(o.get(), "device", json_object_new_string(rec.device.c_str()));
    json_object_object_add(o.get(), "type", json_object_new_string(c.type.c_str()));
    json_object_object_add(o.get(), "key", json_object_new_string(c.key.c_str()));
    json_object_object_add(o.get(), "export",
                           json_object_new_string(MakeExportName(c.type, c.key).c_str()));
    json_object_object_add(o.get(), "size", json_object_new_int64(static_cast<int64_t>(size)));
    json_object_object_add(o.get(), "runner", json_object_new_string(runner.c_str()));
    json_object_object_add(o.get(), "connections", json_object_new_int(c.connections));
    PrintJson(o.get(), stdout);
  } else {
    printf("%s\n", rec.device.c_str());
  }
  return kExitOk;
}

}  // namespace

namespace {

// The runner a map goes through: 'prefer H' first, then the first of
// 'host H1,H2,...' that answers (or the one host).
Expected<RunnerClient> ConnectMapRunner(const Command& c) {
  std::vector<HostPort> order;
  if (c.prefer) order.push_back(*c.prefer);
  for (const auto& hp : c.hosts.empty() ? std::vector<HostPort>{c.host} : c.hosts)
    if (!c.prefer || hp.host != c.prefer->host || hp.port != c.prefer->port) order.push_back(hp);
  if (order.size() < 2) return ConnectOrFail(c);
  Status last;
  for (const auto& hp : order) {
    Command one = c;
    one.host = hp;
    auto client = ConnectOrFail(one);
    if (client) return client;
    last = client.status();
  }
  return last.WithContext("no runner of 'host' answers");
}

// EBUSY naming the runner of b's set (other than client's) that records
// b mapping, mapped or dead; OK when none that answers does.
Status MappedElsewhere(const RunnerClient& client, const nbdr_backstore& b, const Command& c) {
  for (const auto& runner : ReachableSet(client, b)) {
    if (runner == client.target()) continue;
    Command quick = c;
    quick.call_timeout_s = std::min(5, c.call_timeout_s);
    auto other = ConnectToRunner(runner, quick);
    if (!other) continue;  // a runner that does not answer serves nothing now
    nbdr_key_args a{b.type, b.key};
    RpcResult<nbdr_info_reply> info(NBDR_INFO);
    if (!other->Call(NBDR_INFO, &a, info.get()).ok()) continue;
    info.set_filled();
    if (info->status != 0 || info->backstore.backstore_len != 1) continue;
    const nbdr_backstore& theirs = info->backstore.backstore_val[0];
    if (ParseStatus(theirs.status) != NBDR_STATUS_CREATED)
      return Status::Error(EBUSY, MakeExportName(b.type, b.key) + " is " + theirs.status +
                                      " through runner " + runner + " on " +
                                      (*theirs.device ? theirs.device : "a device") +
                                      (*theirs.client ? std::string(" of ") + theirs.client : "") +
                                      "; one runner of its set serves it at a time");
  }
  return Status();
}

}  // namespace

int DoMap(const Command& c) {
  if (geteuid() != 0)
    return Error(kExitFailed, EPERM,
                 "map needs root: handing sockets to the kernel takes CAP_SYS_ADMIN");
  if (Status s = EnsureNbdModule(); !s.ok()) return Error(kExitFailed, s.code(), s.message());
  auto host_id = ThisHostId();
  if (!host_id) return Error(kExitFailed, host_id.status().code(), host_id.status().message());
  auto client = ConnectMapRunner(c);
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
  // One runner of a set serves a device at a time: a mapping recorded on
  // another runner of it (another host's, or one nbd-clid moved) refuses
  // this one. (Checked here, by nbd-cli; the runners do not ask each other.)
  if (Status s = MappedElsewhere(*client, b, c); !s.ok()) return abort_map(s.code(), s.message());
  std::string io_host = IoHostFor(*client, r->io.host);
  auto opened = ConnectExportSockets(io_host, static_cast<uint16_t>(r->io.port), export_name,
                                     c.connections, c.tls);
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
                    c.timeout_s,   c.dead_timeout_s, c.readonly || b.readonly, "", *host_id,
                    c.tls, ReachableSet(*client, b), "", {}};
  return ReportMapped(c, client->target(), rec, info.size);
}

namespace {

// Unmap by key: asks the runner whose mapping it is and decides
// (DecideUnmapByKey). Returns an exit status when that is the end of it
// (refused, or only the runner's record cleared); -1 with *index set when
// this host's device holds the backstore and is to be disconnected.
int UnmapByKey(RunnerClient* client, const Command& c, const std::string& host_id, int* index) {
  RpcResult<nbdr_info_reply> r(NBDR_INFO);
  if (int rc = CallInfo(client, c, &r); rc >= 0) return rc;
  const nbdr_backstore& b = r->backstore.backstore_val[0];
  const std::string name = MakeExportName(c.type, c.key);
  const std::string status = b.status;
  const auto state = ParseStatus(b.status);
  // The runner's record names a device of whichever host mapped it; only
  // this host's device that holds this very backstore of this runner is
  // disconnected.
  *index = ParseNbdDevice(b.device);
  const std::string device = *index >= 0 ? "/dev/nbd" + std::to_string(*index) : "";
  const std::string held = *index >= 0 ? NbdBackend(*index) : "";
  HostPort held_runner;
  std::string held_type, held_key;
  UnmapFacts f;
  f.mapped = state != NBDR_STATUS_CREATED;
  f.in_progress = state == NBDR_STATUS_MAPPING;
  f.device_holds_this = ParseBackendId(held, &held_runner, &held_type, &held_key) &&
                        held_type == c.type && held_key == c.key;
  f.same_runner = held_runner.host == c.host.host && held_runner.port == c.host.port;
  f.device_in_use_here = *index >= 0 && (!held.empty() || NbdConnected(*index));
  f.has_client = *b.client;
  f.force = c.force;
  f.client_is_this_host = b.client == host_id;
  if (f.has_client && !f.in_progress && !f.device_holds_this && !f.client_is_this_host &&
      !f.force) {
    auto recorded = RecordedHostId(device, c.type, c.key);  // made before a rename?
    if (recorded)
      f.client_is_this_host = b.client == *recorded;
    else
      fprintf(stderr, "nbd-cli: warning: %s\n", recorded.status().message().c_str());
  }
  const std::string owner = *b.client ? std::string(b.client) : "another host";
  switch (DecideUnmapByKey(f)) {
    case UnmapVerdict::kNotMapped:
      return Error(kExitFailed, EINVAL, "backstore " + name + " is not mapped (status created)");
    case UnmapVerdict::kDisconnect:
      return -1;
    case UnmapVerdict::kRefuseOtherRunnerName:
      return Error(kExitFailed, EBUSY,
                   device + " on this host holds " + name + " of the runner at " +
                       held_runner.host + ":" + std::to_string(held_runner.port) +
                       ", named otherwise here; unmap it by device: nbd-cli " + c.type +
                       " unmap " + device);
    case UnmapVerdict::kRefuseHeldHere:
      return Error(kExitFailed, EBUSY,
                   "the runner records " + name + " on " + device + " of " + owner + ", but " +
                       device + " on this host holds " +
                       (held.empty() ? "another client's disk" : held) +
                       "; unmap it on the host that mapped it");
    case UnmapVerdict::kRefuseElsewhere:
      return Error(kExitFailed, EBUSY,
                   name + " is " + status +
                       (device.empty() ? " with no device recorded (mapped by " + owner + ")"
                                       : " on " + device + " of " + owner +
                                             (*b.client ? "" : " (" + device +
                                                                   " is not connected here)")) +
                       "; unmap it on the host that holds it, or, if no host does any more, "
                       "add 'force'");
    case UnmapVerdict::kClearStaleOwn:
    case UnmapVerdict::kForceClear:
      break;
  }
  // Nothing of it here: only the runner's record is cleared (this host's
  // own only while it still names this device).
  const bool stale = !c.force;
  UnmapOnly only;
  if (stale) only = {b.device, b.client, 0};
  if (Status s = RunnerUnmap(client, c.type, c.key, only); !s.ok())
    return Error(kExitFailed, s.code(), s.message());
  std::string why = device.empty() ? "no device recorded"
                                   : device + (f.device_in_use_here ? " here holds something else"
                                                                    : " is not connected here");
  std::string what = stale ? "cleared this host's stale " : "forced: cleared the ";
  return PrintUnmapped(device, name, what + status + " mapping of " + name + " (" + why +
                                         "; nothing disconnected)");
}

}  // namespace

namespace {

// Without TLS options, unmap speaks to the runner with the credentials
// this host's record of the mapping keeps (the ones it was mapped with);
// without a host, to the runner that serves the device now (nbd-clid may
// have moved it to another runner of its set).
void UseRecorded(Command* c) {
  auto records = LoadMappings();
  if (!records) return;
  for (const MappingRecord& m : *records) {
    if (m.type != c->type || m.key != c->key) continue;
    if (!c->tls.enabled() && m.tls.enabled()) c->tls = m.tls;
    if (!c->host_given && !m.serving.empty())
      if (auto hp = ParseHostPort(m.serving, kDefaultRpcPort)) c->host = *hp;
    return;
  }
}

}  // namespace

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
  UseRecorded(&c);
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
    int rc = UnmapByKey(&*client, c, *host_id, &index);
    if (rc >= 0) return rc;
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

}  // namespace nbdr::cli
