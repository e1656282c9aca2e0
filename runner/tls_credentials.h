// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TlsCredentials: what the runner proves itself with and accepts from NBD
// clients over TLS: an X.509 certificate directory (qemu's and nbdkit's
// layout: ca-cert.pem, server-cert.pem, server-key.pem, optional
// ca-crl.pem) and/or a PSK file (psktool's format, "identity:hexkey" per
// line). Loaded whole or not at all: a file that is missing, malformed,
// or that others could read (a key) or write (any of them) is refused with
// a message naming it.
//
// Immutable once loaded, so sessions may share it from any thread; a
// reload makes a new one (connections keep the one they started with).
#pragma once

#include <gnutls/gnutls.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "utils/status.h"

namespace nbdr {

class MintedKeys;

enum class TlsMode { kOff, kOn, kRequire };

// "off", "on" or "require".
Expected<TlsMode> ParseTlsMode(const std::string& word);
const char* TlsModeName(TlsMode mode);

struct TlsOptions {
  TlsMode mode = TlsMode::kOff;
  std::string certificates_dir;  // tls-certificates: "" when not given
  std::string psk_file;          // tls-psk: "" when not given
  bool verify_peer = false;      // tls-verify-peer: X.509 clients must show a CA-signed cert
};

class TlsCredentials {
 public:
  // Loads what options name (nothing when TLS is off). minted (may be
  // null; it must outlive the credentials) holds the keys the runner made
  // for backstores with auth: PSK clients are looked up there too, so PSK
  // is accepted whenever TLS is on, even without a tls-psk file.
  static Expected<std::shared_ptr<const TlsCredentials>> Load(const TlsOptions& options,
                                                              const MintedKeys* minted = nullptr);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  const TlsOptions& options() const { return options_; }
  const MintedKeys* minted() const { return minted_; }
  // Sets a new server session up to use these credentials.
  Status ConfigureSession(gnutls_session_t session) const;
  // The key of a PSK identity (the tls-psk file's, else a minted one).
  std::optional<std::string> PskKey(const std::string& identity) const;
  // "x509 (certificates in DIR), psk (N identities)": for the log.
  std::string Describe() const;

 private:
  TlsCredentials(const TlsOptions& options, const MintedKeys* minted)
      : options_(options), minted_(minted) {}
  Status LoadCertificates();
  Status LoadPskFile();
  Status SetUpPsk();

  const TlsOptions options_;
  const MintedKeys* const minted_;
  gnutls_certificate_credentials_t x509_ = nullptr;
  gnutls_psk_server_credentials_t psk_ = nullptr;
  std::map<std::string, std::string> psk_keys_;  // identity -> raw key bytes
};

}  // namespace nbdr
