// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The CLI's configuration file: defaults for nbd-cli's global options, so
// they need not be repeated on every command. Path: $NBD_CLI_CONFIG,
// default /etc/nbd-runner/cli.conf (a missing default file is no error).
// Keys: tls-psk, tls-username, tls-certificates, as the options of the
// same names; an option on the command line wins over the file.
// Thread-compatible.
#pragma once

#include <string>

#include "cli/client_tls.h"
#include "utils/status.h"

namespace nbdr {

std::string CliConfigPath();

// Fills what *tls does not set yet from the file; relative paths in the
// file are taken from the file's directory.
Status ApplyCliConfig(ClientTlsOptions* tls);

// Makes tls's paths absolute (from the current directory): nbd-clid,
// which reconnects later, runs elsewhere.
void MakeTlsPathsAbsolute(ClientTlsOptions* tls);

}  // namespace nbdr
