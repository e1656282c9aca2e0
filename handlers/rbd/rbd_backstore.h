// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The rbd handler's shared parts: its instance, its cluster connections
// and exports, and opening an image for one call (rbd_handler.cc serves
// images, rbd_snapshots.cc snapshots them). Internal to librbd_handler.so.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "handlers/common/handler_util.h"
#include "nbd-runner/handler.h"
#include "utils/mutex.h"

namespace rbd_backstore {

constexpr long kDefaultOpTimeoutSeconds = 30;

// A connection to the cluster and the ioctxs made from it. Shared by the
// handler (while it is the current one) and the images opened through it.
// Owns a rados_t until it is handed to a ClusterConnection.
struct RadosShutdown {
  void operator()(void* cluster) const { rados_shutdown(static_cast<rados_t>(cluster)); }
};
using RadosCluster = std::unique_ptr<void, RadosShutdown>;

struct ClusterConnection {
  rados_t cluster = nullptr;
  std::map<std::pair<std::string, std::string>, rados_ioctx_t> ioctxs;  // (pool, namespace)
  std::atomic<bool> blocklisted{false};  // the cluster refuses it: make a new one
  ~ClusterConnection() {
    for (auto& [id, io] : ioctxs) rados_ioctx_destroy(io);
    if (cluster) rados_shutdown(cluster);
  }
};

struct RbdHandler {
  const nbdr_services* svc = nullptr;
  std::string conf_file;  // empty: librados' default search
  std::string client_id;  // empty: "admin"
  std::string keyring;
  long op_timeout_s = kDefaultOpTimeoutSeconds;
  bool full_try = false;  // ceph-full-try: see GetIoctx
  nbdr::Mutex mu;         // guards conn and its ioctxs; held while connecting
  std::shared_ptr<ClusterConnection> conn;
  std::unique_ptr<handler_util::WorkerPool> pool;
};

// librados' and librbd's answer to a client the cluster blocklisted.
constexpr int kBlocklisted = ESHUTDOWN;

struct RbdExport {
  RbdHandler* h;
  std::shared_ptr<ClusterConnection> conn;  // the one the image was opened through
  std::string key;
  rbd_image_t image;
  uint64_t size;
  bool whole_object_diff;  // fast-diff: extents from the object map alone
  handler_util::FailedRequestLog failures{};
  // librbd clips a write that crosses the image's end and reports success,
  // so a write is checked against the image's size now: known here, and
  // asked again after librbd says the header changed (a resize, say).
  std::atomic<uint64_t> current_size{0};
  std::atomic<bool> header_changed{false};
  uint64_t update_watch = 0;
  bool watching = false;
  bool readonly = false;  // opened with rbd_open_read_only
};

// What a key names.
struct ImageRef {
  std::string pool, ns, image;
};

// An image opened for one call (see OpenImage).
struct OpenedImage {
  ImageRef ref;
  rados_ioctx_t io = nullptr;
  std::shared_ptr<ClusterConnection> conn;
  rbd_image_t image = nullptr;
};

// Opens the image key names into *o; mode as open's readonly argument:
// with NBDR_OPEN_SNAPSHOT, key "POOL/IMAGE@SNAP" opens snapshot SNAP. Returns 0 or a positive errno
// with err set.
int OpenImage(RbdHandler* h, const char* key, int mode, OpenedImage* o, char* err, size_t errlen);
// An operator sentence for a failed librbd call (rc < 0) on ref.
int ImageError(const char* what, const ImageRef& ref, int rc, char* err, size_t errlen);

// Snapshots (rbd_snapshots.cc): RBD snapshots of the image.
handler_util::SnapshotCreateFn SnapshotCreate;
handler_util::SnapshotDeleteFn SnapshotDelete;
handler_util::SnapshotListFn SnapshotList;
handler_util::SnapshotRollbackFn SnapshotRollback;

}  // namespace rbd_backstore
