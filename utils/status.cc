// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Status implementation; see status.h.
#include "utils/status.h"

#include <cerrno>
#include <cstring>

namespace nbdr {

namespace {
const std::string kEmpty;
}

Status Status::Error(int code, std::string message) {
  Status s;
  s.state_.reset(new State{code > 0 ? code : EIO, std::move(message)});
  return s;
}

const std::string& Status::message() const { return state_ ? state_->message : kEmpty; }

std::string Status::ToString() const {
  if (ok()) return "OK";
  return state_->message;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Error(state_->code, std::string(context) + ": " + state_->message);
}

Status PosixError(std::string_view context) {
  int err = errno;
  return Status::Error(err, std::string(context) + ": " + std::strerror(err));
}

Status NegErrnoError(std::string_view context, int ret) {
  int err = ret < 0 ? -ret : EIO;
  return Status::Error(err, std::string(context) + ": " + std::strerror(err));
}

}  // namespace nbdr
