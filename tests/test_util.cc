#include "tests/test_util.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace shardlm::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string ModelPath(const std::string& name) {
  std::vector<std::string> candidates;
  if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
    candidates.push_back(absl::StrCat(srcdir, "/models/", name));
    candidates.push_back(absl::StrCat(srcdir, "/shardlm/external/models/", name));
  }
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    candidates.push_back(absl::StrCat(ws, "/../shared/models/", name));
  }
  candidates.push_back(absl::StrCat("../shared/models/", name));
  for (const std::string& c : candidates) {
    if (Exists(c)) return c;
  }
  return "";
}

std::string TempPath(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir ? dir : "/tmp", "/", counter++, "_", name);
}

std::string WriteTempFile(const std::string& name, const std::string& bytes) {
  const std::string path = TempPath(name);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), bytes.size());
  return path;
}

}  // namespace shardlm::testing
