// Parsing Protobuf text format with errors that name the source and line.
#ifndef SHARDLM_CORE_TEXT_PROTO_H_
#define SHARDLM_CORE_TEXT_PROTO_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace shardlm {

// Parses `text` into `out`. InvalidArgument "<source>: line L:C: <what>"
// at the first error; nothing is logged.
absl::Status ParseTextProto(const std::string& text, const std::string& source,
                            google::protobuf::Message* out);

}  // namespace shardlm

#endif  // SHARDLM_CORE_TEXT_PROTO_H_
