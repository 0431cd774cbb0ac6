#include "server/lane/listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "asio/dispatch.hpp"
#include "asio/generic/stream_protocol.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/local/stream_protocol.hpp"
#include "asio/post.hpp"
#include "asio/write.hpp"
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
class Listener::Connection final
    : public LaneSession::Link,
      public std::enable_shared_from_this<Connection> {
 public:
  Connection(Listener& listener, Socket socket, asio::io_context& loop)
      : listener_(listener),
        socket_(std::move(socket)),
        executor_(loop.get_executor()) {}

  void Start(std::shared_ptr<LaneSession> session) {
    session_ = std::move(session);
    std::error_code ignored;
    socket_.non_blocking(true, ignored);
    asio::dispatch(executor_,
                   [self = shared_from_this()] { self->WaitRead(); });
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
    if (!writing_ && out_.empty()) Shut();
  }
  void Dispatch(std::function<void()> fn) override {
    asio::dispatch(executor_, std::move(fn));
  }
  void Post(std::function<void()> fn) override {
    asio::post(executor_, std::move(fn));
  }
  size_t pending_output() const override {
    return out_.size() + sending_.size();
  }
  void Defer(std::function<void()> fn) override {
    // Posted from the loop's own thread: it runs after the handlers that
    // are ready now, with no wakeup (EventLoop).
    asio::post(executor_, std::move(fn));
  }

  // Closes at once, from any thread (server shutdown).
  void Abort() {
    asio::dispatch(executor_, [self = shared_from_this()] { self->Shut(); });
  }

 private:
  // WaitRead reads with the reactor: Asio registers the socket once,
  // edge-triggered, and reads it when the edge comes, with no re-arming of
  // the descriptor (async_wait would re-arm it each time). Asio first
  // tries a speculative read, which finds nothing after a call served
  // alone (docs/decisions.md, "Reads go through the reactor").
  void WaitRead() {
    if (closed_ || reading_) return;
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(first_),
        [self = shared_from_this()](const std::error_code& ec, size_t n) {
          self->reading_ = false;
          if (ec) return self->Shut();  // end of stream, or reset
          self->OnRead(n);
        });
  }

  // OnRead serves the `n` bytes read into first_ and what follows them,
  // then writes the replies of the whole batch at once.
  void OnRead(size_t n) {
    in_read_ = true;
    // Feed may close the connection, dropping session_: keep it alive.
    std::shared_ptr<LaneSession> session = session_;
    session->Feed(absl::string_view(first_.data(), n));
    bool gone = false;
    if (n == first_.size()) {
      // More may wait. Drained through a buffer per thread, not per
      // connection: an idle connection costs only first_. On the heap:
      // glibc carves static TLS out of every thread's stack in the
      // process, and civetweb's (the metrics endpoint) are 100 KB, which a
      // 64 KB thread_local array overflowed under ASan.
      thread_local const std::unique_ptr<std::array<char, 64 << 10>> storage =
          std::make_unique<std::array<char, 64 << 10>>();
      std::array<char, 64 << 10>& buffer = *storage;
      for (int i = 0; i < 4 && !closed_; ++i) {
        std::error_code ec;
        const size_t more = socket_.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::would_block) break;
        if (ec) {
          gone = true;
          break;
        }
        session->Feed(absl::string_view(buffer.data(), more));
        if (more < buffer.size()) break;
      }
    }
    in_read_ = false;
    if (gone) return Shut();
    Flush();
    if (out_.size() < kMaxPendingOutput) WaitRead();
  }

  void Flush() {
    if (closed_ || writing_) return;
    if (out_.empty()) {
      if (close_after_write_) Shut();
      return;
    }
    // Most replies fit the socket buffer: try to send at once, and only
    // wait for writability with what is left.
    std::error_code ec;
    const size_t n = socket_.write_some(asio::buffer(out_), ec);
    if (ec && ec != asio::error::would_block) return Shut();
    out_.erase(0, n);
    if (out_.empty()) {
      if (close_after_write_) Shut();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    asio::async_write(
        socket_, asio::buffer(sending_),
        [self = shared_from_this()](const std::error_code& ec, size_t) {
          self->writing_ = false;
          self->sending_.clear();
          if (ec) return self->Shut();
          self->Flush();
          if (!self->writing_ && self->session_ != nullptr) {
            self->session_->OutputDrained();
          }
          self->WaitRead();
        });
  }

  void Shut() {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.clear();
    std::shared_ptr<LaneSession> session = std::move(session_);
    if (session != nullptr) session->Closed();
    listener_.Forget(this);
  }

  Listener& listener_;
  Socket socket_;
  const asio::io_context::executor_type executor_;
  std::shared_ptr<LaneSession> session_;
  // Loop-thread state.
  // first_ takes each read the reactor makes: a small call fits whole.
  std::array<char, 4096> first_;
  std::string out_;
  std::string sending_;
  bool writing_ = false;
  bool reading_ = false;
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
  asio::io_context& loop = loop_.Next();
  Socket socket(loop);
  std::error_code ec;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  socket.assign(asio::generic::stream_protocol(addr.ss_family, 0), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  if (!unix_socket) socket.set_option(asio::ip::tcp::no_delay(true), ec);
  auto connection =
      std::make_shared<Connection>(*this, std::move(socket), loop);
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
