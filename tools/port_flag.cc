#include "gflags/gflags.h"
#include "tools/shared_flags.h"

DEFINE_int32(port, 9090, "TCP port to listen on (0: any free port, printed at startup)");

namespace shardlm::cli {

int PortFlag() { return FLAGS_port; }

}  // namespace shardlm::cli
