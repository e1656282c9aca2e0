// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The CLI's configuration file; see cli_config.h.
#include "cli/cli_config.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "cli/runner_client.h"
#include "utils/config_file.h"

namespace nbdr {

namespace {

constexpr char kDefaultCliConfig[] = "/etc/nbd-runner/cli.conf";

void MakeAbsolute(std::string* path, const std::filesystem::path& base) {
  if (path->empty() || (*path)[0] == '/') return;
  *path = (base / *path).lexically_normal().string();
}

}  // namespace

std::string CliConfigPath() {
  const char* env = getenv("NBD_CLI_CONFIG");
  return env && *env ? env : kDefaultCliConfig;
}

namespace {

// A runner address from where: "HOST[:PORT]".
Status ParseRunnerHost(const std::string& text, const std::string& where,
                       std::optional<HostPort>* out) {
  auto hp = ParseHostPort(text, kDefaultRpcPort);
  if (!hp) return Status::Error(EINVAL, where + ": " + hp.status().message());
  *out = *hp;
  return Status();
}

}  // namespace

Status ApplyCliConfig(CliDefaults* d) {
  if (const char* env = getenv("NBD_RUNNER_HOST"); env && *env && !d->host)
    if (Status s = ParseRunnerHost(env, "NBD_RUNNER_HOST", &d->host); !s.ok()) return s;
  const std::string path = CliConfigPath();
  const bool is_default = path == kDefaultCliConfig;
  std::error_code ec;
  if (is_default && !std::filesystem::exists(path, ec)) return Status();
  auto entries = ReadConfigFile(path);
  if (!entries) return entries.status();
  const std::filesystem::path base =
      std::filesystem::absolute(std::filesystem::path(path).parent_path(), ec);
  ClientTlsOptions file;
  for (const ConfigEntry& e : *entries) {
    if (e.value.empty()) return Status::Error(EINVAL, e.origin + ": '" + e.key + "' is empty");
    if (e.key == "host") {
      std::optional<HostPort> host;  // checked even when the environment's wins
      if (Status s = ParseRunnerHost(e.value, e.origin, &host); !s.ok()) return s;
      if (!d->host) d->host = host;
      continue;
    }
    std::string* slot = e.key == "tls-psk"            ? &file.psk_file
                        : e.key == "tls-username"     ? &file.username
                        : e.key == "tls-certificates" ? &file.certificates_dir
                                                      : nullptr;
    if (!slot)
      return Status::Error(EINVAL, e.origin + ": unknown key '" + e.key +
                                       "' (nbd-cli knows host, tls-psk, tls-username, "
                                       "tls-certificates)");
    *slot = e.value;
  }
  ClientTlsOptions* tls = &d->tls;
  MakeAbsolute(&file.psk_file, base);
  MakeAbsolute(&file.certificates_dir, base);
  // The file's username goes with the file's PSK file only.
  if (tls->psk_file.empty()) {
    tls->psk_file = file.psk_file;
    if (tls->username.empty()) tls->username = file.username;
  }
  if (tls->certificates_dir.empty()) tls->certificates_dir = file.certificates_dir;
  return Status();
}

void MakeTlsPathsAbsolute(ClientTlsOptions* tls) {
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return;
  MakeAbsolute(&tls->psk_file, cwd);
  MakeAbsolute(&tls->certificates_dir, cwd);
}

}  // namespace nbdr
