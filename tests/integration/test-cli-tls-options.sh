#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# nbd-cli's TLS options and its config file (issue 25), on the host (the
# mapping itself is tested in the guest, tests/vm/test-vm-tls.sh): the
# credentials are read and checked before any command runs, so a key
# file others can read, a file of several identities without
# --tls-username, an identity not in the file, a certificate directory
# without a CA, and a cli.conf with an unknown key each stop the command
# with exit status 2 and a message naming the file and the fix. cli.conf
# supplies the options (paths relative to its directory); the command
# line wins over it.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool

make_psk "$T/one.psk" carol
make_psk "$T/two.psk" alice bob
make_pki "$T/pki"
# The runner knows every key (the options reach its control port too).
cat "$T/one.psk" "$T/two.psk" >"$T/all.psk" && chmod 600 "$T/all.psk"
start_runner --tls on --tls-psk "$T/all.psk" --tls-certificates "$T/pki/server"
cli file create a.img size 1M >/dev/null  # as root, through the admin socket

cli --tls-psk "$T/one.psk" file list >/dev/null || fail "a good PSK file refused"
cli --tls-psk="$T/two.psk" --tls-username bob file list >/dev/null ||
  fail "--tls-psk=FILE with --tls-username refused"
cli --tls-certificates "$T/pki/client1" file list >/dev/null || fail "a good certificate dir refused"
(cd "$T" && "$CLI" --tls-psk one.psk file list host "$RPC" >/dev/null) ||
  fail "a relative --tls-psk path refused"
pass "good PSK files and certificate directories are taken, with any verb"

chmod 644 "$T/one.psk"
expect_fail 2 "one.psk holds a secret key but is readable by group or others \(mode 0644\); run chmod 600" \
  cli --tls-psk "$T/one.psk" file list
chmod 600 "$T/one.psk"
expect_fail 2 "holds 2 identities; say which with --tls-username" cli --tls-psk "$T/two.psk" file list
expect_fail 2 "--tls-username carol: not in .*two.psk" \
  cli --tls-psk "$T/two.psk" --tls-username carol file list
expect_fail 2 "--tls-username names an identity of --tls-psk, which is not given" \
  cli --tls-username bob file list
expect_fail 2 "'--tls-psk' needs a value" "$CLI" file list --tls-psk
expect_fail 2 "'--tls-psk' given twice" cli --tls-psk "$T/one.psk" --tls-psk "$T/one.psk" file list
expect_fail 2 "tls-certificates.*anonymous/ca-cert.pem|no-such/ca-cert.pem: No such file" \
  cli --tls-certificates "$T/no-such" file list
chmod 644 "$T/pki/client1/client-key.pem"
expect_fail 2 "client-key.pem holds a secret key but is readable" \
  cli --tls-certificates "$T/pki/client1" file list
chmod 600 "$T/pki/client1/client-key.pem"
printf 'alice:00112233\n' >"$T/short.psk"
chmod 600 "$T/short.psk"
expect_fail 2 "short.psk:1: the key of 'alice' has 4 bytes; at least 16 are needed" \
  cli --tls-psk "$T/short.psk" file list
pass "bad credentials stop every command with exit 2 and the file and fix named"

# cli.conf: the options' defaults, paths from the file's directory.
mkdir -p "$T/conf"
cp -p "$T/two.psk" "$T/conf/keys.psk"
printf 'tls-psk = keys.psk\ntls-username = carol\n' >"$T/conf/cli.conf"
export NBD_CLI_CONFIG="$T/conf/cli.conf"
expect_fail 2 "--tls-username carol: not in $T/conf/keys.psk" cli file list
cli --tls-username bob file list >/dev/null ||
  fail "--tls-username on the command line did not win over cli.conf's"
cli --tls-psk "$T/one.psk" file list >/dev/null ||
  fail "--tls-psk on the command line did not win over cli.conf's (and its username)"
printf 'tls-psk = keys.psk\nhots = x\n' >"$T/conf/cli.conf"
expect_fail 2 "cli.conf:2: unknown key 'hots'" cli file list
printf 'tls-certificates = nowhere\n' >"$T/conf/cli.conf"
expect_fail 2 "$T/conf/nowhere/ca-cert.pem" cli file list
export NBD_CLI_CONFIG="$T/conf/missing.conf"
expect_fail 2 "missing.conf" cli file list
unset NBD_CLI_CONFIG
pass "cli.conf gives defaults (relative paths from its directory), the command line wins, bad keys and files refused"
"$CLI" file help >/dev/null || fail "help needs no credentials"
