// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// MintedKeys: the TLS pre-shared keys nbd-runner makes itself, one per
// backstore that has `auth` (nbd-cli TYPE create ... auth, modify KEY
// auth enable): the identity goes on the backstore's access list, the key
// is shown to the operator once and kept only here, in
// <state-dir>/minted-keys.json (mode 0600, replaced atomically):
// {"IDENTITY": {"export": "TYPE/KEY", "key": "HEX"}}. TLS handshakes look
// an identity up here after the tls-psk file.
//
// Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "utils/mutex.h"
#include "utils/status.h"

namespace nbdr {

class MintedKeys {
 public:
  explicit MintedKeys(std::string path) : path_(std::move(path)) {}

  // Reads the file (none yet: no keys). A file others may read, or one
  // that is not as written, is refused with the reason.
  Status Load() EXCLUDES(mu_);

  struct Minted {
    std::string identity;  // "nbdr-<32 hex digits>", without "psk:"
    std::string key_hex;   // 32 random bytes
    // psktool's line for the client's key file: "IDENTITY:HEX".
    std::string PskLine() const { return identity + ":" + key_hex; }
  };
  // A fresh identity and key for export_name, persisted before it returns.
  Expected<Minted> Mint(const std::string& export_name) EXCLUDES(mu_);
  // Forgets these identities (unknown ones are ignored), persisted.
  Status Forget(const std::vector<std::string>& identities) EXCLUDES(mu_);
  // The identities minted for export_name.
  std::vector<std::string> IdentitiesOf(const std::string& export_name) const EXCLUDES(mu_);
  // The backstore a minted identity was made for.
  std::optional<std::string> ExportOf(const std::string& identity) const EXCLUDES(mu_);
  // The raw key of a minted identity.
  std::optional<std::string> Key(const std::string& identity) const EXCLUDES(mu_);

 private:
  struct Entry {
    std::string export_name;
    std::string key_hex;
  };
  Status SaveLocked(const std::map<std::string, Entry>& keys) const REQUIRES(mu_);

  const std::string path_;
  mutable Mutex mu_;
  std::map<std::string, Entry> keys_ GUARDED_BY(mu_);  // by identity
};

}  // namespace nbdr
