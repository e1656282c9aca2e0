// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// How nbd-cli reports: results on stdout (text, or JSON with --json
// anywhere on the line), errors on stderr as "nbd-cli: message" (or a JSON
// object with code, errno and message), and the exit status: 0 success,
// 1 the operation failed, 2 bad usage, 3 the runner could not be reached.
// The output mode is process-wide, set once by main before any command
// runs; the functions are then safe from one thread.
#pragma once

#include <json-c/json.h>

#include <cstdio>
#include <memory>
#include <string>

#include "utils/json_ptr.h"
#include "utils/status.h"

namespace nbdr::cli {

inline constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitUnreachable = 3;

void SetJsonOutput(bool on);
bool JsonOutput();

// Owns a json_object reference.
using Json = JsonPtr;

void PrintJson(json_object* o, FILE* out);
// "ENOENT" and the like for JSON errors; "EOTHER" for the rest.
const char* ErrnoName(int e);
// Reports message (err: its errno) and returns exit_code.
int Error(int exit_code, int err, const std::string& message);
// Reports bad usage; returns kExitUsage.
int Usage(const std::string& why);
// Reports a failed call to a runner: kExitUnreachable when the runner
// could not be reached, else kExitFailed.
int CallFailed(const Status& s);

}  // namespace nbdr::cli
