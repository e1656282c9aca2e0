// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Random bytes; see random.h.
#include "utils/random.h"

#include <sys/random.h>

#include <cerrno>

namespace nbdr {

Expected<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return PosixError("getrandom");
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace nbdr
