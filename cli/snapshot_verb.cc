// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli TYPE snapshot create|list|delete|rollback KEY [NAME]: the
// runner's NBDR_SNAPSHOT. A snapshot NAME of KEY is served read-only to
// NBD clients as the export TYPE/KEY@NAME.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string>

#include "cli/cli_output.h"
#include "cli/command.h"
#include "utils/names.h"
#include "utils/printable.h"
#include "utils/size_parse.h"

namespace nbdr::cli {
namespace {

// A copy may take as long as the object is large.
constexpr int kCopyCallTimeoutS = 3600;

std::string Created(int64_t t) {
  if (t <= 0) return "-";
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[32];
  if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) return "-";
  return buf;
}

int PrintSnapshots(const Command& c, const nbdr_snapshot_reply& r) {
  const std::string export_name = MakeExportName(c.type, c.key);
  if (JsonOutput()) {
    Json o(json_object_new_object());
    json_object* arr = json_object_new_array();
    for (u_int i = 0; i < r.snapshots.snapshots_len; i++) {
      const nbdr_snapshot& s = r.snapshots.snapshots_val[i];
      json_object* j = json_object_new_object();
      json_object_object_add(j, "name", json_object_new_string(s.name));
      json_object_object_add(j, "size", json_object_new_int64(static_cast<int64_t>(s.size)));
      json_object_object_add(j, "created", json_object_new_string(Created(s.created).c_str()));
      json_object_object_add(j, "export",
                             json_object_new_string((export_name + "@" + s.name).c_str()));
      json_object_array_add(arr, j);
    }
    json_object_object_add(o.get(), "export", json_object_new_string(export_name.c_str()));
    json_object_object_add(o.get(), "snapshots", arr);
    PrintJson(o.get(), stdout);
    return kExitOk;
  }
  if (r.snapshots.snapshots_len == 0) {
    printf("no snapshots of %s\n", Printable(export_name).c_str());
    return kExitOk;
  }
  size_t w = 4;
  for (u_int i = 0; i < r.snapshots.snapshots_len; i++)
    w = std::max(w, strlen(r.snapshots.snapshots_val[i].name));
  printf("%-*s  %12s  %-20s  %s\n", static_cast<int>(w), "NAME", "SIZE", "CREATED", "EXPORT");
  for (u_int i = 0; i < r.snapshots.snapshots_len; i++) {
    const nbdr_snapshot& s = r.snapshots.snapshots_val[i];
    printf("%-*s  %12s  %-20s  %s\n", static_cast<int>(w), Printable(s.name).c_str(),
           FormatSize(s.size).c_str(), Created(s.created).c_str(),
           Printable(export_name + "@" + s.name).c_str());
  }
  return kExitOk;
}

}  // namespace

int DoSnapshot(const Command& c) {
  static const struct {
    const char* word;
    nbdr_snapshot_op op;
  } kOps[] = {{"list", NBDR_SNAPSHOT_LIST},
              {"create", NBDR_SNAPSHOT_CREATE},
              {"delete", NBDR_SNAPSHOT_DELETE},
              {"rollback", NBDR_SNAPSHOT_ROLLBACK}};
  const auto* op = std::find_if(std::begin(kOps), std::end(kOps),
                                [&](const auto& o) { return c.snapshot_op == o.word; });
  if (op == std::end(kOps))
    return Usage("snapshot needs create, list, delete or rollback, not '" + c.snapshot_op + "'");
  if (op->op != NBDR_SNAPSHOT_LIST)
    if (Status s = ValidateSnapshotName(c.snapshot_name); !s.ok()) return Usage(s.message());
  auto client = ConnectOrFail(c);
  if (!client) return CallFailed(client.status());
  // A rollback may copy too (gluster always; file without reflinks).
  if (c.copy || op->op == NBDR_SNAPSHOT_ROLLBACK)
    client->set_call_timeout(std::max(c.call_timeout_s, kCopyCallTimeoutS));
  nbdr_snapshot_args a{const_cast<char*>(c.type.c_str()),
                       const_cast<char*>(c.key.c_str()),
                       op->op,
                       const_cast<char*>(c.snapshot_name.c_str()),
                       c.copy,
                       c.force};
  RpcResult<nbdr_snapshot_reply> r(NBDR_SNAPSHOT);
  if (Status s = client->Call(NBDR_SNAPSHOT, &a, r.get()); !s.ok()) return CallFailed(s);
  r.set_filled();
  if (r->status != 0) return Error(kExitFailed, r->status, r->message);
  if (op->op == NBDR_SNAPSHOT_LIST) return PrintSnapshots(c, *r);
  return ReportStatus(c, r->message);
}

}  // namespace nbdr::cli
