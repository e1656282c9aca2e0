// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: the files the programs load at start: the runner's
// saveconfig.json (and its round trip: what loads must save and load to
// the same JSON), the runner's config file through the whole option
// parser, nbd-cli's mappings.json and its cli.conf. The first byte picks
// the file; the rest is its content, written to a scratch file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/cli_config.h"
#include "cli/mapping_state.h"
#include "runner/runner_options.h"
#include "runner/saveconfig.h"
#include "utils/log.h"

namespace {

using namespace nbdr;

std::string g_scratch;

void RemoveScratch() { unlink(g_scratch.c_str()); }

const std::string& ScratchPath() {
  if (g_scratch.empty()) {
    Logger::Default().SetStderr(false);
    char tmpl[] = "/tmp/nbdr-fuzz-state-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) abort();
    close(fd);
    g_scratch = tmpl;
    atexit(RemoveScratch);
  }
  return g_scratch;
}

void WriteScratch(const std::string& text) {
  FILE* f = fopen(ScratchPath().c_str(), "w");
  if (!f) abort();
  fwrite(text.data(), 1, text.size(), f);
  fclose(f);
}

void CheckSaveconfig(const std::string& text) {
  auto records = ParseSaveconfig(text, "fuzz");
  if (!records.ok()) return;
  const std::string json = SaveconfigToJson(*records);
  auto again = ParseSaveconfig(json, "fuzz (saved)");
  if (!again.ok() || SaveconfigToJson(*again) != json) abort();
}

void CheckRunnerConfig(const std::string& text) {
  WriteScratch(text);
  std::string path = ScratchPath();
  char arg0[] = "nbd-runner", arg1[] = "--config";
  char* argv[] = {arg0, arg1, path.data(), nullptr};
  (void)ParseRunnerOptions(3, argv);
}

void CheckMappings(const std::string& text) {
  WriteScratch(text);
  setenv("NBD_CLI_STATE", ScratchPath().c_str(), 1);
  (void)LoadMappings();
}

void CheckCliConfig(const std::string& text) {
  WriteScratch(text);
  setenv("NBD_CLI_CONFIG", ScratchPath().c_str(), 1);
  unsetenv("NBD_RUNNER_HOST");
  CliDefaults d;
  (void)ApplyCliConfig(&d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: CheckSaveconfig(text); break;
    case 1: CheckRunnerConfig(text); break;
    case 2: CheckMappings(text); break;
    default: CheckCliConfig(text); break;
  }
  return 0;
}
