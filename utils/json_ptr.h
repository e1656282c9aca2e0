// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// JsonPtr: the owner of one json-c object reference (json_object_put on
// destruction). Move-only, thread-compatible. Header-only; the runner and
// the CLI use it for every json_object they make or parse.
#pragma once

#include <json-c/json.h>

#include <memory>

namespace nbdr {

struct JsonPut {
  void operator()(json_object* o) const { json_object_put(o); }
};
using JsonPtr = std::unique_ptr<json_object, JsonPut>;

}  // namespace nbdr
