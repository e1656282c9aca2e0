// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// How nbd-cli reports; see cli_output.h.
#include "cli/cli_output.h"
#include "utils/printable.h"

#include <cerrno>

namespace nbdr::cli {

namespace {
bool g_json = false;
}  // namespace

void SetJsonOutput(bool on) { g_json = on; }
bool JsonOutput() { return g_json; }

void PrintJson(json_object* o, FILE* out) {
  fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char* ErrnoName(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOSPC: return "ENOSPC";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EOVERFLOW: return "EOVERFLOW";
    case EIO: return "EIO";
    default: return "EOTHER";
  }
}

int Error(int exit_code, int err, const std::string& message) {
  if (JsonOutput()) {
    Json o(json_object_new_object());
    json_object* e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_int(err));
    json_object_object_add(e, "errno", json_object_new_string(ErrnoName(err)));
    json_object_object_add(e, "message", json_object_new_string(message.c_str()));
    json_object_object_add(o.get(), "error", e);
    PrintJson(o.get(), stderr);
  } else {
    fprintf(stderr, "nbd-cli: %s\n", Printable(message).c_str());
  }
  return exit_code;
}

int Usage(const std::string& why) {
  if (JsonOutput()) return Error(kExitUsage, EINVAL, why);
  fprintf(stderr, "nbd-cli: %s\n(see 'nbd-cli help')\n", why.c_str());
  return kExitUsage;
}

int CallFailed(const Status& s) {
  bool unreachable = s.code() == ECONNREFUSED || s.code() == EHOSTUNREACH ||
                     s.code() == ETIMEDOUT || s.code() == ECOMM || s.code() == ENETUNREACH;
  return Error(unreachable ? kExitUnreachable : kExitFailed, s.code(), s.message());
}

}  // namespace nbdr::cli
