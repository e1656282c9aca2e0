// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// HandlerSet: the handler plugins loaded into this runner — the registry
// of backstore types, and the runner's one global of that kind.
//
// LoadDirectory() looks for lib*_handler.so in a directory. Each candidate
// is first probed in a forked child (dlopen + handler_init), so a plugin
// that crashes or hangs at load never takes the daemon down; then it is
// loaded for real and checked: handler_init present and non-NULL, ABI
// version and struct size, a valid and unique name. A bad plugin gets one
// log line naming it and is skipped; the good ones are served. A good
// plugin whose load() refuses the runner's configuration (a malformed
// option, a base directory it cannot make) is an error of the operator's,
// not of the plugin: the runner refuses to start, naming it.
//
// Thread-safety: loading and unloading happen at start and stop, from one
// thread; between them the set is immutable and Find() may be called from
// any thread.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nbd-runner/handler.h"
#include "utils/status.h"

namespace nbdr {

class LoadedHandler {
 public:
  LoadedHandler() = default;
  ~LoadedHandler();
  LoadedHandler(const LoadedHandler&) = delete;
  LoadedHandler& operator=(const LoadedHandler&) = delete;

  const nbdr_handler& desc() const { return *desc_; }
  void* state() const { return state_; }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }

  // Calls the handler's synchronous callbacks, turning their errno +
  // message into a Status.
  Status Create(const std::string& key, const nbdr_create_params& params) const;
  Status Remove(const std::string& key) const;
  // mode: 0, NBDR_OPEN_READONLY or NBDR_OPEN_SNAPSHOT (key is KEY@NAME).
  Status Open(const std::string& key, int mode, nbdr_export_info* info, void** export_handle) const;
  // The identity of key's backing object (JSON text, see
  // nbdr_handler.identify); "" when the handler keeps none.
  Expected<std::string> Identify(const std::string& key) const;
  bool CanIdentify() const;
  // Fences the other runners of key's set out of its backing object
  // (nbdr_handler.take_over); ENOTSUP when the handler has no fence.
  Status TakeOver(const std::string& key) const;
  // Sets the size of key's backing object (nbdr_handler.resize; a larger
  // object only when may_shrink); ENOTSUP when the handler cannot.
  Status Resize(const std::string& key, uint64_t size, bool may_shrink) const;
  // Snapshots (nbdr_handler.snapshot_*; handler_snapshots.cc): ENOTSUP
  // when the handler has none. export_handle: key's open export, quiesced
  // by the caller, or null.
  bool CanSnapshot() const;
  struct Snapshot {
    std::string name;
    uint64_t size = 0;
    int64_t created = 0;  // seconds since the epoch; 0: unknown
  };
  // flags: NBDR_SNAPSHOT_COPY, NBDR_SNAPSHOT_UNFINISHED.
  Status SnapshotCreate(const std::string& key, void* export_handle, const std::string& name,
                        uint32_t flags) const;
  // Whether the handler copies snapshots in steps while writes go on
  // (nbdr_handler.snapshot_copy_ranges), and that step: ranges holds
  // (offset, length) pairs; flags NBDR_SNAPSHOT_FINISH or _DISCARD.
  bool CanCopySnapshotsLive() const;
  Status SnapshotCopyRanges(const std::string& key, const std::string& name,
                            const std::vector<uint64_t>& ranges, uint32_t flags) const;
  Status SnapshotDelete(const std::string& key, const std::string& name) const;
  Expected<std::vector<Snapshot>> SnapshotList(const std::string& key) const;
  // Returns the object's size after the rollback.
  Expected<uint64_t> SnapshotRollback(const std::string& key, void* export_handle,
                                      const std::string& name) const;

  // The size of an open export's backing object now (nbdr_handler.
  // export_size); ENOTSUP when the handler cannot tell.
  Expected<uint64_t> ExportSize(void* export_handle) const;

  // Room for a handler's sentence in err.
  static constexpr size_t kErrLen = 512;
  // A handler's errno and sentence as a Status (what: when it gave none).
  static Status HandlerError(int rc, const char* err, const std::string& what);

 private:
  friend class HandlerSet;
  void* dl_ = nullptr;
  const nbdr_handler* desc_ = nullptr;
  void* state_ = nullptr;
  std::string name_;
  std::string path_;

 public:
  // The services table and its context; must outlive the handler.
  struct Services;

 private:
  std::unique_ptr<Services> services_;
};

class HandlerSet {
 public:
  // options: every configuration value (runner and handler options); the
  // handlers read theirs through get_option.
  explicit HandlerSet(std::map<std::string, std::string> options);
  ~HandlerSet();

  // Loads every lib*_handler.so in dir (sorted by name). Fails when the
  // directory cannot be read or a handler refused its configuration (every
  // such refusal is logged); bad plugins are logged and skipped.
  // kDescribe only reads each handler's descriptor (for --help): its
  // load() is not called, so it starts nothing and serves nothing.
  enum class Mode { kServe, kDescribe };
  Status LoadDirectory(const std::string& dir, Mode mode = Mode::kServe);
  // Unloads every handler (calls unload, dlclose).
  void UnloadAll();

  const LoadedHandler* Find(const std::string& type) const;
  std::vector<std::string> Types() const;
  // Option names declared by the loaded handlers.
  std::set<std::string> DeclaredOptions() const;
  // The loaded handlers' own help: per handler, its name and description,
  // then each line of its config_help as a command-line option.
  std::string OptionsHelp() const;

 private:
  // Loads a handler whose probe (ProbeInChild) succeeded. *refused_config
  // is set when the handler's load() failed (its configuration).
  Status LoadProbed(const std::string& path, Mode mode, bool* refused_config);

  std::map<std::string, std::string> options_;
  std::vector<std::unique_ptr<LoadedHandler>> handlers_;
};

}  // namespace nbdr
