// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The client's TLS: what nbd-cli and nbd-clid prove themselves with
// (a PSK identity and key from a psktool file, and/or an X.509 directory
// in qemu's client layout: ca-cert.pem, client-cert.pem, client-key.pem),
// and the handshake that ends in kernel TLS. The kernel's nbd driver
// only reads and writes a plain socket, so after a GnuTLS handshake
// (TLS 1.3, AES-GCM or ChaCha20-Poly1305) the session's traffic keys are
// moved into the socket (TCP_ULP "tls", SOL_TLS TLS_TX/TLS_RX): from then
// on the kernel encrypts and decrypts, no process relays the data, and
// the mapping outlives nbd-cli. The kernel (6.1) cannot take a TLS 1.3
// post-handshake message (a session ticket or a KeyUpdate makes every
// later read fail with EIO), so the session asks for none, and the
// runner sends none (GNUTLS_NO_TICKETS, GNUTLS_NO_AUTO_REKEY).
// Functions are thread-safe.
#pragma once

#include <gnutls/gnutls.h>

#include <memory>
#include <string>

#include "utils/status.h"

namespace nbdr {

// The global options --tls-psk FILE, --tls-username ID and
// --tls-certificates DIR (or cli.conf's tls-psk, tls-username,
// tls-certificates).
struct ClientTlsOptions {
  std::string psk_file;
  std::string username;  // "": the file's only identity
  std::string certificates_dir;
  bool enabled() const { return !psk_file.empty() || !certificates_dir.empty(); }
};

// The options resolved: the PSK identity and key read from the file, and
// the certificate directory. This, not the file, is what nbd-clid keeps
// for a mapping (mappings.json is mode 0600 when it holds a key).
struct ClientTlsCredentials {
  std::string psk_identity;
  std::string psk_key;  // raw bytes
  std::string certificates_dir;
  bool enabled() const { return !psk_identity.empty() || !certificates_dir.empty(); }
};

// One client TLS session on a socket and the credentials it uses, freed
// together (the socket is the caller's). Used by StartKernelTls, and kept
// by a TlsRelay for the control RPC.
class ClientTlsSession {
 public:
  // Runs the client handshake on fd (TLS 1.3), verifying the server's
  // certificate against server_name when certificates are used.
  static Expected<std::unique_ptr<ClientTlsSession>> Handshake(int fd,
                                                               const ClientTlsCredentials& creds,
                                                               const std::string& server_name,
                                                               int timeout_s);
  ClientTlsSession() = default;
  ~ClientTlsSession();
  ClientTlsSession(const ClientTlsSession&) = delete;
  ClientTlsSession& operator=(const ClientTlsSession&) = delete;
  // Sets a session up (no handshake yet): loads and checks the credentials.
  Status Init(const ClientTlsCredentials& creds, const std::string& server_name);
  gnutls_session_t get() const { return session_; }

 private:
  Status LoadX509(const std::string& dir);
  gnutls_session_t session_ = nullptr;
  gnutls_psk_client_credentials_t psk_ = nullptr;
  gnutls_certificate_credentials_t x509_ = nullptr;
};

// Reads the PSK file (with ReadPskFile's checks) and picks the identity:
// --tls-username, or the only one in the file; a file of several needs
// --tls-username. Loads the certificate directory once to check it.
// Nothing when options are not enabled.
Expected<ClientTlsCredentials> ResolveClientTls(const ClientTlsOptions& options);

// On a connected socket whose NBD server has accepted NBD_OPT_STARTTLS:
// the TLS handshake (verifying the server's certificate against
// server_name when certificates are used), then the keys into the kernel.
// Afterwards read() and write() on fd carry plaintext, encrypted by the
// kernel. Needs the tls module (loaded through libkmod when missing).
Status StartKernelTls(int fd, const ClientTlsCredentials& creds, const std::string& server_name,
                      int timeout_s);

// The error for a runner that closed the connection during or right
// after the TLS handshake. Under TLS 1.3 a server refuses a client's
// certificate after the client's side of the handshake is done, so the
// client may learn of it only at its first read.
Status RefusedAfterHandshake(const std::string& server_name, const ClientTlsCredentials& creds);

}  // namespace nbdr
