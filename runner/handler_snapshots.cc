// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// LoadedHandler's snapshot calls: the optional snapshot_* callbacks of the
// handler ABI (added in 0.4; snapshot_copy_ranges in 0.5), turned into
// Status and std::vector.
#include <cerrno>
#include <cstddef>

#include "runner/handler_set.h"

namespace nbdr {

bool LoadedHandler::CanSnapshot() const {
  return desc_->struct_size >=
             offsetof(nbdr_handler, snapshot_rollback) + sizeof desc_->snapshot_rollback &&
         desc_->snapshot_create && desc_->snapshot_delete && desc_->snapshot_list &&
         desc_->snapshot_rollback;
}

namespace {

Status NoSnapshots(const std::string& handler) {
  return Status::Error(ENOTSUP, "the " + handler + " handler cannot take snapshots");
}

}  // namespace

Status LoadedHandler::SnapshotCreate(const std::string& key, void* export_handle,
                                     const std::string& name, uint32_t flags) const {
  if (!CanSnapshot()) return NoSnapshots(name_);
  char err[kErrLen] = "";
  int rc = desc_->snapshot_create(state_, key.c_str(), export_handle, name.c_str(), flags, err,
                                  sizeof err);
  if (rc != 0) return HandlerError(rc, err, "snapshot " + key + "@" + name);
  return Status();
}

bool LoadedHandler::CanCopySnapshotsLive() const {
  return CanSnapshot() &&
         desc_->struct_size >=
             offsetof(nbdr_handler, snapshot_copy_ranges) + sizeof desc_->snapshot_copy_ranges &&
         desc_->snapshot_copy_ranges;
}

Status LoadedHandler::SnapshotCopyRanges(const std::string& key, const std::string& name,
                                         const std::vector<uint64_t>& ranges,
                                         uint32_t flags) const {
  if (!CanCopySnapshotsLive()) return NoSnapshots(name_);
  char err[kErrLen] = "";
  int rc = desc_->snapshot_copy_ranges(state_, key.c_str(), name.c_str(), ranges.data(),
                                       ranges.size() / 2, flags, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "copy to snapshot " + key + "@" + name);
  return Status();
}

Status LoadedHandler::SnapshotDelete(const std::string& key, const std::string& name) const {
  if (!CanSnapshot()) return NoSnapshots(name_);
  char err[kErrLen] = "";
  int rc = desc_->snapshot_delete(state_, key.c_str(), name.c_str(), err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "delete snapshot " + key + "@" + name);
  return Status();
}

Expected<std::vector<LoadedHandler::Snapshot>> LoadedHandler::SnapshotList(
    const std::string& key) const {
  if (!CanSnapshot()) return NoSnapshots(name_);
  std::vector<Snapshot> out;
  auto each = [](void* ctx, const char* name, uint64_t size, int64_t created) {
    static_cast<std::vector<Snapshot>*>(ctx)->push_back({name ? name : "", size, created});
  };
  char err[kErrLen] = "";
  int rc = desc_->snapshot_list(state_, key.c_str(), each, &out, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "list snapshots of " + key);
  return out;
}

Expected<uint64_t> LoadedHandler::SnapshotRollback(const std::string& key, void* export_handle,
                                                   const std::string& name) const {
  if (!CanSnapshot()) return NoSnapshots(name_);
  char err[kErrLen] = "";
  uint64_t size = 0;
  int rc = desc_->snapshot_rollback(state_, key.c_str(), export_handle, name.c_str(), &size, err,
                                    sizeof err);
  if (rc != 0) return HandlerError(rc, err, "roll " + key + " back to " + name);
  return size;
}

}  // namespace nbdr
