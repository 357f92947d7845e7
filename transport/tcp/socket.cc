#include "transport/tcp/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace shardlm {
namespace tcp {
namespace {

// Longest single poll(2); deadlines are re-read on the clock after each.
constexpr absl::Duration kMaxPollSlice = absl::Milliseconds(100);

std::string ErrnoText(int err) { return std::strerror(err); }

// "ip:port" ("[ip]:port" for IPv6) of a socket address.
std::string FormatAddress(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    return absl::StrCat("[", buf, "]:", ntohs(a->sin6_port));
  }
  return "?";
}

// Waits until `fd` is ready for `events` or `deadline` passes on `clock`.
// OK also on POLLERR/POLLHUP: the next syscall reports the error.
absl::Status WaitReady(int fd, short events, Clock* clock, absl::Time deadline,
                       const std::string& what) {
  for (;;) {
    const absl::Duration left = deadline - clock->Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": deadline exceeded"));
    }
    const int ms = static_cast<int>(
        absl::ToInt64Milliseconds(absl::Ceil(std::min(left, kMaxPollSlice), absl::Milliseconds(1))));
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, std::max(ms, 1));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat(what, ": poll: ", ErrnoText(errno)));
    }
    if (n > 0 && p.revents != 0) return absl::OkStatus();
  }
}

absl::Status SetNoDelay(int fd, const std::string& peer) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return absl::InternalError(absl::StrCat("TCP_NODELAY on ", peer, ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

absl::StatusOr<AddrInfoPtr> Resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
  if (passive && host.empty()) hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  const std::string port_str = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_str.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ":", port, ": ", gai_strerror(rc)));
  }
  return AddrInfoPtr(res);
}

// One non-blocking connect attempt to `ai`.
absl::StatusOr<UniqueFd> ConnectOne(const addrinfo* ai, Clock* clock, absl::Time deadline,
                                    const std::string& peer) {
  UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     ai->ai_protocol));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("socket: ", ErrnoText(errno)));
  int rc;
  do {
    rc = connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("connect to ", peer, ": ", ErrnoText(errno)));
  }
  if (rc != 0) {
    RETURN_IF_ERROR(WaitReady(fd.get(), POLLOUT, clock, deadline, "connect to " + peer));
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return absl::UnavailableError(absl::StrCat("connect to ", peer, ": ", ErrnoText(err)));
    }
  }
  return fd;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

int UniqueFd::Release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

Socket::Socket(UniqueFd fd, std::string peer, Clock* clock)
    : fd_(std::move(fd)), peer_(std::move(peer)), clock_(clock) {}

absl::Status Socket::SendAll(absl::Span<const uint8_t> data, absl::Time deadline) {
  const absl::Span<const uint8_t> parts[] = {data};
  return SendAll(parts, deadline);
}

absl::Status Socket::SendAll(absl::Span<const absl::Span<const uint8_t>> parts,
                             absl::Time deadline) {
  if (!valid()) return absl::FailedPreconditionError(absl::StrCat("send to ", peer_, ": closed"));
  std::vector<iovec> iov;
  for (const auto& p : parts) {
    if (!p.empty()) iov.push_back({const_cast<uint8_t*>(p.data()), p.size()});
  }
  size_t first = 0;
  while (first < iov.size()) {
    msghdr msg{};
    msg.msg_iov = &iov[first];
    msg.msg_iovlen = std::min<size_t>(iov.size() - first, IOV_MAX);
    const ssize_t n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        RETURN_IF_ERROR(WaitReady(fd_.get(), POLLOUT, clock_, deadline, "send to " + peer_));
        continue;
      }
      return absl::UnavailableError(absl::StrCat("send to ", peer_, ": ", ErrnoText(errno)));
    }
    size_t sent = static_cast<size_t>(n);
    while (first < iov.size() && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + sent;
      iov[first].iov_len -= sent;
    }
  }
  return absl::OkStatus();
}

absl::Status Socket::RecvAll(absl::Span<uint8_t> out, absl::Time deadline, size_t* received) {
  size_t got = 0;
  if (received != nullptr) *received = 0;
  if (!valid()) return absl::FailedPreconditionError(absl::StrCat("recv from ", peer_, ": closed"));
  while (got < out.size()) {
    const ssize_t n = recv(fd_.get(), out.data() + got, out.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      if (received != nullptr) *received = got;
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(
          got == 0 ? absl::StrCat("connection closed by ", peer_)
                   : absl::StrCat("connection closed by ", peer_, " after ", got, " of ",
                                  out.size(), " bytes"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      RETURN_IF_ERROR(WaitReady(fd_.get(), POLLIN, clock_, deadline, "recv from " + peer_));
      continue;
    }
    return absl::UnavailableError(absl::StrCat("recv from ", peer_, ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

bool Socket::PeerClosed() const {
  if (!valid()) return true;
  pollfd p{fd_.get(), POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void Socket::Shutdown() {
  if (valid()) shutdown(fd_.get(), SHUT_RDWR);
}

absl::StatusOr<Listener> Listener::Listen(const std::string& bind_addr, int port, Clock* clock) {
  const std::string where = absl::StrCat(bind_addr.empty() ? "0.0.0.0" : bind_addr, ":", port);
  if (port < 0 || port > 65535) return absl::InvalidArgumentError("bad port in listen on " + where);
  ASSIGN_OR_RETURN(AddrInfoPtr ai, Resolve(bind_addr, port, /*passive=*/true));
  UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     ai->ai_protocol));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("socket: ", ErrnoText(errno)));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    return absl::UnavailableError(absl::StrCat("bind ", where, ": ", ErrnoText(errno)));
  }
  if (listen(fd.get(), 128) != 0) {
    return absl::UnavailableError(absl::StrCat("listen on ", where, ": ", ErrnoText(errno)));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname ", where, ": ", ErrnoText(errno)));
  }
  Listener l;
  l.fd_ = std::move(fd);
  l.port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  l.address_ = absl::StrCat(bind_addr.empty() ? "0.0.0.0" : bind_addr, ":", l.port_);
  l.clock_ = clock;
  return l;
}

absl::StatusOr<Socket> Listener::Accept(absl::Time deadline) {
  if (!fd_.valid()) return absl::FailedPreconditionError("accept on " + address_ + ": closed");
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    UniqueFd fd(accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) {
      std::string peer = FormatAddress(ss);
      RETURN_IF_ERROR(SetNoDelay(fd.get(), peer));
      return Socket(std::move(fd), std::move(peer), clock_);
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("accept on ", address_, ": ", ErrnoText(err)));
    }
    RETURN_IF_ERROR(WaitReady(fd_.get(), POLLIN, clock_, deadline, "accept on " + address_));
  }
}

absl::StatusOr<Socket> Connect(const std::string& host, int port, absl::Time deadline,
                               Clock* clock) {
  const std::string peer = absl::StrCat(host, ":", port);
  if (port <= 0 || port > 65535) return absl::InvalidArgumentError("bad port in " + peer);
  ASSIGN_OR_RETURN(AddrInfoPtr ai, Resolve(host, port, /*passive=*/false));
  absl::Status last = absl::UnavailableError("connect to " + peer + ": no addresses");
  for (const addrinfo* a = ai.get(); a != nullptr; a = a->ai_next) {
    absl::StatusOr<UniqueFd> fd = ConnectOne(a, clock, deadline, peer);
    if (fd.ok()) {
      RETURN_IF_ERROR(SetNoDelay(fd->get(), peer));
      return Socket(*std::move(fd), peer, clock);
    }
    last = fd.status();
    if (absl::IsDeadlineExceeded(last)) break;
  }
  return last;
}

}  // namespace tcp
}  // namespace shardlm
