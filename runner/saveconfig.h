// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// saveconfig.json: reading and atomically writing the backstore registry.
//
// Format: {"version": 1, "backstores": [ {type, key, size, block_size,
// readonly, prealloc, status, device, map_time, create_time, extras}, ... ]}
// Writes go to a temporary file that is fsynced, renamed over the old
// one, and the directory is fsynced, so a crash leaves either the old or
// the new file. Callers serialise writes (BackstoreRegistry holds one lock).
#pragma once

#include <string>
#include <vector>

#include "runner/backstore.h"
#include "utils/status.h"

namespace nbdr {

// Parses the JSON text of a saveconfig file. origin names it in errors.
Expected<std::vector<BackstoreRecord>> ParseSaveconfig(const std::string& text,
                                                       const std::string& origin);
std::string SaveconfigToJson(const std::vector<BackstoreRecord>& records);

// Reads path; a missing file is an empty registry, an unreadable or corrupt
// one an error naming the file and the cause (the file is left untouched).
Expected<std::vector<BackstoreRecord>> LoadSaveconfig(const std::string& path);
// Atomically replaces path with the given records. Fails only while the
// old file is still in place; once the new one is renamed over it, a
// failed sync of the directory is logged, not returned.
Status StoreSaveconfig(const std::string& path, const std::vector<BackstoreRecord>& records);

}  // namespace nbdr
