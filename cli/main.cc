// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli: the operator's tool, and its grammar: parses the command line
// into a Command and runs its verb (command.h). Creates, deletes, lists,
// describes, maps and unmaps backstores of an nbd-runner.
//
// Results go to stdout (text, or JSON with --json anywhere on the line),
// errors to stderr. Exit status: 0 success, 1 the operation failed,
// 2 bad usage, 3 the runner could not be reached.
#include <json-c/json.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/call_signals.h"
#include "cli/cli_config.h"
#include "cli/cli_output.h"
#include "cli/command.h"
#include "cli/runner_set.h"
#include "cli/kernel_nbd.h"
#include "rpc/backstore_status.h"
#include "utils/names.h"
#include "utils/net.h"

using namespace nbdr;
using namespace nbdr::cli;

namespace {

const char kUsage[] =
    "Usage: nbd-cli [--json] [--tls-psk FILE [--tls-username ID]] [--tls-certificates DIR]\n"
    "               COMMAND\n"
    "\n"
    "  nbd-cli TYPE create KEY [prealloc] size SIZE [readonly] [block-size 512|4096]\n"
    "                          [auth] [ha N] [host HOST[:PORT][,HOST[:PORT]...]]\n"
    "  nbd-cli TYPE import KEY [size SIZE] [readonly] [block-size 512|4096] [ha N]\n"
    "                          [host HOST[:PORT][,HOST[:PORT]...]]\n"
    "  nbd-cli TYPE delete KEY [force] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE forget KEY [host HOST[:PORT]]\n"
    "  nbd-cli TYPE resize KEY size SIZE [shrink] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE snapshot create KEY NAME [copy] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE snapshot list KEY [host HOST[:PORT]]\n"
    "  nbd-cli TYPE snapshot delete KEY NAME [host HOST[:PORT]]\n"
    "  nbd-cli TYPE snapshot rollback KEY NAME [force] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE replace KEY OLD_HOST[:PORT] NEW_HOST[:PORT] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE list [created|mapped|dead|all] [host HOST[:PORT]]\n"
    "  nbd-cli list [created|mapped|dead|all] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE info KEY [host HOST[:PORT]]\n"
    "  nbd-cli TYPE map KEY [/dev/nbdX] [readonly] [timeout SECONDS] [dead-timeout SECONDS]\n"
    "                       [connections N] [host HOST[:PORT][,HOST[:PORT]...]]\n"
    "                       [prefer HOST[:PORT]]\n"
    "  nbd-cli TYPE unmap </dev/nbdX|KEY> [force] [host HOST[:PORT]]\n"
    "  nbd-cli TYPE modify KEY <allow|deny> ID[,ID...]|open|auth <enable|disable>\n"
    "                          [host HOST[:PORT]]\n"
    "  nbd-cli TYPE help\n"
    "  nbd-cli version [host HOST[:PORT]]\n"
    "  nbd-cli help\n"
    "\n"
    "TYPE is a handler of the runner: file, gluster, rbd (alias ceph) or one\n"
    "installed apart. KEY names the backstore:\n"
    "  file     a path under the runner's file directory, e.g. disks/a.img\n"
    "  gluster  VOLUME/PATH, e.g. vol1/disks/a.img\n"
    "  rbd      POOL/IMAGE or POOL/NAMESPACE/IMAGE\n"
    "SIZE takes a unit: 1048576, 512B, 4K, 4KiB, 1M, 1G, 1.5G, 1T (binary units).\n"
    "HOST defaults to $NBD_RUNNER_HOST, then cli.conf's host, then the runner's\n"
    "admin socket here or localhost:24110. import serves a KEY that already exists\n"
    "(made by another tool, e.g. rbd create) without creating it; delete then\n"
    "removes it like any backstore. modify allow/deny edits who may open KEY over\n"
    "NBD: TLS identities, psk:IDENTITY or x509:DN (a client certificate's subject);\n"
    "modify open empties the list, and a backstore without one is open to all.\n"
    "auth (create, modify auth enable) mints a TLS-PSK key that only the new\n"
    "identity holds, shown once; modify auth disable forgets it.\n"
    "High availability: create and import with several runners in host (ha N:\n"
    "as many) make the object once, through the first, and register it on each\n"
    "with the whole runner set, all or nothing; delete removes it from every\n"
    "runner of its set, refused while one does not answer unless 'force'. replace\n"
    "swaps one runner of the set for another (the old one may be dead); forget\n"
    "unregisters KEY on one runner, leaving its object alone.\n"
    "resize grows KEY online: open NBD connections see the new size at once; a\n"
    "smaller size needs 'shrink', refused while KEY is mapped or open.\n"
    "snapshot create takes a consistent snapshot NAME of KEY (writes pause while\n"
    "it is taken), served read-only as the export TYPE/KEY@NAME; 'copy' allows a\n"
    "full copy where the backend has no cheap snapshot. rollback is refused while\n"
    "KEY is mapped or open, unless 'force'.\n"
    "\n"
    "--tls-psk FILE (psktool's IDENTITY:HEXKEY lines; --tls-username picks one)\n"
    "and --tls-certificates DIR (ca-cert.pem, client-cert.pem, client-key.pem)\n"
    "make map speak NBD over TLS, in kernel TLS (tls.ko); defaults come from\n"
    "$NBD_CLI_CONFIG or /etc/nbd-runner/cli.conf (host, tls-psk, tls-username,\n"
    "tls-certificates = VALUE lines).\n"
    "--timeout S: how long each call waits for the runner (default 30 s); Ctrl-C\n"
    "or SIGTERM ends a waiting call at once (exit 3).\n"
    "--json prints results as JSON on stdout. Exit status: 0 success, 1 the\n"
    "operation failed, 2 bad usage, 3 the runner could not be reached.\n";

// The KEY grammar of the handlers shipped with nbd-runner. nbd-cli takes
// any TYPE: the runner knows which handlers it has, and refuses the others.
std::string KeyHelp(const std::string& type) {
  if (type == "file") return "a path under the runner's file directory (file-dir)";
  if (type == "gluster") return "VOLUME/PATH inside a GlusterFS volume";
  if (type == "rbd") return "POOL/IMAGE or POOL/NAMESPACE/IMAGE in Ceph RBD";
  return "the object's name as the " + type + " handler knows it (see its documentation)";
}

std::string TypeHelp(const std::string& type) {
  std::string key = KeyHelp(type);
  return "Usage: nbd-cli " + type +
         " create KEY [prealloc] size SIZE [readonly] [block-size 512|4096] [auth]"
         " [ha N] [host HOST[:PORT][,...]]\n"
         "       nbd-cli " + type +
         " import KEY [size SIZE] [readonly] [block-size 512|4096] [ha N] [host HOST[:PORT][,...]]\n"
         "       nbd-cli " + type + " delete KEY [force] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " forget KEY [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " resize KEY size SIZE [shrink] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " snapshot create KEY NAME [copy] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " snapshot delete KEY NAME [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " snapshot list KEY [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " snapshot rollback KEY NAME [force] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " replace KEY OLD_HOST[:PORT] NEW_HOST[:PORT] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " list [created|mapped|dead|all] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " info KEY [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " map KEY [/dev/nbdX] [readonly] [timeout S] [dead-timeout S]"
         " [connections N] [host HOST[:PORT][,...]] [prefer HOST[:PORT]]\n"
         "       nbd-cli " + type + " unmap </dev/nbdX|KEY> [force] [host HOST[:PORT]]\n"
         "       nbd-cli " + type + " modify KEY <allow|deny> ID[,ID...]|open|auth <enable|disable>"
         " [host HOST[:PORT]]\n"
         "KEY: " + key + ".\n";
}

// The field of *tls that global option `arg` ("--tls-psk" or
// "--tls-psk=FILE") sets, or null when arg is not one of them.
std::string* TlsOptionSlot(const std::string& arg, ClientTlsOptions* tls) {
  const std::string name = arg.substr(0, arg.find('='));
  if (name == "--tls-psk") return &tls->psk_file;
  if (name == "--tls-username") return &tls->username;
  if (name == "--tls-certificates") return &tls->certificates_dir;
  return nullptr;
}

// The value of option argv[*i] ("--name=V" or "--name V") into *slot.
int TakeOptionValue(int argc, char** argv, int* i, const std::string& arg, std::string* slot) {
  const std::string name = arg.substr(0, arg.find('='));
  if (!slot->empty()) return Usage("'" + name + "' given twice");
  if (arg.size() > name.size()) {
    *slot = arg.substr(name.size() + 1);
  } else if (*i + 1 < argc) {
    *slot = argv[++*i];
  }
  if (slot->empty()) return Usage("'" + name + "' needs a value");
  return -1;
}

// --timeout S: how long each call waits for the runner, 1 to 3600 s.
int ParseCallTimeout(const std::string& text, int* out) {
  char* end = nullptr;
  unsigned long n = strtoul(text.c_str(), &end, 10);
  if (text.empty() || *end || text[0] == '-' || n < 1 || n > 3600)
    return Usage("'--timeout' must be a number of seconds from 1 to 3600");
  *out = static_cast<int>(n);
  return -1;
}

// The TLS options, completed from cli.conf, read into c->tls, and the
// runner's address from $NBD_RUNNER_HOST or cli.conf into c->host: -1,
// or the exit status when they cannot be.
int LoadDefaults(ClientTlsOptions tls, Command* c) {
  MakeTlsPathsAbsolute(&tls);
  CliDefaults d{tls, std::nullopt};
  if (Status s = ApplyCliConfig(&d); !s.ok()) return Usage(s.message());
  auto creds = ResolveClientTls(d.tls);
  if (!creds) return Usage(creds.status().message());
  c->tls = std::move(*creds);
  if (d.host) {
    c->host = *d.host;
    c->host_configured = true;
  }
  return -1;
}

// Parses trailing "word [value]" options of a command.
int ParseOptions(const std::vector<std::string>& args, size_t i, Command* c) {
  std::set<std::string> seen;
  for (; i < args.size(); i++) {
    const std::string& w = args[i];
    if (!seen.insert(w).second) return Usage("'" + w + "' given twice");
    auto value = [&](std::string* out) -> bool {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    auto number = [&](const char* what, uint64_t min, uint64_t max, uint64_t* out) -> int {
      if (!value(&v)) return Usage(std::string("'") + what + "' needs a number");
      char* end = nullptr;
      unsigned long long n = strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || v[0] == '-' || n < min || n > max)
        return Usage(std::string("'") + what + "' must be a number from " + std::to_string(min) +
                     " to " + std::to_string(max));
      *out = n;
      return -1;
    };
    if (w == "host") {
      if (!value(&v)) return Usage("'host' needs HOST[:PORT]");
      if (int rc = ParseHosts(v, c); rc >= 0) return rc;
    } else if ((c->verb == "create" || c->verb == "import") && w == "ha") {
      uint64_t n = 0;
      if (int rc = number("ha", 1, NBDR_MAX_RUNNERS, &n); rc >= 0) return rc;
      c->ha = static_cast<int>(n);
    } else if (c->verb == "delete" && w == "force") {
      c->force = true;
    } else if (c->verb == "map" && ParseNbdDevice(w) >= 0 && c->device_index < 0) {
      c->device_index = ParseNbdDevice(w);
    } else if (c->verb == "map" && w == "prefer") {
      if (!value(&v)) return Usage("'prefer' needs HOST[:PORT], a runner of the backstore's set");
      auto hp = ParseHostPort(v, kDefaultRpcPort);
      if (!hp) return Usage("prefer: " + hp.status().message());
      c->prefer = *hp;
    } else if (c->verb == "map" && w == "readonly") {
      c->readonly = true;
    } else if (c->verb == "map" && w == "timeout") {
      if (int rc = number("timeout", 1, 86400, &c->timeout_s); rc >= 0) return rc;
    } else if (c->verb == "map" && w == "dead-timeout") {
      if (int rc = number("dead-timeout", 0, 86400, &c->dead_timeout_s); rc >= 0) return rc;
    } else if (c->verb == "map" && w == "connections") {
      uint64_t n = 0;
      if (int rc = number("connections", 1, 16, &n); rc >= 0) return rc;
      c->connections = static_cast<int>(n);
    } else if (c->verb == "snapshot" && c->snapshot_op == "create" && w == "copy") {
      c->copy = true;
    } else if (c->verb == "snapshot" && c->snapshot_op == "rollback" && w == "force") {
      c->force = true;
    } else if (c->verb == "resize" && w == "shrink") {
      c->shrink = true;
    } else if ((c->verb == "create" || c->verb == "import" || c->verb == "resize") &&
               w == "size") {
      if (!value(&c->size_text)) return Usage("'size' needs a value, e.g. size 1G");
      c->have_size = true;
    } else if (c->verb == "modify" && (w == "allow" || w == "deny") && c->access_op.empty()) {
      if (!value(&c->access_ids)) return Usage("'" + w + "' needs ID[,ID...]");
      c->access_op = w;
    } else if (c->verb == "modify" && w == "open" && c->access_op.empty()) {
      c->access_op = w;
    } else if (c->verb == "modify" && w == "auth" && c->access_op.empty()) {
      if (!value(&v) || (v != "enable" && v != "disable"))
        return Usage("'auth' must be followed by enable or disable");
      c->access_op = "auth-" + v;
    } else if (c->verb == "create" && w == "auth") {
      c->auth = true;
    } else if (c->verb == "unmap" && w == "force") {
      c->force = true;
    } else if (c->verb == "create" && w == "prealloc") {
      c->prealloc = true;
    } else if ((c->verb == "create" || c->verb == "import") && w == "readonly") {
      c->readonly = true;
    } else if ((c->verb == "create" || c->verb == "import") && w == "block-size") {
      if (!value(&v) || (v != "512" && v != "4096"))
        return Usage("'block-size' must be 512 or 4096");
      c->block_size = static_cast<uint32_t>(std::stoul(v));
    } else if (c->verb == "list" && c->filter.empty() &&
               (w == "all" || ParseStatus(w))) {
      c->filter = w;
    } else {
      return Usage("unexpected '" + w + "' for " + c->verb);
    }
  }
  return CheckRunnerSet(*c);
}

}  // namespace

int main(int argc, char** argv) {
  // A runner that goes away mid-call is an error to report, not a silent
  // death by SIGPIPE (libtirpc writes with plain write()).
  signal(SIGPIPE, SIG_IGN);
  // Ctrl-C or SIGTERM ends a call to a hung runner at once (exit 3).
  StartCallSignalWatch(kExitUnreachable);
  std::vector<std::string> args;
  bool help = false;
  ClientTlsOptions tls;
  std::string timeout_text;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--json") {
      SetJsonOutput(true);
    } else if (a == "--help" || a == "-h") {
      help = true;  // wherever it is: never runs a command
    } else if (a == "--version" && args.empty()) {
      args.push_back("version");
    } else if (std::string* slot = TlsOptionSlot(a, &tls)) {
      if (int rc = TakeOptionValue(argc, argv, &i, a, slot); rc >= 0) return rc;
    } else if (a == "--timeout" || a.starts_with("--timeout=")) {
      if (int rc = TakeOptionValue(argc, argv, &i, a, &timeout_text); rc >= 0) return rc;
    } else {
      args.push_back(a);
    }
  }
  if (help) {
    bool typed = !args.empty() && (args[0] == "ceph" || ValidateType(args[0]).ok());
    fputs(typed ? TypeHelp(args[0] == "ceph" ? "rbd" : args[0]).c_str() : kUsage, stdout);
    return kExitOk;
  }
  if (args.empty()) {
    fputs(kUsage, stderr);
    return kExitUsage;
  }
  Command c;
  if (args[0] == "help") {
    fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args[0].starts_with("-")) return Usage("unknown option '" + args[0] + "'");
  // Help needs no credentials; every command reads them (and the default
  // host), so a bad file or option is reported whatever the verb.
  const bool type_help = args.size() >= 2 && args[1] == "help";
  if (!type_help)
    if (int rc = LoadDefaults(tls, &c); rc >= 0) return rc;
  if (!timeout_text.empty())
    if (int rc = ParseCallTimeout(timeout_text, &c.call_timeout_s); rc >= 0) return rc;
  if (args[0] == "version") {
    c.verb = "version";
    if (int rc = ParseOptions(args, 1, &c); rc >= 0) return rc;
    return DoVersion(c);
  }
  if (args[0] == "list") {  // every type's backstores
    c.verb = "list";
    if (int rc = ParseOptions(args, 1, &c); rc >= 0) return rc;
    return DoList(c);
  }
  c.type = args[0] == "ceph" ? "rbd" : args[0];
  if (!ValidateType(c.type).ok()) return Usage("unknown command '" + args[0] + "'");
  if (args.size() < 2) return Usage("missing command after '" + args[0] + "'");
  c.verb = args[1];
  if (c.verb == "help") {
    fputs(TypeHelp(c.type).c_str(), stdout);
    return kExitOk;
  }
  size_t next = 2;
  if (c.verb == "unmap") {
    if (args.size() < 3) return Usage("unmap needs /dev/nbdX or a KEY");
    c.key = args[2];
    next = 3;
  } else if (c.verb == "replace") {
    if (args.size() < 5) return Usage("replace needs KEY OLD_HOST[:PORT] NEW_HOST[:PORT]");
    c.key = args[2];
    if (Status s = ValidateKey(c.key); !s.ok()) return Usage(s.message());
    auto old_hp = ParseHostPort(args[3], kDefaultRpcPort);
    auto new_hp = ParseHostPort(args[4], kDefaultRpcPort);
    if (!old_hp || !new_hp) return Usage((old_hp ? new_hp.status() : old_hp.status()).message());
    c.replace_old = *old_hp;
    c.replace_new = *new_hp;
    next = 5;
  } else if (c.verb == "create" || c.verb == "import" || c.verb == "delete" || c.verb == "info" ||
             c.verb == "map" || c.verb == "modify" || c.verb == "forget" ||
             c.verb == "resize") {
    if (args.size() < 3) return Usage(c.verb + " needs a KEY");
    c.key = args[2];
    if (Status s = ValidateKey(c.key); !s.ok()) return Usage(s.message());
    next = 3;
  } else if (c.verb == "snapshot") {
    if (args.size() < 4) return Usage("snapshot needs create|list|delete|rollback and a KEY");
    c.snapshot_op = args[2];
    c.key = args[3];
    if (Status s = ValidateKey(c.key); !s.ok()) return Usage(s.message());
    next = 4;
    if (c.snapshot_op != "list") {
      if (args.size() < 5) return Usage("snapshot " + c.snapshot_op + " needs KEY NAME");
      c.snapshot_name = args[4];
      next = 5;
    }
  } else if (c.verb != "list") {
    return Usage("unknown command '" + c.verb + "' for " + c.type);
  }
  if (int rc = ParseOptions(args, next, &c); rc >= 0) return rc;
  if (c.verb == "create") return DoCreate(c);
  if (c.verb == "import") return DoImport(c);
  if (c.verb == "delete") return DoDelete(c);
  if (c.verb == "info") return DoInfo(c);
  if (c.verb == "map") return DoMap(c);
  if (c.verb == "unmap") return DoUnmap(c);
  if (c.verb == "modify") return DoModify(c);
  if (c.verb == "replace") return DoReplace(c);
  if (c.verb == "forget") return DoForget(c);
  if (c.verb == "resize") return DoResize(c);
  if (c.verb == "snapshot") return DoSnapshot(c);
  return DoList(c);
}
