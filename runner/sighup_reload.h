// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// SIGHUP: the running runner re-reads its configuration. It is checked
// first as a start would check it (this program run again with
// --check-config, in a child); then the log level, the mapping timeout
// and the TLS credentials change live, and every other changed option is
// named in the log as needing a restart.
//
// Main thread only (where signals are handled).
#pragma once

#include "runner/backstore_registry.h"
#include "runner/nbd_server.h"
#include "runner/runner_options.h"
#include "utils/status.h"

namespace nbdr {

// Runs this program again with argv and --check-config; OK when the
// check passed, else the check's reason.
Status CheckConfigInChild(int argc, char** argv);

// Applies a SIGHUP to the running runner (running: its options, updated
// with what changed live).
void Reload(int argc, char** argv, RunnerOptions* running, BackstoreRegistry* registry,
            NbdServer* nbd);

}  // namespace nbdr
