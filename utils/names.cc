// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Name validation; see names.h.
#include "utils/names.h"

#include <cerrno>
#include <string>

namespace nbdr {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status ValidateType(std::string_view type) {
  if (type.empty() || type.size() > 32)
    return Status::Error(EINVAL, "type '" + std::string(type) + "': must be 1 to 32 characters");
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return Status::Error(EINVAL, "type '" + std::string(type) +
                                       "': only lower-case letters, digits, '-' and '_'");
  }
  return Status();
}

Status ValidateSnapshotName(std::string_view name) {
  auto bad = [&](const char* why) {
    std::string shown;
    for (char c : name.substr(0, 80)) shown += IsControlChar(c) ? '?' : c;
    return Status::Error(EINVAL, "snapshot name '" + shown + "': " + why);
  };
  if (name.empty() || name.size() > 64) return bad("must be 1 to 64 characters");
  if (name.front() == '.') return bad("must not start with '.'");
  if (!IsSnapshotName(name)) return bad("only letters, digits, '.', '-' and '_'");
  return Status();
}

bool SplitSnapshotKey(std::string_view key_at_name, std::string* key, std::string* name) {
  size_t at = key_at_name.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  if (!IsSnapshotName(key_at_name.substr(at + 1))) return false;
  *key = std::string(key_at_name.substr(0, at));
  *name = std::string(key_at_name.substr(at + 1));
  return true;
}

Status ValidateKey(std::string_view key) {
  auto bad = [&](const char* why) {
    // Never echo control characters back verbatim.
    std::string shown;
    for (char c : key.substr(0, 200)) shown += IsControlChar(c) ? '?' : c;
    return Status::Error(EINVAL, "key '" + shown + "': " + why);
  };
  if (key.empty()) return bad("empty");
  if (key.size() > kMaxNameLength) return bad("longer than 4096 bytes");
  if (!IsValidUtf8(key)) return bad("not valid UTF-8");
  for (char c : key) {
    if (c == 0) return bad("contains a NUL byte");
    if (IsControlChar(c)) return bad("contains a control character");
  }
  if (key.front() == '/') return bad("absolute paths are not allowed");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view comp = key.substr(start, end - start);
    if (comp.empty()) return bad("empty path component");
    if (comp == "..") return bad("'..' is not allowed");
    if (comp == ".") return bad("'.' components are not allowed");
    start = end + 1;
  }
  return Status();
}

Status ValidateNewKey(std::string_view type, std::string_view key) {
  if (Status s = ValidateKey(key); !s.ok()) return s;
  size_t name = type.size() + 1 + key.size();
  if (name > kMaxNameLength)
    return Status::Error(EINVAL, "key of " + std::to_string(key.size()) +
                                     " bytes: its export name " + std::string(type) +
                                     "/<key> would be " + std::to_string(name) +
                                     " bytes, and NBD allows " +
                                     std::to_string(kMaxNameLength));
  return Status();
}

Expected<ExportName> ParseExportName(std::string_view name) {
  if (name.size() > kMaxNameLength)
    return Status::Error(EINVAL, "export name longer than 4096 bytes");
  size_t slash = name.find('/');
  if (slash == std::string_view::npos)
    return Status::Error(EINVAL, "export name must be <type>/<key>");
  ExportName out{std::string(name.substr(0, slash)), std::string(name.substr(slash + 1))};
  if (Status s = ValidateType(out.type); !s.ok()) return s;
  if (Status s = ValidateKey(out.key); !s.ok()) return s;
  return out;
}

std::string MakeExportName(std::string_view type, std::string_view key) {
  std::string s(type);
  s += '/';
  s += key;
  return s;
}

Status ValidateHostId(std::string_view id) {
  if (id.empty()) return Status::Error(EINVAL, "the host identity is empty");
  if (id.size() > kMaxHostIdLength)
    return Status::Error(EINVAL, "the host identity is longer than " +
                                     std::to_string(kMaxHostIdLength) + " bytes");
  for (char c : id)
    if (IsControlChar(c))
      return Status::Error(EINVAL, "the host identity has control characters");
  return Status();
}

Status ValidateTlsIdentity(std::string_view id) {
  const bool psk = id.starts_with("psk:"), x509 = id.starts_with("x509:");
  if (!psk && !x509)
    return Status::Error(EINVAL, "a TLS identity is psk:IDENTITY or x509:DN (the client "
                                 "certificate's subject)");
  std::string_view rest = id.substr(psk ? 4 : 5);
  if (rest.empty()) return Status::Error(EINVAL, "the TLS identity after its prefix is empty");
  if (id.size() > kMaxTlsIdentityLength)
    return Status::Error(EINVAL, "a TLS identity is at most " +
                                     std::to_string(kMaxTlsIdentityLength) + " bytes");
  if (psk && rest.find(':') != std::string_view::npos)
    return Status::Error(EINVAL, "a PSK identity has no ':' (psktool's IDENTITY:KEY format)");
  if (psk && rest.find(',') != std::string_view::npos)
    return Status::Error(EINVAL, "a PSK identity has no ','; write each identity with its "
                                 "prefix: psk:alice,psk:bob");
  for (char c : id)
    if (IsControlChar(c)) return Status::Error(EINVAL, "a TLS identity has no control characters");
  if (!IsValidUtf8(id)) return Status::Error(EINVAL, "a TLS identity is UTF-8");
  return Status();
}

Expected<std::vector<std::string>> ParseTlsIdentityList(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); i++) {
    const bool end = i == text.size();
    if (!end && !(text[i] == ',' && (text.substr(i + 1).starts_with("psk:") ||
                                     text.substr(i + 1).starts_with("x509:"))))
      continue;
    std::string id(text.substr(start, i - start));
    if (Status s = ValidateTlsIdentity(id); !s.ok()) return s;
    out.push_back(std::move(id));
    start = i + 1;
  }
  return out;
}

int ParseNbdDevice(std::string_view dev) {
  constexpr std::string_view kPrefix = "/dev/nbd";
  if (!dev.starts_with(kPrefix)) return -1;
  const std::string_view digits = dev.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 6) return -1;
  if (digits.size() > 1 && digits[0] == '0') return -1;  // the kernel's names have none
  int n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace nbdr
