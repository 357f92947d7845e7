// Thin RAII wrappers over non-blocking TCP sockets. Every blocking step
// (accept, connect, send, recv) polls under a deadline read on a Clock, and
// every failure is a Status whose message names the peer (host:port).
#ifndef SHARDLM_TRANSPORT_TCP_SOCKET_H_
#define SHARDLM_TRANSPORT_TCP_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/clock.h"

namespace shardlm {
namespace tcp {

// Owns one file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release();
  // Closes the descriptor (if any).
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A connected, non-blocking TCP stream with TCP_NODELAY set. One thread may
// send while another receives; two concurrent senders (or receivers) must
// serialize themselves.
class Socket {
 public:
  Socket() = default;
  // Takes ownership of a connected non-blocking `fd`; `peer` ("host:port")
  // names the other end in errors; deadlines are read on `clock` (not owned).
  Socket(UniqueFd fd, std::string peer, Clock* clock);
  Socket(Socket&&) = default;
  Socket& operator=(Socket&&) = default;

  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  const std::string& peer() const { return peer_; }
  Clock* clock() const { return clock_; }

  // Sends all bytes of `parts`, in order, by `deadline`. On an error some
  // prefix may have been sent.
  absl::Status SendAll(absl::Span<const absl::Span<const uint8_t>> parts, absl::Time deadline);
  absl::Status SendAll(absl::Span<const uint8_t> data, absl::Time deadline);

  // Fills `out` by `deadline`. The peer closing first is Unavailable
  // ("connection closed by <peer>"); running out of time is DeadlineExceeded.
  // `*received` (if given) is set to the bytes stored, also on errors.
  absl::Status RecvAll(absl::Span<uint8_t> out, absl::Time deadline, size_t* received = nullptr);

  // Whether the peer has closed or reset the connection (without waiting
  // and without consuming any bytes).
  bool PeerClosed() const;

  // shutdown(2) both directions: wakes threads blocked on this socket (their
  // calls fail) without closing the descriptor.
  void Shutdown();
  // Closes the descriptor.
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  std::string peer_;
  Clock* clock_ = nullptr;
};

// A listening TCP socket.
class Listener {
 public:
  // Binds `bind_addr` ("" or "0.0.0.0": all IPv4 interfaces; a numeric
  // address or a host name) on `port` (0: an ephemeral port, see port()).
  static absl::StatusOr<Listener> Listen(const std::string& bind_addr, int port, Clock* clock);

  Listener(Listener&&) = default;
  Listener& operator=(Listener&&) = default;

  // The port actually bound.
  int port() const { return port_; }
  // "bind_addr:port", for messages.
  const std::string& address() const { return address_; }

  // Waits for the next connection until `deadline` (DeadlineExceeded).
  absl::StatusOr<Socket> Accept(absl::Time deadline);

  // Stops listening; a later Accept fails.
  void Close() { fd_.Reset(); }

 private:
  Listener() = default;
  UniqueFd fd_;
  int port_ = 0;
  std::string address_;
  Clock* clock_ = nullptr;
};

// Connects to host:port by `deadline` (name resolution itself is not
// bounded by the deadline). The result has TCP_NODELAY set.
absl::StatusOr<Socket> Connect(const std::string& host, int port, absl::Time deadline,
                               Clock* clock);

}  // namespace tcp
}  // namespace shardlm

#endif  // SHARDLM_TRANSPORT_TCP_SOCKET_H_
