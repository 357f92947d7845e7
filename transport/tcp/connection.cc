#include "transport/tcp/connection.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace tcp {

FramedConnection::FramedConnection(Socket socket, uint32_t max_frame_size)
    : socket_(std::move(socket)), max_frame_size_(max_frame_size) {}

absl::Status FramedConnection::WithPeer(const absl::Status& s) const {
  return absl::Status(s.code(), absl::StrCat(peer(), ": ", s.message()));
}

absl::Status FramedConnection::SendFrame(uint16_t type, uint32_t tag,
                                         absl::Span<const uint8_t> payload, absl::Time deadline) {
  std::lock_guard<std::mutex> lock(send_mu_);
  return SendLocked(type, tag, payload, deadline);
}

absl::Status FramedConnection::SendFrameIfIdle(uint16_t type, uint32_t tag,
                                               absl::Span<const uint8_t> payload,
                                               absl::Time deadline) {
  std::unique_lock<std::mutex> lock(send_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return absl::OkStatus();
  return SendLocked(type, tag, payload, deadline);
}

absl::Status FramedConnection::SendLocked(uint16_t type, uint32_t tag,
                                          absl::Span<const uint8_t> payload,
                                          absl::Time deadline) {
  if (payload.size() > max_frame_size_) {
    return absl::InvalidArgumentError(absl::StrCat("send to ", peer(), ": frame of ",
                                                   payload.size(), " bytes exceeds the maximum ",
                                                   max_frame_size_));
  }
  if (send_broken_) {
    return absl::FailedPreconditionError(
        absl::StrCat("send to ", peer(), ": connection broken by an earlier failed send"));
  }
  const auto header = EncodeFrameHeader(type, tag, payload);
  const absl::Span<const uint8_t> parts[] = {header, payload};
  absl::Status s = socket_.SendAll(parts, deadline);
  if (!s.ok()) send_broken_ = true;
  return s;
}

absl::Status FramedConnection::ReadHeader(absl::Time deadline) {
  size_t got = 0;
  absl::Status s = socket_.RecvAll(absl::MakeSpan(header_buf_).subspan(header_got_), deadline, &got);
  header_got_ += got;
  RETURN_IF_ERROR(s);
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(header_buf_, max_frame_size_);
  if (!h.ok()) {
    recv_error_ = WithPeer(h.status());
    return recv_error_;
  }
  header_ = *h;
  have_header_ = true;
  payload_.assign(header_.length, 0);
  payload_got_ = 0;
  return absl::OkStatus();
}

absl::Status FramedConnection::ReadPayload(absl::Time deadline) {
  size_t got = 0;
  absl::Status s = socket_.RecvAll(absl::MakeSpan(payload_).subspan(payload_got_), deadline, &got);
  payload_got_ += got;
  RETURN_IF_ERROR(s);
  absl::Status check = CheckFramePayload(header_, payload_);
  if (!check.ok()) {
    recv_error_ = WithPeer(check);
    return recv_error_;
  }
  return absl::OkStatus();
}

absl::StatusOr<Frame> FramedConnection::RecvFrame(absl::Time deadline) {
  std::lock_guard<std::mutex> lock(recv_mu_);
  RETURN_IF_ERROR(recv_error_);
  if (!have_header_) RETURN_IF_ERROR(ReadHeader(deadline));
  RETURN_IF_ERROR(ReadPayload(deadline));
  Frame f;
  f.type = header_.type;
  f.tag = header_.tag;
  f.payload = std::move(payload_);
  payload_.clear();
  have_header_ = false;
  header_got_ = 0;
  payload_got_ = 0;
  return f;
}

}  // namespace tcp
}  // namespace shardlm
