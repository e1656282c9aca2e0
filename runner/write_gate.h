// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// WriteGate: lets an export's writes run together, and a read-modify-write
// (realigned_io.h) or a snapshot alone. Every write-type request to an
// export holds the gate shared from submit to completion; a
// read-modify-write holds it exclusively, so no other write, on any
// connection, lands between its read and its write, and so does a
// snapshot, so that none lands while it is taken. Waiting exclusive
// holders keep new shared ones out.
#pragma once

#include <condition_variable>

#include "utils/mutex.h"

namespace nbdr {

class WriteGate {
 public:
  // Waits while a read-modify-write runs or waits to run.
  void EnterShared();
  void LeaveShared();
  // Waits until no write is in flight and no other holder is in.
  void EnterExclusive();
  void LeaveExclusive();

 private:
  Mutex mu_;
  std::condition_variable cv_;
  int shared_ GUARDED_BY(mu_) = 0;
  int exclusive_wanted_ GUARDED_BY(mu_) = 0;
  bool exclusive_ GUARDED_BY(mu_) = false;
};

}  // namespace nbdr
