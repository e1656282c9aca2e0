// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// OpenExport and ExportSharing; see open_export.h.
#include "runner/open_export.h"

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
  if (Status s = handler_->Open(record_.key, record_.readonly, &info_, &handle); !s.ok()) return s;
  handle_ = handle;
  size_.store(info_.size);
  LOG_INFO(record_.ExportName(), "export opened (%s)", FormatSize(info_.size).c_str());
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
