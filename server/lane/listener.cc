#include "server/lane/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "asio/generic/stream_protocol.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/local/stream_protocol.hpp"
#include "asio/post.hpp"
#include "grpcpp/server_posix.h"
#include "server/lane/lane_session.h"
#include "spdlog/spdlog.h"

namespace statehub::lane {
namespace {

using Socket = asio::generic::stream_protocol::socket;

constexpr absl::string_view kUnixScheme = "unix://";
// A connection stops reading while this much of its output waits to be
// sent: a client that does not read its replies cannot grow the server
// without bound (cf. Redis's client output buffer limit).
constexpr size_t kMaxPendingOutput = 8 << 20;
// What a lane connection's socket is watched for, besides output while a
// reply waits for room.
constexpr uint32_t kInput = EPOLLIN | EPOLLRDHUP;

}  // namespace

// One listening socket.
class Listener::Acceptor final : public std::enable_shared_from_this<Acceptor> {
 public:
  Acceptor(Listener& listener, bool unix_socket)
      : listener_(listener),
        unix_socket_(unix_socket),
        acceptor_(listener.loop_.context()) {}

  asio::basic_socket_acceptor<asio::generic::stream_protocol>& acceptor() {
    return acceptor_;
  }

  void Accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](const std::error_code& ec, Socket socket) {
          if (ec == asio::error::operation_aborted) return;
          if (!ec) self->Sniff(std::move(socket));
          // Out of file descriptors and the like: keep accepting, the
          // pending connections are the kernel's until then.
          if (ec) SPDLOG_WARN("accept failed: {}", ec.message());
          self->Accept();
        });
  }

  // Close stops accepting, from any thread: on the acceptor's loop, which
  // may be in the middle of its async_accept (an Asio socket is not
  // thread-safe; TSan saw the race when Stop closed it from another
  // thread).
  void Close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      std::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

 private:
  // Waits for the first byte and decides who serves the connection.
  void Sniff(Socket socket) {
    auto shared = std::make_shared<Socket>(std::move(socket));
    shared->async_wait(Socket::wait_read, [self = shared_from_this(),
                                           shared](const std::error_code& ec) {
      if (ec) return;
      char first = 0;
      const ssize_t n = ::recv(shared->native_handle(), &first, 1, MSG_PEEK);
      if (n <= 0) return;  // closed before saying anything
      const int fd = ::dup(shared->native_handle());
      std::error_code ignored;
      shared->close(ignored);
      if (fd < 0) return;
      if (first == 'P') {
        // HTTP/2's preface: gRPC's.
        self->listener_.HandToGrpc(fd);
        return;
      }
      self->listener_.Adopt(fd, self->unix_socket_);
    });
  }

  Listener& listener_;
  const bool unix_socket_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
};

// One lane connection: the socket, its output, and the LaneSession that
// speaks the protocol on it. All of it lives on one of the event loops
// (EventLoop::Next) and is touched only on that loop's thread, the
// LaneSession's serial context.
//
// The socket is registered with the loop's epoll once, edge-triggered for
// input and output. A read that returns less than its buffer has drained
// the socket, so the next edge is waited for with no further read: a call
// that arrives alone costs the wait, one read and one write
// (docs/decisions.md, "Reads go through the loop's own epoll").
class Listener::Connection final
    : public LaneSession::Link,
      public EventLoop::Watcher,
      public std::enable_shared_from_this<Connection> {
 public:
  Connection(Listener& listener, int fd, EventLoop::Loop& loop)
      : listener_(listener), fd_(fd), loop_(loop) {}
  ~Connection() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Start registers the socket, on the loop's thread.
  void Start(std::shared_ptr<LaneSession> session) {
    session_ = std::move(session);
    loop_.Post([self = shared_from_this()] {
      if (self->closed_) return;
      if (!self->loop_.Watch(self->fd_, kInput, self.get())) {
        SPDLOG_WARN("lane: cannot watch a connection: {}",
                    std::strerror(errno));
        return self->Shut();
      }
      self->watched_ = true;
      // Whatever came before the registration.
      self->Read();
    });
  }

  // EventLoop::Watcher:
  void OnEvents(uint32_t events) override {
    if (closed_) return;
    if ((events & EPOLLOUT) != 0 && waiting_writable_) {
      waiting_writable_ = false;
      if (!loop_.Rewatch(fd_, kInput, this)) return Shut();
      Flush(/*after_wait=*/true);
      if (closed_) return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) Read();
  }

  // LaneSession::Link:
  void Write(std::string bytes) override {
    if (closed_) return;
    if (out_.empty()) {
      out_ = std::move(bytes);
    } else {
      out_.append(bytes);
    }
    if (!in_read_) Flush();
  }
  void Close() override {
    close_after_write_ = true;
    if (pending_output() == 0) Shut();
  }
  void Dispatch(std::function<void()> fn) override {
    if (loop_.RunsHere()) return fn();
    loop_.Post(std::move(fn));
  }
  void Post(std::function<void()> fn) override { loop_.Post(std::move(fn)); }
  size_t pending_output() const override { return out_.size() - sent_; }
  void Defer(std::function<void()> fn) override {
    // From the loop's own thread: it runs after the handlers of the other
    // connections ready now, before the loop waits again (EventLoop).
    loop_.Defer(std::move(fn));
  }

  // Closes at once, from any thread (server shutdown).
  void Abort() {
    Dispatch([self = shared_from_this()] { self->Shut(); });
  }

 private:
  // Read serves what the socket holds, then writes the replies of the
  // whole batch at once.
  void Read() {
    if (closed_) return;
    if (pending_output() >= kMaxPendingOutput) {
      // Stopped while the client does not read its replies; Flush reads
      // again once they are sent.
      read_paused_ = true;
      return;
    }
    read_paused_ = false;
    // Feed may close the connection, dropping session_: keep it alive.
    std::shared_ptr<LaneSession> session = session_;
    in_read_ = true;
    bool gone = false;
    bool more = false;
    const ssize_t n = ::recv(fd_, first_.data(), first_.size(), 0);
    if (n > 0) {
      session->Feed(absl::string_view(first_.data(), n));
      if (static_cast<size_t>(n) == first_.size()) more = true;
    } else if (n == 0 ||
               (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      gone = true;  // end of stream, or reset
    } else if (errno == EINTR) {
      more = true;
    }
    if (more && !closed_) {
      // More may wait. Drained through a buffer per thread, not per
      // connection: an idle connection costs only first_. On the heap:
      // glibc carves static TLS out of every thread's stack in the
      // process, and civetweb's (the metrics endpoint) are 100 KB, which a
      // 64 KB thread_local array overflowed under ASan.
      thread_local const std::unique_ptr<std::array<char, 64 << 10>> storage =
          std::make_unique<std::array<char, 64 << 10>>();
      std::array<char, 64 << 10>& buffer = *storage;
      more = false;
      for (int i = 0; i < 4 && !closed_; ++i) {
        const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          gone = true;
          break;
        }
        session->Feed(absl::string_view(buffer.data(), got));
        if (static_cast<size_t>(got) < buffer.size()) break;
        more = i == 3;
      }
    }
    in_read_ = false;
    if (gone) return Shut();
    Flush();
    // Still unread after a long batch: the next pass reads on, after the
    // other connections had theirs (no edge comes for bytes already there).
    if (more && !closed_)
      loop_.Post([self = shared_from_this()] { self->Read(); });
  }

  // Flush sends what was written; `after_wait`: the socket had been full,
  // and the session hears when it is not any more.
  void Flush(bool after_wait = false) {
    if (closed_ || waiting_writable_) return;
    while (sent_ < out_.size()) {
      const ssize_t n = ::send(fd_, out_.data() + sent_, out_.size() - sent_,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // The socket's buffer is full: the output edge goes on. Output
          // is watched for only meanwhile, or every reply the client read
          // would wake the loop once more.
          waiting_writable_ = true;
          if (!loop_.Rewatch(fd_, kInput | EPOLLOUT, this)) return Shut();
          return;
        }
        return Shut();
      }
      sent_ += static_cast<size_t>(n);
    }
    out_.clear();
    sent_ = 0;
    if (close_after_write_) return Shut();
    if (after_wait && session_ != nullptr) session_->OutputDrained();
    if (read_paused_ && !closed_) Read();
  }

  void Shut() {
    if (closed_) return;
    closed_ = true;
    if (watched_) loop_.Unwatch(fd_);
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    fd_ = -1;
    out_.clear();
    sent_ = 0;
    // The loop may hold this connection's events of the same wait: it
    // stays alive until the pass ends.
    loop_.Defer([keep = shared_from_this()] {});
    std::shared_ptr<LaneSession> session = std::move(session_);
    if (session != nullptr) session->Closed();
    listener_.Forget(this);
  }

  Listener& listener_;
  int fd_;  // -1 once shut
  EventLoop::Loop& loop_;
  std::shared_ptr<LaneSession> session_;
  // Loop-thread state.
  // first_ takes each read: a small call fits whole.
  std::array<char, 4096> first_;
  std::string out_;
  size_t sent_ = 0;  // of out_
  bool watched_ = false;
  bool waiting_writable_ = false;
  bool read_paused_ = false;
  bool in_read_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

Listener::Listener(EventLoop& loop, Engine& engine,
                   const handlers::MethodTable& table,
                   handlers::RpcObserver* observer, ListenerOptions options)
    : loop_(loop),
      engine_(engine),
      table_(table),
      observer_(observer),
      options_(options) {}

Listener::~Listener() { Stop(); }

absl::StatusOr<std::string> Listener::Listen(const std::string& address) {
  const bool unix_socket = absl::StartsWith(address, kUnixScheme);
  auto acceptor = std::make_shared<Acceptor>(*this, unix_socket);
  std::error_code ec;
  asio::generic::stream_protocol::endpoint endpoint;
  if (unix_socket) {
    endpoint = asio::local::stream_protocol::endpoint(
        address.substr(kUnixScheme.size()));
  } else {
    absl::string_view rest = address;
    const size_t colon = rest.rfind(':');
    absl::string_view host = rest.substr(0, colon);
    uint32_t port = 0;
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s is not host:port", address));
    }
    if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
    asio::ip::tcp::resolver resolver(loop_.context());
    auto results = resolver.resolve(std::string(host), std::to_string(port),
                                    asio::ip::tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return absl::UnavailableError(
          absl::StrFormat("could not resolve %s: %s", address, ec.message()));
    }
    endpoint = results.begin()->endpoint();
  }
  auto& a = acceptor->acceptor();
  a.open(endpoint.protocol(), ec);
  if (!ec && !unix_socket) {
    a.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    // Created with the mode it keeps (umask) rather than chmod-ed after
    // bind, so there is no moment when others may connect.
    const mode_t old_umask =
        unix_socket ? umask(~options_.unix_socket_mode & 0777) : 0;
    a.bind(endpoint, ec);
    if (unix_socket) umask(old_umask);
  }
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("could not listen on %s: %s", address, ec.message()));
  }
  acceptors_.push_back(acceptor);
  if (unix_socket) return address;
  const auto local = a.local_endpoint(ec);
  const auto* sa = reinterpret_cast<const sockaddr*>(local.data());
  uint16_t bound = 0;
  if (sa->sa_family == AF_INET) {
    bound = ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    bound = ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  }
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", bound);
}

void Listener::Serve(grpc::Server* grpc_server) {
  grpc_server_ = grpc_server;
  for (auto& acceptor : acceptors_) acceptor->Accept();
}

void Listener::HandToGrpc(int fd) {
  // Under the lock, so that Stop (before gRPC shuts down) waits for a
  // hand-off in progress and no hand-off follows it.
  MutexLock lock(&mu_);
  if (stopped_) {
    ::close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(grpc_server_, fd);  // takes the descriptor
}

void Listener::Adopt(int fd, bool unix_socket) {
  EventLoop::Loop& loop = loop_.Next();
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    ::close(fd);
    return;
  }
  if (!unix_socket) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  auto connection = std::make_shared<Connection>(*this, fd, loop);
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    connections_.emplace(connection.get(), connection);
  }
  LaneSession::Options options;
  options.max_message_bytes = options_.max_message_bytes;
  options.unix_socket = unix_socket;
  connection->Start(std::make_shared<LaneSession>(
      engine_, table_, loop_, observer_, options, connection));
}

void Listener::Forget(Connection* connection) {
  std::shared_ptr<Connection> last;
  MutexLock lock(&mu_);
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  // Destroyed after the lock is dropped, with the caller's reference.
  last = std::move(it->second);
  connections_.erase(it);
}

void Listener::Stop() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    for (const auto& [raw, connection] : connections_)
      open.push_back(connection);
  }
  for (auto& acceptor : acceptors_) acceptor->Close();
  for (auto& connection : open) connection->Abort();
}

size_t Listener::lane_connections() const {
  MutexLock lock(&mu_);
  return connections_.size();
}

}  // namespace statehub::lane
