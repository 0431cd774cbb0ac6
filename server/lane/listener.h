// File: server/lane/listener.h
//
// `Listener` owns the server's plaintext listening sockets (every Unix
// socket, and every host:port without TLS) on the event loop. It reads the
// first byte of each connection: HTTP/2's preface starts with 'P', and such
// a connection is handed to gRPC (grpc::AddInsecureChannelFromFd); any
// other is a lane connection, served by a LaneSession. So one address
// serves both, and a client needs nothing but the usual address
// (docs/decisions.md, "One address for gRPC and the lane").
//
// Example:
//
//   Listener listener(loop, engine, table, &metrics, options);
//   absl::StatusOr<std::string> bound = listener.Listen("127.0.0.1:0");
//   listener.Serve(grpc_server);
//   ...
//   listener.Stop();   // before the loop stops
//
// Thread safety: Listen, Serve and Stop from one thread.

#ifndef STATEHUB_SERVER_LANE_LISTENER_H_
#define STATEHUB_SERVER_LANE_LISTENER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/engine.h"
#include "server/engine/mutex.h"
#include "server/handlers/methods.h"
#include "server/lane/event_loop.h"

namespace statehub::lane {

struct ListenerOptions {
  uint32_t max_message_bytes = 64 << 20;
  // unix_socket_mode is the file mode of every Unix socket.
  mode_t unix_socket_mode = 0600;
};

class Listener {
 public:
  Listener(EventLoop& loop, Engine& engine, const handlers::MethodTable& table,
           handlers::RpcObserver* observer, ListenerOptions options);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // Listen binds `address` ("unix:///path" or "host:port"; port 0 picks a
  // free one) and returns it with the chosen port. A Unix socket is created
  // with the options' mode from the start (no window with a wider one).
  // Errors: UNAVAILABLE naming the address.
  absl::StatusOr<std::string> Listen(const std::string& address);

  // Serve starts accepting on every bound address; gRPC connections go to
  // `grpc_server`, which must outlive the listener's Stop.
  void Serve(grpc::Server* grpc_server);

  // Stop closes the listening sockets and every lane connection (their
  // parked calls are withdrawn). Call while the loop still runs.
  void Stop();

  // lane_connections counts the lane connections open now.
  size_t lane_connections() const;

 private:
  class Acceptor;
  class Connection;

  void Adopt(int fd, bool unix_socket);
  void HandToGrpc(int fd);
  void Forget(Connection* connection);

  EventLoop& loop_;
  Engine& engine_;
  const handlers::MethodTable& table_;
  handlers::RpcObserver* const observer_;
  const ListenerOptions options_;
  grpc::Server* grpc_server_ = nullptr;
  std::vector<std::shared_ptr<Acceptor>> acceptors_;

  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub::lane

#endif  // STATEHUB_SERVER_LANE_LISTENER_H_
