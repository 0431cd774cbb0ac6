// File: server/server.h
//
// `Server` assembles the server: the event loop, the method table and its
// two transports (gRPC with grpc.health.v1 and reflection; the lane), the
// listeners that serve both on one address, and the timer that expires
// session leases.
//
// Example:
//
//   Engine engine(Limits{}, absl::Seconds(10));
//   absl::StatusOr<std::unique_ptr<Server>> server =
//       Server::Start(engine, {"unix:///tmp/s.sock", "127.0.0.1:0"}, options);
//   for (const std::string& a : (*server)->addresses()) std::cout << a;
//   (*server)->Shutdown();
//
// Thread safety: Start and Shutdown from one thread; addresses() anywhere.

#ifndef STATEHUB_SERVER_SERVER_H_
#define STATEHUB_SERVER_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/service_type.h"
#include "server/engine/engine.h"
#include "server/grpc/grpc_adapter.h"
#include "server/handlers/methods.h"
#include "server/lane/event_loop.h"
#include "server/lane/listener.h"
#include "server/metrics/metrics.h"

namespace statehub {

struct ServerOptions {
  // max_message_bytes bounds one message (gRPC) or frame body (lane) in
  // either direction.
  int max_message_bytes = 64 << 20;
  // expiry_interval is how often leases are checked.
  absl::Duration expiry_interval = absl::Milliseconds(100);
  // metrics, if set, counts and times every rpc (both transports) and
  // lease expiry; it must
  // outlive the server.
  metrics::Metrics* metrics = nullptr;
  // tls, if set, serves every host:port address with TLS (and, if it asks
  // for client certificates, mutual TLS). Unix sockets stay plaintext: their
  // file mode decides who may connect.
  std::shared_ptr<grpc::ServerCredentials> tls;
  // unix_socket_mode is the file mode of every Unix socket: owner only by
  // default, 0660 to let the group in.
  mode_t unix_socket_mode = 0600;
  // event_threads is how many event loops run, a thread each: the lane's
  // connections, each on one loop with its handlers inline, and every
  // parked call's timeout.
  int event_threads = 2;
  // allow_insecure_non_loopback lets the server listen on an address other
  // than loopback with neither TLS nor a token (Engine::RequireToken).
  bool allow_insecure_non_loopback = false;
};

// IsLoopback is true for host:port addresses whose host is loopback
// (localhost, 127.0.0.0/8, ::1); false for every other host, wildcards
// (0.0.0.0, [::]) included.
bool IsLoopback(absl::string_view address);

class Server {
 public:
  // Start listens on every address ("unix:///path" or "host:port"; port 0
  // picks a free one) and serves until Shutdown. A stale Unix socket file
  // nobody listens on is removed first. Errors: UNAVAILABLE naming an
  // address that could not be bound; FAILED_PRECONDITION for a non-loopback
  // address with neither TLS nor a token, unless the options allow it.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      Engine& engine, const std::vector<std::string>& listen,
      const ServerOptions& options);
  ~Server();

  // addresses lists where the server listens, with chosen ports filled in.
  const std::vector<std::string>& addresses() const { return addresses_; }

  // Shutdown stops accepting calls, cancels calls still running after
  // `grace`, stops the lease timer and removes Unix socket files. Session
  // streams and parked calls never end by themselves, so the grace is short:
  // it only lets unary calls in flight (microseconds each) finish.
  void Shutdown(absl::Duration grace = absl::Milliseconds(300));

 private:
  explicit Server(Engine& engine) : engine_(engine) {}

  Engine& engine_;
  std::unique_ptr<lane::EventLoop> loop_;
  std::unique_ptr<handlers::MethodTable> table_;
  std::unique_ptr<grpc_transport::GrpcAdapter> adapter_;
  std::unique_ptr<grpc::Service> sessions_;
  std::unique_ptr<grpc::Service> watches_;
  std::unique_ptr<lane::Listener> listener_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> addresses_;
  std::vector<std::string> socket_files_;
  absl::Notification stop_;
  std::thread expiry_;
  bool shut_down_ = false;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_SERVER_H_
