// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// OpenExport and ExportSharing; see open_export.h.
#include "runner/open_export.h"

#include <cstring>
#include <future>

#include "utils/log.h"
#include "utils/size_parse.h"

namespace nbdr {

OpenExport::~OpenExport() {
  if (handle_) {
    handler_->desc().close(handle_);
    LOG_INFO(record_.ExportName(), "export closed");
  }
}

Status OpenExport::Open() {
  void* handle = nullptr;
  const int mode = !record_.snapshot.empty() ? NBDR_OPEN_SNAPSHOT
                   : record_.readonly        ? NBDR_OPEN_READONLY
                                             : 0;
  if (Status s = handler_->Open(record_.HandlerKey(), mode, &info_, &handle); !s.ok()) return s;
  handle_ = handle;
  size_.store(info_.size);
  LOG_INFO(record_.ExportName(), "export opened (%s)", FormatSize(info_.size).c_str());
  return Status();
}

Status OpenExport::Flush() {
  if (!(info_.caps & NBDR_CAP_FLUSH)) return Status();  // completed writes are stored
  struct Waiter : nbdr_request {
    std::promise<int> done;
  } w;
  static_cast<nbdr_request&>(w) = nbdr_request{};
  w.type = NBDR_REQ_FLUSH;
  w.complete = [](nbdr_request* r, int error) {
    static_cast<Waiter*>(r)->done.set_value(error < 0 ? -error : error);
  };
  std::future<int> result = w.done.get_future();
  handler_->desc().submit(handle_, &w);
  if (int error = result.get())
    return Status::Error(error, "flush of " + record_.ExportName() + ": " + strerror(error));
  return Status();
}

void ExportSharing::EndOpen(const std::shared_ptr<OpenExport>& opened) {
  opening_--;
  if (opened) open_ = opened;
}

std::string ExportSharing::BusyReason(const std::string& export_name) const {
  if (auto open = open_.lock())
    return "backstore " + export_name + " is in use by " + std::to_string(open.use_count() - 1) +
           " NBD connection(s)";
  if (IsOpening()) return "backstore " + export_name + " is being opened by an NBD client";
  return "";
}

}  // namespace nbdr
