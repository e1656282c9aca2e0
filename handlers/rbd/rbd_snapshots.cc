// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Snapshots of rbd backstores: native RBD snapshots (rbd snap ls shows
// them; the cluster keeps them, so the runner records nothing). A
// snapshot of an open image, and a forced rollback of one, go through the
// export's handle (which holds the exclusive lock; the runner has quiesced
// and flushed it); anything else through a handle of our own, for which
// librbd asks the lock's holder, if any, to do it.
// Snapshot NAME of POOL/IMAGE is served read-only as POOL/IMAGE@NAME
// (OpenImage opens it).
#include <cstring>
#include <vector>

#include "handlers/rbd/rbd_backstore.h"
#include "utils/names.h"

namespace rbd_backstore {

namespace {

using handler_util::SetErr;

// The sentence for a failed snapshot call (rc < 0) on snapshot name.
int SnapshotError(const char* what, const OpenedImage& o, const char* name, int rc, char* err,
                  size_t errlen) {
  const std::string image = o.ref.ns.empty() ? o.ref.pool + "/" + o.ref.image
                                             : o.ref.pool + "/" + o.ref.ns + "/" + o.ref.image;
  switch (-rc) {
    case EEXIST:
      SetErr(err, errlen, "rbd image %s already has a snapshot named %s", image.c_str(), name);
      return EEXIST;
    case ENOENT:
      SetErr(err, errlen, "rbd image %s has no snapshot named %s", image.c_str(), name);
      return ENOENT;
    case EBUSY:
      SetErr(err, errlen, "%s snapshot %s of rbd image %s: it is protected or has clones", what,
             name, image.c_str());
      return EBUSY;
    default:
      return ImageError(what, o.ref, rc, err, errlen);
  }
}

// The open export's image handle when it may write (it holds the
// exclusive lock, so nothing is handed over), else ours.
rbd_image_t WritableExportImage(void* export_handle, rbd_image_t ours) {
  auto* e = static_cast<RbdExport*>(export_handle);
  return e && !e->readonly ? e->image : ours;
}

// Opens key's image for one snapshot call, writable (only then can librbd
// hand the call to the lock holder).
int OpenForSnapshot(void* state, const char* key, OpenedImage* o, char* err, size_t errlen) {
  return OpenImage(static_cast<RbdHandler*>(state), key, 0, o, err, errlen);
}

}  // namespace

int SnapshotCreate(void* state, const char* key, void* export_handle, const char* name,
                   uint32_t /*flags*/, char* err, size_t errlen) {
  OpenedImage o;
  if (int rc = OpenForSnapshot(state, key, &o, err, errlen)) return rc;
  rbd_image_t image = WritableExportImage(export_handle, o.image);
  int rc = rbd_snap_create(image, name);
  rbd_close(o.image);
  return rc < 0 ? SnapshotError("create", o, name, rc, err, errlen) : 0;
}

int SnapshotDelete(void* state, const char* key, const char* name, char* err, size_t errlen) {
  OpenedImage o;
  if (int rc = OpenForSnapshot(state, key, &o, err, errlen)) return rc;
  int rc = rbd_snap_remove(o.image, name);
  rbd_close(o.image);
  return rc < 0 ? SnapshotError("delete", o, name, rc, err, errlen) : 0;
}

int SnapshotList(void* state, const char* key,
                 void (*each)(void* ctx, const char* name, uint64_t size, int64_t created),
                 void* ctx, char* err, size_t errlen) {
  OpenedImage o;
  if (int rc = OpenImage(static_cast<RbdHandler*>(state), key, NBDR_OPEN_READONLY, &o, err, errlen))
    return rc;
  std::vector<rbd_snap_info_t> snaps(16);
  int max = static_cast<int>(snaps.size());
  int n;
  while ((n = rbd_snap_list(o.image, snaps.data(), &max)) == -ERANGE) snaps.resize(max);
  if (n < 0) {
    rbd_close(o.image);
    return ImageError("list snapshots of", o.ref, n, err, errlen);
  }
  // librbd lists them by id: oldest first. One made outside the runner
  // whose name the runner would refuse is not listed (nor served).
  for (int i = 0; i < n; i++) {
    if (!nbdr::IsSnapshotName(snaps[i].name)) continue;
    timespec ts{};
    rbd_snap_get_timestamp(o.image, snaps[i].id, &ts);
    each(ctx, snaps[i].name, snaps[i].size, static_cast<int64_t>(ts.tv_sec));
  }
  rbd_snap_list_end(snaps.data());
  rbd_close(o.image);
  return 0;
}

int SnapshotRollback(void* state, const char* key, void* export_handle, const char* name,
                     uint64_t* size, char* err, size_t errlen) {
  OpenedImage o;
  if (int rc = OpenForSnapshot(state, key, &o, err, errlen)) return rc;
  rbd_image_t image = WritableExportImage(export_handle, o.image);
  int rc = rbd_snap_rollback(image, name);
  if (rc == 0) rc = rbd_get_size(image, size);
  rbd_close(o.image);
  if (rc < 0) return SnapshotError("roll back to", o, name, rc, err, errlen);
  handler_util::Log(static_cast<RbdHandler*>(state)->svc, NBDR_LOG_INFO, key,
                    "rolled back to snapshot %s", name);
  return 0;
}

}  // namespace rbd_backstore
