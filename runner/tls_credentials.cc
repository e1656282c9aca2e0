// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Loading TLS credentials; see tls_credentials.h.
#include "runner/tls_credentials.h"

#include <gnutls/x509.h>

#include <cerrno>
#include <cstring>

#include "runner/minted_keys.h"
#include "utils/tls_files.h"

namespace nbdr {

namespace {

// The ciphers of GnuTLS's defaults, and the PSK key exchanges when a PSK
// file is given: only those with an (EC)DHE exchange, so a key that leaks
// later does not decrypt recorded sessions (forward secrecy).
constexpr char kPriorityX509[] = "NORMAL";
constexpr char kPriorityWithPsk[] = "NORMAL:+ECDHE-PSK:+DHE-PSK";

Status GnutlsError(int rc, const std::string& what) {
  return Status::Error(EINVAL, what + ": " + gnutls_strerror(rc));
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

namespace {

gnutls_datum_t Datum(const std::string& text) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(text.data())),
          static_cast<unsigned>(text.size())};
}

}  // namespace

// Each file is read once, through ReadCredentialFile's checks, and handed
// to GnuTLS from memory, so what was checked is what is used.
Status TlsCredentials::LoadCertificates() {
  const std::string dir = options_.certificates_dir;
  const std::string ca = dir + "/ca-cert.pem", crl = dir + "/ca-crl.pem";
  const std::string cert = dir + "/server-cert.pem", key = dir + "/server-key.pem";
  auto ca_text = ReadCredentialFile(ca, FileSecrecy::kPublic);
  if (!ca_text) return ca_text.status();
  auto cert_text = ReadCredentialFile(cert, FileSecrecy::kPublic);
  if (!cert_text) return cert_text.status();
  auto key_text = ReadCredentialFile(key, FileSecrecy::kSecret);
  if (!key_text) return key_text.status();
  auto crl_text = ReadCredentialFile(crl, FileSecrecy::kPublic);
  if (!crl_text && crl_text.status().code() != ENOENT)
    return crl_text.status();  // never skipped silently
  if (int rc = gnutls_certificate_allocate_credentials(&x509_); rc < 0)
    return GnutlsError(rc, "allocating X.509 credentials");
  const gnutls_datum_t ca_datum = Datum(*ca_text);
  int n = gnutls_certificate_set_x509_trust_mem(x509_, &ca_datum, GNUTLS_X509_FMT_PEM);
  if (n < 0) return GnutlsError(n, ca);
  if (n == 0) return Status::Error(EINVAL, ca + ": no certificate in it");
  if (crl_text) {
    const gnutls_datum_t crl_datum = Datum(*crl_text);
    if (int rc = gnutls_certificate_set_x509_crl_mem(x509_, &crl_datum, GNUTLS_X509_FMT_PEM);
        rc < 0)
      return GnutlsError(rc, crl);
  }
  const gnutls_datum_t cert_datum = Datum(*cert_text), key_datum = Datum(*key_text);
  if (int rc = gnutls_certificate_set_x509_key_mem(x509_, &cert_datum, &key_datum,
                                                    GNUTLS_X509_FMT_PEM);
      rc < 0)
    return GnutlsError(rc, cert + " with " + key);
  return Status();
}

Status TlsCredentials::LoadPskFile() {
  auto table = ReadPskFile(options_.psk_file);
  if (!table) return table.status();
  psk_keys_ = std::move(*table);
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
