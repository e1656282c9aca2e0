// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Loading TLS credentials; see tls_credentials.h.
#include "runner/tls_credentials.h"

#include <gnutls/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "runner/minted_keys.h"
#include "utils/hex.h"

namespace nbdr {

namespace {

// Shorter PSKs are open to an offline guess from one recorded handshake.
constexpr size_t kMinPskBytes = 16;

// The ciphers of GnuTLS's defaults, and the PSK key exchanges when a PSK
// file is given: only those with an (EC)DHE exchange, so a key that leaks
// later does not decrypt recorded sessions (forward secrecy).
constexpr char kPriorityX509[] = "NORMAL";
constexpr char kPriorityWithPsk[] = "NORMAL:+ECDHE-PSK:+DHE-PSK";

Status GnutlsError(int rc, const std::string& what) {
  return Status::Error(EINVAL, what + ": " + gnutls_strerror(rc));
}

std::string FormatMode(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

// A file a TLS secret or trust anchor is read from must be a regular file
// that nobody else may change; a secret (key) also one nobody else may read.
Status CheckFileMode(const std::string& path, bool secret) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return PosixError(path);
  if (!S_ISREG(st.st_mode)) return Status::Error(EINVAL, path + ": not a regular file");
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 022) != 0)
    return Status::Error(EPERM, path + " is writable by group or others (mode " +
                                    FormatMode(mode) + "); run chmod go-w " + path);
  if (secret && (mode & 044) != 0)
    return Status::Error(EPERM, path + " holds a secret key but is readable by group or others "
                                       "(mode " + FormatMode(mode) + "); run chmod 600 " + path);
  return Status();
}

// GnuTLS asks for the key of the identity a client names; the session's
// pointer is the credentials the session was configured with.
int PskLookup(gnutls_session_t session, const gnutls_datum_t* username, gnutls_datum_t* key) {
  const auto* creds = static_cast<const TlsCredentials*>(gnutls_session_get_ptr(session));
  std::string identity(reinterpret_cast<const char*>(username->data), username->size);
  std::optional<std::string> raw;
  if (creds) raw = creds->PskKey(identity);
  if (!raw) return -1;  // unknown identity: the handshake fails
  key->data = static_cast<unsigned char*>(gnutls_malloc(raw->size()));
  if (!key->data) return -1;
  memcpy(key->data, raw->data(), raw->size());
  key->size = static_cast<unsigned>(raw->size());
  return 0;
}

}  // namespace

Expected<TlsMode> ParseTlsMode(const std::string& word) {
  if (word == "off") return TlsMode::kOff;
  if (word == "on") return TlsMode::kOn;
  if (word == "require") return TlsMode::kRequire;
  return Status::Error(EINVAL, "--tls: '" + word + "' is not off, on or require");
}

const char* TlsModeName(TlsMode mode) {
  switch (mode) {
    case TlsMode::kOff: return "off";
    case TlsMode::kOn: return "on";
    case TlsMode::kRequire: return "require";
  }
  return "?";
}

Expected<std::shared_ptr<const TlsCredentials>> TlsCredentials::Load(const TlsOptions& options,
                                                                     const MintedKeys* minted) {
  std::shared_ptr<TlsCredentials> c(new TlsCredentials(options, minted));
  if (options.mode == TlsMode::kOff) return std::shared_ptr<const TlsCredentials>(c);
  if (options.certificates_dir.empty() && options.psk_file.empty())
    return Status::Error(EINVAL, "TLS without --tls-certificates or --tls-psk");
  if (!options.certificates_dir.empty()) {
    if (Status s = c->LoadCertificates(); !s.ok()) return s.WithContext("--tls-certificates");
  }
  if (!options.psk_file.empty()) {
    if (Status s = c->LoadPskFile(); !s.ok()) return s.WithContext("--tls-psk");
  }
  if (!options.psk_file.empty() || minted) {
    if (Status s = c->SetUpPsk(); !s.ok()) return s;
  }
  return std::shared_ptr<const TlsCredentials>(c);
}

TlsCredentials::~TlsCredentials() {
  if (x509_) gnutls_certificate_free_credentials(x509_);
  if (psk_) gnutls_psk_free_server_credentials(psk_);
}

Status TlsCredentials::LoadCertificates() {
  const std::string dir = options_.certificates_dir;
  const std::string ca = dir + "/ca-cert.pem", crl = dir + "/ca-crl.pem";
  const std::string cert = dir + "/server-cert.pem", key = dir + "/server-key.pem";
  for (const auto& [path, secret] : {std::pair{ca, false}, {cert, false}, {key, true}}) {
    if (Status s = CheckFileMode(path, secret); !s.ok()) return s;
  }
  if (int rc = gnutls_certificate_allocate_credentials(&x509_); rc < 0)
    return GnutlsError(rc, "allocating X.509 credentials");
  int n = gnutls_certificate_set_x509_trust_file(x509_, ca.c_str(), GNUTLS_X509_FMT_PEM);
  if (n < 0) return GnutlsError(n, ca);
  if (n == 0) return Status::Error(EINVAL, ca + ": no certificate in it");
  struct stat st;
  const bool have_crl = stat(crl.c_str(), &st) == 0;
  if (!have_crl && errno != ENOENT) return PosixError(crl);  // never skipped silently
  if (have_crl) {
    if (Status s = CheckFileMode(crl, false); !s.ok()) return s;
    if (int rc = gnutls_certificate_set_x509_crl_file(x509_, crl.c_str(), GNUTLS_X509_FMT_PEM);
        rc < 0)
      return GnutlsError(rc, crl);
  }
  if (int rc = gnutls_certificate_set_x509_key_file(x509_, cert.c_str(), key.c_str(),
                                                     GNUTLS_X509_FMT_PEM);
      rc < 0)
    return GnutlsError(rc, cert + " with " + key);
  return Status();
}

Status TlsCredentials::LoadPskFile() {
  const std::string& path = options_.psk_file;
  if (Status s = CheckFileMode(path, true); !s.ok()) return s;
  std::ifstream in(path);
  if (!in) return PosixError(path);
  std::string line;
  for (int number = 1; std::getline(in, line); number++) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      return Status::Error(EINVAL, where + ": not IDENTITY:HEXKEY (psktool's format)");
    std::string identity = line.substr(0, colon), key;
    if (!DecodeHex(line.substr(colon + 1), &key))
      return Status::Error(EINVAL, where + ": the key of '" + identity + "' is not hexadecimal");
    if (key.size() < kMinPskBytes)
      return Status::Error(EINVAL, where + ": the key of '" + identity + "' has " +
                                       std::to_string(key.size()) + " bytes; at least " +
                                       std::to_string(kMinPskBytes) + " are needed");
    if (!psk_keys_.emplace(identity, key).second)
      return Status::Error(EINVAL, where + ": identity '" + identity + "' given twice");
  }
  if (psk_keys_.empty()) return Status::Error(EINVAL, path + ": no IDENTITY:HEXKEY line");
  return Status();
}

Status TlsCredentials::SetUpPsk() {
  if (int rc = gnutls_psk_allocate_server_credentials(&psk_); rc < 0)
    return GnutlsError(rc, "allocating PSK credentials");
  gnutls_psk_set_server_credentials_function2(psk_, PskLookup);
  if (int rc = gnutls_psk_set_server_known_dh_params(psk_, GNUTLS_SEC_PARAM_MEDIUM); rc < 0)
    return GnutlsError(rc, "PSK DH parameters");
  return Status();
}

std::optional<std::string> TlsCredentials::PskKey(const std::string& identity) const {
  if (auto it = psk_keys_.find(identity); it != psk_keys_.end()) return it->second;
  if (minted_) return minted_->Key(identity);
  return std::nullopt;
}

Status TlsCredentials::ConfigureSession(gnutls_session_t session) const {
  gnutls_session_set_ptr(session, const_cast<TlsCredentials*>(this));
  const char* priority = psk_ ? kPriorityWithPsk : kPriorityX509;
  if (int rc = gnutls_priority_set_direct(session, priority, nullptr); rc < 0)
    return GnutlsError(rc, "TLS priority");
  if (x509_) {
    if (int rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, x509_); rc < 0)
      return GnutlsError(rc, "X.509 credentials");
    if (options_.verify_peer) {
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
      gnutls_session_set_verify_cert(session, nullptr, 0);  // checked in the handshake
    } else {
      gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
    }
  }
  if (psk_) {
    if (int rc = gnutls_credentials_set(session, GNUTLS_CRD_PSK, psk_); rc < 0)
      return GnutlsError(rc, "PSK credentials");
  }
  return Status();
}

std::string TlsCredentials::Describe() const {
  std::string out;
  if (x509_)
    out += "x509 (" + options_.certificates_dir +
           (options_.verify_peer ? ", clients' certificates verified" : "") + ")";
  if (!options_.psk_file.empty())
    out += std::string(out.empty() ? "" : ", ") + "psk (" + std::to_string(psk_keys_.size()) +
           " identities in " + options_.psk_file + ")";
  if (minted_) out += std::string(out.empty() ? "" : ", ") + "keys minted for backstores";
  return out;
}

}  // namespace nbdr
