// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// WriteFileAtomically: replaces a file so that whoever reads it, even
// after a crash or power loss, sees the old contents or the new, never a
// part: a temporary file beside it, written, fsynced, renamed over it,
// and the directory fsynced. Used for the runner's saveconfig.json and
// the CLI's mappings.json. Thread-safe for different paths.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "utils/status.h"

namespace nbdr {

// Writes text to path (created with mode, path + ".tmp" on the way).
// Fails with the step that failed ("write", "fsync", "rename" and the
// file) and leaves path as it was, the temporary file removed. Once the
// rename is done the new file is in place and that is success: when only
// the directory's fsync then fails, *dir_sync_error (if given) says so,
// and the change may not survive a power loss.
Status WriteFileAtomically(const std::string& path, std::string_view text, mode_t mode,
                           std::string* dir_sync_error = nullptr);

}  // namespace nbdr
