// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Command: one parsed nbd-cli command line, and the verbs that run one
// (each returns the exit status, having reported its result or error
// through cli_output.h). Verbs of backstores (create, import, delete,
// list, info, version) are in backstore_verbs.cc, the kernel mapping
// verbs (map, unmap) in mapping_verbs.cc, who may open a backstore
// (modify) in access_verbs.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/client_tls.h"
#include "cli/runner_client.h"
#include "utils/net.h"

namespace nbdr::cli {

// Parsed "create" and friends.
struct Command {
  std::string type;
  std::string verb;
  std::string key;
  std::string size_text;
  bool have_size = false;
  bool prealloc = false;
  bool readonly = false;
  uint32_t block_size = 512;
  std::string filter;
  HostPort host{"localhost", kDefaultRpcPort};
  // host H1,H2,...: every runner given (host is the first); more than one
  // only for create and import, which register the backstore on each
  // (runner_set.h)
  std::vector<HostPort> hosts;
  int ha = 0;                    // ha N: 0 when not given
  bool host_given = false;       // on the command line
  bool host_configured = false;  // from $NBD_RUNNER_HOST or cli.conf
  int call_timeout_s = kDefaultCallTimeoutS;  // --timeout: how long a call waits
  // map
  int device_index = -1;
  uint64_t timeout_s = 30;
  uint64_t dead_timeout_s = 0;
  int connections = 1;
  // prefer HOST: the runner the map tries first (then those of 'host')
  std::optional<HostPort> prefer;
  // unmap ... force: disconnect a device even while it is in use; by KEY,
  // also clear the runner's record even when it looks live. delete ...
  // force: delete although runners of its set do not answer
  bool force = false;
  // create ... auth: mint a PSK key for the new backstore, only it opens it
  bool auth = false;
  // resize ... shrink: a size below the current one is meant
  bool shrink = false;
  // snapshot OP KEY [NAME] [copy] [force]
  std::string snapshot_op, snapshot_name;
  bool copy = false;
  // modify: "allow", "deny", "open", "auth-enable" or "auth-disable",
  // and the identities of allow and deny ("psk:a,x509:CN=b")
  std::string access_op;
  std::string access_ids;
  // replace KEY OLD NEW
  HostPort replace_old, replace_new;
  // from --tls-psk, --tls-username, --tls-certificates (or cli.conf's)
  ClientTlsCredentials tls;
};

// map and unmap record the runner they used for nbd-clid, which must
// reach it again by address: they never use the admin socket. A host from
// the command line or the defaults is used as given.
inline Expected<RunnerClient> ConnectOrFail(const Command& c) {
  auto client = ConnectCommandRunner(c.host, c.host_given || c.host_configured,
                                     c.verb != "map" && c.verb != "unmap", c.tls);
  if (client) client->set_call_timeout(c.call_timeout_s);
  return client;
}

// Calls proc, whose reply is an nbdr_status_reply, into *r: -1 when the
// runner answered with success, else the exit status (the error reported).
int CallStatus(RunnerClient* client, uint32_t proc, void* args, RpcResult<nbdr_status_reply>* r);

// Asks the runner for c's backstore (NBDR_INFO) into *r: -1 when it
// answered with one, else the exit status (the error reported).
int CallInfo(RunnerClient* client, const Command& c, RpcResult<nbdr_info_reply>* r);

// A status call's success: its message (with the export, in JSON).
int ReportStatus(const Command& c, const char* message);

int DoCreate(const Command& c);
// create, import and delete of a backstore with a runner set (ha_verbs.cc)
int CreateOnRunnerSet(const Command& c, const nbdr_create_args& args);
int ImportOnRunnerSet(const Command& c, const nbdr_create_args& args);
// here: the runner c names, which answered INFO with b.
int DeleteOnRunnerSet(const Command& c, RunnerClient* here, const nbdr_backstore& b);
int DoImport(const Command& c);
int DoDelete(const Command& c);
int DoList(const Command& c);
int DoInfo(const Command& c);
int DoVersion(const Command& c);
int DoMap(const Command& c);
int DoUnmap(Command c);
int DoModify(const Command& c);
int DoReplace(const Command& c);  // replace_verb.cc
int DoForget(const Command& c);
int DoResize(const Command& c);  // resize_verb.cc
int DoSnapshot(const Command& c);  // snapshot_verb.cc
// create ... auth: creates the backstore with its minted key in one step
// (NBDR_CREATE_AUTH), so it is never open to other clients.
int CreateWithAuth(const Command& c, nbdr_create_args* args);

// Who may open c's backstore (NBDR_ACCESS): the TLS identities; empty
// for any client.
Expected<std::vector<std::string>> AskAccess(RunnerClient* client, const Command& c);
// Puts identities back on c's backstore's access list (NBDR_ACCESS allow):
// a rollback's re-registration, which starts with an empty list.
Status AllowAgain(RunnerClient* client, const Command& c, const std::vector<std::string>& ids);
// "any client", or the identities joined by "; " (a DN has commas).
std::string AccessText(const std::vector<std::string>& list);

}  // namespace nbdr::cli
