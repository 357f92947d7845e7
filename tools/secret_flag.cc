#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_string(secret_file, "",
              "File holding the cluster's shared secret (same on the root and every worker); "
              "connections are authenticated with HMAC-SHA256 challenge-response. Empty: no "
              "authentication (both ends must agree)");

namespace shardlm::cli {

std::string SecretFileFlag() { return FLAGS_secret_file; }

}  // namespace shardlm::cli
