// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The CLI's configuration file: defaults for nbd-cli's global options, so
// they need not be repeated on every command. Path: $NBD_CLI_CONFIG,
// default /etc/nbd-runner/cli.conf (a missing default file is no error).
// Keys: tls-psk, tls-username, tls-certificates, as the options of the
// same names, and host (HOST[:PORT], as the host keyword). The command
// line wins over $NBD_RUNNER_HOST, which wins over the file.
// Thread-compatible.
#pragma once

#include <optional>
#include <string>

#include "cli/client_tls.h"
#include "utils/net.h"
#include "utils/status.h"

namespace nbdr {

std::string CliConfigPath();

// What nbd-cli takes when the command line does not say.
struct CliDefaults {
  ClientTlsOptions tls;          // the command line's, completed from the file
  std::optional<HostPort> host;  // $NBD_RUNNER_HOST, else the file's host
};

// Fills what *d does not set yet from $NBD_RUNNER_HOST and the file;
// relative paths in the file are taken from the file's directory. A bad
// value is an error naming where it came from.
Status ApplyCliConfig(CliDefaults* d);

// Makes tls's paths absolute (from the current directory): nbd-clid,
// which reconnects later, runs elsewhere.
void MakeTlsPathsAbsolute(ClientTlsOptions* tls);

}  // namespace nbdr
