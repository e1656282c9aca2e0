// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Validation of the names that cross trust boundaries: handler types,
// backstore keys and NBD export names ("<type>/<key>"). Everything a client
// sends is checked here before it reaches a handler or the file system.
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "utils/status.h"

namespace nbdr {

// Longest export name accepted (NBD protocol limit for strings).
inline constexpr size_t kMaxNameLength = 4096;

// A handler type: 1..32 characters of [a-z0-9_-].
Status ValidateType(std::string_view type);

// A backstore key: a relative path of one or more components separated by
// '/', valid UTF-8, no NUL or control characters, no empty, "." or ".."
// components, not absolute, at most kMaxNameLength bytes.
Status ValidateKey(std::string_view key);

// A key for a new backstore: ValidateKey, and its export name
// "<type>/<key>" fits in the kMaxNameLength bytes NBD allows, so it can be
// served. (Records saved before this limit still load: ValidateKey.)
Status ValidateNewKey(std::string_view type, std::string_view key);

// A snapshot name: 1..64 characters of [A-Za-z0-9._-], not starting with
// '.' (it names a file beside a file or gluster backstore's own).
// Inline: handlers use it too.
inline bool IsSnapshotName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}
Status ValidateSnapshotName(std::string_view name);
// Splits "KEY@NAME" at the last '@' into key and snapshot name; false when
// there is no '@' or NAME is not a snapshot name.
bool SplitSnapshotKey(std::string_view key_at_name, std::string* key, std::string* name);

// Splits "<type>/<key>" and validates both parts.
struct ExportName {
  std::string type;
  std::string key;
};
Expected<ExportName> ParseExportName(std::string_view name);
std::string MakeExportName(std::string_view type, std::string_view key);

// True for the ASCII control characters (0x00-0x1f and DEL), which no name
// or identity may contain and no message echoes back verbatim.
inline bool IsControlChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Longest host identity a client may give (rpc NBDR_MAX_CLIENT less the
// terminator).
inline constexpr size_t kMaxHostIdLength = 255;

// A client's host identity (the owner of a mapping): one line of 1 to
// kMaxHostIdLength bytes without control characters. The message says
// which rule failed, without echoing the identity.
Status ValidateHostId(std::string_view id);

// Longest TLS identity on a backstore's access list.
inline constexpr size_t kMaxTlsIdentityLength = 1024;

// A TLS identity that may open a backstore, as the runner names the
// clients it sees: "psk:IDENTITY" (a PSK identity, without ':' or ',') or
// "x509:DN" (a verified client certificate's subject as GnuTLS writes it,
// "CN=client1,O=Example"). Valid UTF-8 without control characters, at
// most kMaxTlsIdentityLength bytes.
Status ValidateTlsIdentity(std::string_view id);

// "psk:a,x509:CN=b,O=c" -> {"psk:a", "x509:CN=b,O=c"}: a comma separates
// two identities only where the next one starts with "psk:" or "x509:"
// (a DN has commas of its own). Each is validated.
Expected<std::vector<std::string>> ParseTlsIdentityList(std::string_view text);

// "/dev/nbd7" -> 7: "/dev/nbd" and 1 to 6 digits without a leading zero;
// -1 for anything else.
// Nothing else is a device the runner records or nbd-cli maps.
int ParseNbdDevice(std::string_view dev);

// True when text is well-formed UTF-8 without overlong forms or surrogates.
bool IsValidUtf8(std::string_view text);

}  // namespace nbdr
