// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Status and Expected<T>: the one error type of nbd-runner.
//
// A Status is either OK (costs one null pointer) or carries an errno value
// and a message written as "operation: object: cause". Expected<T> holds a
// value or a non-OK Status. Both are thread-compatible: distinct objects may
// be used from different threads, one object needs external locking.
//
// Errors are created from errno in exactly two places: PosixError() for
// calls that return -1 and set errno (POSIX, gfapi) and NegErrnoError() for
// calls that return -errno (librados, librbd).
#pragma once

#include <cassert>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace nbdr {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(const Status& other) : state_(other.state_ ? new State(*other.state_) : nullptr) {}
  Status& operator=(const Status& other) {
    state_.reset(other.state_ ? new State(*other.state_) : nullptr);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  // code must be a positive errno value.
  static Status Error(int code, std::string message);

  bool ok() const { return state_ == nullptr; }
  // The errno value, 0 when OK.
  int code() const { return state_ ? state_->code : 0; }
  // The message, empty when OK.
  const std::string& message() const;
  // "OK" or "message (strerror)".
  std::string ToString() const;
  // Returns a copy whose message is prefixed by "context: ".
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    int code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

// Status from the current errno: "context: strerror(errno)".
Status PosixError(std::string_view context);
// Status from a -errno return value (librados/librbd): "context: strerror(-ret)".
Status NegErrnoError(std::string_view context, int ret);

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace nbdr
