// Status propagation macros (the installed Abseil ships none).
#ifndef SHARDLM_CORE_STATUS_MACROS_H_
#define SHARDLM_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SHARDLM_CONCAT_INNER_(a, b) a##b
#define SHARDLM_CONCAT_(a, b) SHARDLM_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function
// when it is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status shardlm_status_ = (expr);           \
    if (!shardlm_status_.ok()) return shardlm_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  SHARDLM_ASSIGN_OR_RETURN_IMPL_(SHARDLM_CONCAT_(shardlm_statusor_, __LINE__), lhs, rexpr)

#define SHARDLM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // SHARDLM_CORE_STATUS_MACROS_H_
