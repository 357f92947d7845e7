#include "tests/test_util.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "transport/local/local_transport.h"

namespace shardlm::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
}

}  // namespace

BackendOptions ExactOneThread() {
  BackendOptions o;
  o.threads = 1;
  o.numerics = Numerics::kExact;
  return o;
}

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

SyntheticModelSpec SmallShardedModelSpec(DType type) {
  SyntheticModelSpec spec;
  spec.dim = 256;
  spec.ffn_dim = 512;
  spec.n_layers = 2;
  spec.n_heads = 8;
  spec.n_kv_heads = 4;
  spec.vocab_size = 300;
  spec.context_length = 64;
  spec.type = type;
  spec.seed = 5;
  return spec;
}

absl::StatusOr<std::string> WriteSyntheticModelFile(const SyntheticModelSpec& spec,
                                                    const std::string& name) {
  const std::string path = TempPath(name + ".gguf");
  absl::Status status = WriteSyntheticModel(spec, path);
  if (!status.ok()) return status;
  return path;
}

absl::Status RunLocalRanks(int world, const std::function<absl::Status(Transport*)>& body,
                           Clock* clock) {
  std::shared_ptr<LocalHub> hub = LocalHub::Create(world, clock);
  std::vector<absl::Status> status(world);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      std::unique_ptr<Transport> transport = hub->Endpoint(rank);
      status[rank] = body(transport.get());
      if (!status[rank].ok()) hub->Shutdown();  // fail the others promptly
    });
  }
  for (std::thread& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank) {
    if (!status[rank].ok()) {
      return absl::Status(status[rank].code(),
                          absl::StrCat("rank ", rank, ": ", status[rank].message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace shardlm::testing
