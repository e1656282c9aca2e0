# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Sourced by the TLS tests: makes fresh TLS credentials under a directory
# with psktool and certtool (gnutls-bin), as an operator would. Nothing
# here is ever committed: every run makes its own.
#
# make_psk FILE IDENTITY...: a psktool key file, one random key per identity.
make_psk() {
  local file=$1 id
  shift
  rm -f "$file"
  for id in "$@"; do psktool -u "$id" -p "$file" >/dev/null 2>&1 || fail "psktool -u $id"; done
  chmod 600 "$file"
}

# _cert DIR NAME SIGNER TEMPLATE...: DIR/NAME-key.pem and DIR/NAME-cert.pem,
# signed by SIGNER (DIR/SIGNER-{key,cert}.pem) or self-signed when SIGNER
# is "-"; the template lines are certtool's.
_cert() {
  local dir=$1 name=$2 signer=$3
  shift 3
  printf '%s\n' "$@" >"$dir/$name.tmpl"
  certtool --generate-privkey --key-type ecdsa --outfile "$dir/$name-key.pem" >/dev/null 2>&1 ||
    fail "certtool: key $name"
  chmod 600 "$dir/$name-key.pem"
  if [ "$signer" = - ]; then
    certtool --generate-self-signed --load-privkey "$dir/$name-key.pem" \
      --template "$dir/$name.tmpl" --outfile "$dir/$name-cert.pem" >/dev/null 2>&1
  else
    certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
      --load-ca-certificate "$dir/$signer-cert.pem" --load-ca-privkey "$dir/$signer-key.pem" \
      --template "$dir/$name.tmpl" --outfile "$dir/$name-cert.pem" >/dev/null 2>&1
  fi || fail "certtool: certificate $name"
}

# make_pki DIR: a CA and, signed by it, a server certificate for localhost,
# 127.0.0.1 and 10.0.2.2 (the host as the qemu guest sees it), client
# certificates "client1", "client2", "expired" (out of date) and
# "revoked" (on the CA's CRL); and "stranger", from another CA.
# Lays them out as the runner wants (DIR/server: ca-cert.pem,
# server-cert.pem, server-key.pem, ca-crl.pem) and as qemu and libnbd
# clients want (DIR/NAME: ca-cert.pem, client-cert.pem, client-key.pem).
make_pki() {
  local dir=$1 c
  mkdir -p "$dir/work"
  local w="$dir/work"
  _cert "$w" ca - 'cn = "nbd-runner test CA"' ca cert_signing_key crl_signing_key \
    'expiration_days = 30'
  _cert "$w" other-ca - 'cn = "another CA"' ca cert_signing_key 'expiration_days = 30'
  _cert "$w" server ca 'cn = "localhost"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
    'ip_address = "10.0.2.2"' \
    tls_www_server encryption_key signing_key 'expiration_days = 30'
  _cert "$w" client1 ca 'cn = "client1"' 'organization = "nbd-runner tests"' tls_www_client \
    encryption_key signing_key 'expiration_days = 30'
  _cert "$w" client2 ca 'cn = "client2"' 'organization = "nbd-runner tests"' tls_www_client \
    encryption_key signing_key 'expiration_days = 30'
  _cert "$w" revoked ca 'cn = "revoked"' tls_www_client encryption_key signing_key \
    'expiration_days = 30'
  _cert "$w" expired ca 'cn = "expired"' tls_www_client encryption_key signing_key \
    'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2020-02-01 00:00:00"'
  _cert "$w" stranger other-ca 'cn = "stranger"' tls_www_client encryption_key signing_key \
    'expiration_days = 30'
  printf '%s\n' 'expiration_days = 30' >"$w/crl.tmpl"
  certtool --generate-crl --load-ca-privkey "$w/ca-key.pem" --load-ca-certificate "$w/ca-cert.pem" \
    --load-certificate "$w/revoked-cert.pem" --template "$w/crl.tmpl" \
    --outfile "$w/ca-crl.pem" >/dev/null 2>&1 || fail "certtool: CRL"

  mkdir -p "$dir/server"
  cp "$w/ca-cert.pem" "$w/ca-crl.pem" "$w/server-cert.pem" "$w/server-key.pem" "$dir/server/"
  for c in client1 client2 revoked expired stranger; do
    mkdir -p "$dir/$c"
    cp "$w/ca-cert.pem" "$dir/$c/ca-cert.pem"
    cp "$w/$c-cert.pem" "$dir/$c/client-cert.pem"
    cp "$w/$c-key.pem" "$dir/$c/client-key.pem"
  done
  # A client with the CA but no certificate of its own.
  mkdir -p "$dir/anonymous"
  cp "$w/ca-cert.pem" "$dir/anonymous/"
  chmod 600 "$dir"/*/*key.pem
}

# revoke DIR NAME...: DIR/server/ca-crl.pem (made by make_pki DIR) now
# revokes the certificates of "revoked" and of each NAME.
revoke() {
  local dir=$1 c
  shift
  cat "$dir/work/revoked-cert.pem" >"$dir/work/to-revoke.pem"
  for c in "$@"; do cat "$dir/work/$c-cert.pem" >>"$dir/work/to-revoke.pem"; done
  certtool --generate-crl --load-ca-privkey "$dir/work/ca-key.pem" \
    --load-ca-certificate "$dir/work/ca-cert.pem" --load-certificate "$dir/work/to-revoke.pem" \
    --template "$dir/work/crl.tmpl" --outfile "$dir/work/ca-crl.new" >/dev/null 2>&1 ||
    fail "certtool: CRL revoking $*"
  cp "$dir/work/ca-crl.new" "$dir/server/ca-crl.pem"
}
