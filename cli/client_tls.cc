// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Client TLS and kernel TLS; see client_tls.h.
#include "cli/client_tls.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <linux/tls.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "cli/kernel_nbd.h"
#include "utils/tls_files.h"

namespace nbdr {

namespace {

// TLS 1.3 only (the kernel takes its keys), with the ciphers the kernel
// implements, and PSK only with an (EC)DHE exchange (forward secrecy).
constexpr char kPriority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"
    ":+ECDHE-PSK:+DHE-PSK";

Status GnutlsError(int rc, const std::string& what) {
  return Status::Error(rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ? EACCES : EPROTO,
                       what + ": " + gnutls_strerror(rc));
}

gnutls_datum_t Datum(const std::string& text) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(text.data())),
          static_cast<unsigned>(text.size())};
}

// Moves one direction's traffic keys into the socket. Info is the
// kernel's crypto_info struct of the session's cipher: GnuTLS's 12-byte
// TLS 1.3 IV is the kernel's salt followed by its iv.
template <typename Info>
Status PushKeys(gnutls_session_t session, int fd, bool receive, uint16_t cipher_type) {
  gnutls_datum_t mac, iv, key;
  unsigned char seq[8];
  if (int rc = gnutls_record_get_state(session, receive ? 1 : 0, &mac, &iv, &key, seq); rc < 0)
    return GnutlsError(rc, "reading the TLS session's keys");
  Info info;
  memset(&info, 0, sizeof info);
  if (key.size != sizeof info.key || iv.size != sizeof info.salt + sizeof info.iv)
    return Status::Error(EPROTO, "the TLS session's key sizes do not fit the kernel's cipher");
  info.info.version = TLS_1_3_VERSION;
  info.info.cipher_type = cipher_type;
  memcpy(info.key, key.data, sizeof info.key);
  memcpy(info.salt, iv.data, sizeof info.salt);
  memcpy(info.iv, iv.data + sizeof info.salt, sizeof info.iv);
  memcpy(info.rec_seq, seq, sizeof info.rec_seq);
  const int rc = setsockopt(fd, SOL_TLS, receive ? TLS_RX : TLS_TX, &info, sizeof info);
  const int err = errno;
  explicit_bzero(&info, sizeof info);
  if (rc != 0)
    return Status::Error(err, std::string("the kernel refused the TLS ") +
                                  (receive ? "receive" : "send") + " keys: " + strerror(err) +
                                  (err == ENOENT ? " (its cipher module, e.g. gcm or "
                                                   "chacha20poly1305, is not available)"
                                                 : ""));
  return Status();
}

template <typename Info>
Status PushBothKeys(gnutls_session_t session, int fd, uint16_t cipher_type) {
  if (Status s = PushKeys<Info>(session, fd, false, cipher_type); !s.ok()) return s;
  return PushKeys<Info>(session, fd, true, cipher_type);
}

Status InstallKernelTls(gnutls_session_t session, int fd) {
  if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3)
    return Status::Error(EPROTO, "the server did not agree to TLS 1.3");
  // Bytes GnuTLS already took off the socket would never reach the kernel.
  if (gnutls_record_check_pending(session) != 0)
    return Status::Error(EPROTO, "the server sent data before the client's first request");
  if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof "tls") != 0) {
    const int err = errno;
    if (err == ENOTCONN) return Status::Error(ECONNRESET, "closed right after the handshake");
    return Status::Error(err, std::string("the kernel refused TLS on the socket (TCP_ULP): ") +
                                  strerror(err));
  }
  switch (gnutls_cipher_get(session)) {
    case GNUTLS_CIPHER_AES_128_GCM:
      return PushBothKeys<tls12_crypto_info_aes_gcm_128>(session, fd, TLS_CIPHER_AES_GCM_128);
    case GNUTLS_CIPHER_AES_256_GCM:
      return PushBothKeys<tls12_crypto_info_aes_gcm_256>(session, fd, TLS_CIPHER_AES_GCM_256);
    case GNUTLS_CIPHER_CHACHA20_POLY1305:
      return PushBothKeys<tls12_crypto_info_chacha20_poly1305>(session, fd,
                                                               TLS_CIPHER_CHACHA20_POLY1305);
    default:
      return Status::Error(EPROTO, std::string("the server chose cipher ") +
                                       gnutls_cipher_get_name(gnutls_cipher_get(session)) +
                                       ", which the kernel cannot take");
  }
}

// The reason a certificate was refused, in GnuTLS's words.
std::string VerifyFailure(gnutls_session_t session) {
  gnutls_datum_t text{};
  const unsigned status = gnutls_session_get_verify_cert_status(session);
  if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0)
    return "certificate verification failed";
  std::string out(reinterpret_cast<const char*>(text.data), text.size);
  gnutls_free(text.data);
  return out;
}

// "PSK identity alice" / "certificate in DIR", for messages.
std::string Credentials(const ClientTlsCredentials& creds) {
  std::string out;
  if (!creds.psk_identity.empty()) out = "PSK identity " + creds.psk_identity;
  if (!creds.certificates_dir.empty())
    out += (out.empty() ? "" : " or ") + std::string("certificate in ") + creds.certificates_dir;
  return out;
}

}  // namespace

// ca-cert.pem must be there; client-cert.pem and client-key.pem only
// when this client shows a certificate; ca-crl.pem when present.
Status ClientTlsSession::LoadX509(const std::string& dir) {
  auto ca = ReadCredentialFile(dir + "/ca-cert.pem", FileSecrecy::kPublic);
  if (!ca) return ca.status();
  if (int rc = gnutls_certificate_allocate_credentials(&x509_); rc < 0)
    return GnutlsError(rc, "allocating X.509 credentials");
  const gnutls_datum_t ca_datum = Datum(*ca);
  int n = gnutls_certificate_set_x509_trust_mem(x509_, &ca_datum, GNUTLS_X509_FMT_PEM);
  if (n <= 0)
    return n < 0 ? GnutlsError(n, dir + "/ca-cert.pem")
                 : Status::Error(EINVAL, dir + "/ca-cert.pem: no certificate in it");
  auto crl = ReadCredentialFile(dir + "/ca-crl.pem", FileSecrecy::kPublic);
  if (!crl && crl.status().code() != ENOENT) return crl.status();
  if (crl) {
    const gnutls_datum_t crl_datum = Datum(*crl);
    if (int rc = gnutls_certificate_set_x509_crl_mem(x509_, &crl_datum, GNUTLS_X509_FMT_PEM);
        rc < 0)
      return GnutlsError(rc, dir + "/ca-crl.pem");
  }
  auto cert = ReadCredentialFile(dir + "/client-cert.pem", FileSecrecy::kPublic);
  if (!cert && cert.status().code() == ENOENT) return Status();  // no certificate to show
  if (!cert) return cert.status();
  auto key = ReadCredentialFile(dir + "/client-key.pem", FileSecrecy::kSecret);
  if (!key) return key.status();
  const gnutls_datum_t cert_datum = Datum(*cert), key_datum = Datum(*key);
  if (int rc = gnutls_certificate_set_x509_key_mem(x509_, &cert_datum, &key_datum,
                                                    GNUTLS_X509_FMT_PEM);
      rc < 0)
    return GnutlsError(rc, dir + "/client-cert.pem with client-key.pem");
  return Status();
}

Status ClientTlsSession::Init(const ClientTlsCredentials& creds, const std::string& server_name) {
  if (int rc = gnutls_init(&session_, GNUTLS_CLIENT | GNUTLS_NO_TICKETS | GNUTLS_NO_AUTO_REKEY);
      rc < 0)
    return GnutlsError(rc, "starting a TLS session");
  if (int rc = gnutls_priority_set_direct(session_, kPriority, nullptr); rc < 0)
    return GnutlsError(rc, "TLS priority");
  if (!creds.psk_identity.empty()) {
    if (int rc = gnutls_psk_allocate_client_credentials(&psk_); rc < 0)
      return GnutlsError(rc, "allocating PSK credentials");
    const gnutls_datum_t key = Datum(creds.psk_key);
    if (int rc = gnutls_psk_set_client_credentials(psk_, creds.psk_identity.c_str(), &key,
                                                   GNUTLS_PSK_KEY_RAW);
        rc < 0)
      return GnutlsError(rc, "PSK identity " + creds.psk_identity);
    if (int rc = gnutls_credentials_set(session_, GNUTLS_CRD_PSK, psk_); rc < 0)
      return GnutlsError(rc, "PSK credentials");
  }
  if (!creds.certificates_dir.empty()) {
    if (Status s = LoadX509(creds.certificates_dir); !s.ok())
      return s.WithContext("--tls-certificates");
    if (int rc = gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, x509_); rc < 0)
      return GnutlsError(rc, "X.509 credentials");
    // The server's certificate must be the CA's and name server_name (a
    // DNS name, or an address in its IP SANs).
    gnutls_session_set_verify_cert(session_, server_name.c_str(), 0);
    in6_addr any;
    const bool is_address = inet_pton(AF_INET, server_name.c_str(), &any) == 1 ||
                            inet_pton(AF_INET6, server_name.c_str(), &any) == 1;
    if (!is_address)
      gnutls_server_name_set(session_, GNUTLS_NAME_DNS, server_name.data(), server_name.size());
  }
  return Status();
}

Status RefusedAfterHandshake(const std::string& server_name, const ClientTlsCredentials& creds) {
  return Status::Error(EACCES, "TLS with " + server_name +
                                   ": the runner closed the connection, so it did not accept "
                                   "this client's " + Credentials(creds) +
                                   " (the runner's log says why)");
}

Expected<ClientTlsCredentials> ResolveClientTls(const ClientTlsOptions& options) {
  ClientTlsCredentials creds;
  creds.certificates_dir = options.certificates_dir;
  if (!creds.certificates_dir.empty()) {
    // Checked now, not at the first handshake: a command fails early.
    ClientTlsSession probe;
    if (Status s = probe.Init(creds, "localhost"); !s.ok()) return s;
  }
  if (!options.username.empty() && options.psk_file.empty())
    return Status::Error(EINVAL, "--tls-username names an identity of --tls-psk, "
                                 "which is not given");
  if (options.psk_file.empty()) return creds;
  auto table = ReadPskFile(options.psk_file);
  if (!table) return table.status().WithContext("--tls-psk");
  if (options.username.empty()) {
    if (table->size() != 1)
      return Status::Error(EINVAL, "--tls-psk " + options.psk_file + " holds " +
                                       std::to_string(table->size()) +
                                       " identities; say which with --tls-username");
    creds.psk_identity = table->begin()->first;
    creds.psk_key = table->begin()->second;
  } else {
    auto it = table->find(options.username);
    if (it == table->end())
      return Status::Error(ENOENT, "--tls-username " + options.username + ": not in " +
                                       options.psk_file);
    creds.psk_identity = it->first;
    creds.psk_key = it->second;
  }
  return creds;
}

ClientTlsSession::~ClientTlsSession() {
  if (session_) gnutls_deinit(session_);
  if (psk_) gnutls_psk_free_client_credentials(psk_);
  if (x509_) gnutls_certificate_free_credentials(x509_);
}

Expected<std::unique_ptr<ClientTlsSession>> ClientTlsSession::Handshake(
    int fd, const ClientTlsCredentials& creds, const std::string& server_name, int timeout_s) {
  std::unique_ptr<ClientTlsSession> session(new ClientTlsSession());
  if (Status s = session->Init(creds, server_name); !s.ok()) return s;
  gnutls_transport_set_int(session->get(), fd);
  gnutls_handshake_set_timeout(session->get(), static_cast<unsigned>(timeout_s) * 1000);
  int rc;
  do {
    rc = gnutls_handshake(session->get());
  } while (rc < 0 && !gnutls_error_is_fatal(rc));
  if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
    return Status::Error(EACCES, "TLS: the certificate of " + server_name +
                                     " is not trusted: " + VerifyFailure(session->get()));
  if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR ||
      rc == GNUTLS_E_PULL_ERROR)
    return RefusedAfterHandshake(server_name, creds);
  if (rc < 0) return GnutlsError(rc, "TLS handshake with " + server_name);
  return session;
}

Status StartKernelTls(int fd, const ClientTlsCredentials& creds, const std::string& server_name,
                      int timeout_s) {
  if (Status s = EnsureKernelModule("tls"); !s.ok()) return s;
  auto session = ClientTlsSession::Handshake(fd, creds, server_name, timeout_s);
  if (!session) return session.status();
  Status s = InstallKernelTls((*session)->get(), fd);
  if (s.code() == ECONNRESET) return RefusedAfterHandshake(server_name, creds);
  return s;
}

}  // namespace nbdr
