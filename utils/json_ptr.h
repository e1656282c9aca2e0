// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// JsonPtr: the owner of one json-c object reference (json_object_put on
// destruction). Move-only, thread-compatible. Header-only; the runner and
// the CLI use it for every json_object they make or parse. Also the array
// of strings both write (AddStringArray).
#pragma once

#include <json-c/json.h>

#include <memory>
#include <string>
#include <vector>

namespace nbdr {

struct JsonPut {
  void operator()(json_object* o) const { json_object_put(o); }
};
using JsonPtr = std::unique_ptr<json_object, JsonPut>;

// Adds member name to obj: list as an array of strings; nothing when the
// list is empty.
inline void AddStringArray(json_object* obj, const char* name, const std::vector<std::string>& list) {
  if (list.empty()) return;
  json_object* array = json_object_new_array();
  for (const auto& item : list) json_object_array_add(array, json_object_new_string(item.c_str()));
  json_object_object_add(obj, name, array);
}

}  // namespace nbdr
