// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Shared writes, exclusive read-modify-writes and snapshots; see write_gate.h.
#include "runner/write_gate.h"

namespace nbdr {

void WriteGate::EnterShared() {
  MutexLock l(&mu_);
  l.Wait(&cv_, [&]() REQUIRES(mu_) { return !exclusive_ && exclusive_wanted_ == 0; });
  shared_++;
}

void WriteGate::LeaveShared() {
  MutexLock l(&mu_);
  if (--shared_ == 0 && exclusive_wanted_ > 0) cv_.notify_all();
}

void WriteGate::EnterExclusive() {
  MutexLock l(&mu_);
  exclusive_wanted_++;
  l.Wait(&cv_, [&]() REQUIRES(mu_) { return !exclusive_ && shared_ == 0; });
  exclusive_wanted_--;
  exclusive_ = true;
}

void WriteGate::LeaveExclusive() {
  MutexLock l(&mu_);
  exclusive_ = false;
  cv_.notify_all();
}

}  // namespace nbdr
