// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// How the registry tells backing objects apart: a handler's identity text
// (include/nbd-runner/handler.h, identify) in its canonical form, and the
// refusal of a second backstore on one object. Pure functions,
// thread-safe. The registry's checks that use them (CheckObject, alias
// detection) are in backstore_identity.cc too.
#pragma once

#include <string>

#include "runner/backstore.h"
#include "utils/status.h"

namespace nbdr {

// A handler's identity text as saveconfig.json stores it (a JSON object,
// compact), or an error when it is not a JSON object.
Expected<std::string> CanonicalIdentity(const std::string& text);
// Whether two identity texts describe the same object.
bool SameIdentity(const std::string& a, const std::string& b);
// Whether r was registered with an identity (its handler keeps one).
bool HasIdentity(const BackstoreRecord& r);
// Refusal of a second backstore on one object: two backstores could be
// mapped or written by two clients at once, and deleting one would pull
// the object from under the other's clients.
Status SameObjectError(const std::string& name, const std::string& other);

}  // namespace nbdr
