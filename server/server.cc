#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/grpc/session_service.h"
#include "server/grpc/watch_service.h"
#include "spdlog/spdlog.h"

namespace statehub {
namespace {

constexpr absl::string_view kUnixScheme = "unix://";

// Removes a Unix socket file left by a server that is gone; refuses to touch
// one that a live server answers on, or anything that is not a socket.
absl::Status ClearStaleSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s exists and is not a socket", path));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("socket path %s is too long", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  const bool live = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr),
                                       sizeof(addr)) == 0;
  if (fd >= 0) close(fd);
  if (live) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "another server is listening on %s; stop it or pick another path",
        path));
  }
  unlink(path.c_str());
  return absl::OkStatus();
}

}  // namespace

bool IsLoopback(absl::string_view address) {
  absl::string_view host = address.substr(0, address.rfind(':'));
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4;
  const std::string text(host);
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  return inet_pton(AF_INET6, text.c_str(), &v6) == 1 &&
         IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    Engine& engine, const std::vector<std::string>& listen,
    const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(engine));
  for (const std::string& address : listen) {
    if (absl::StartsWith(address, kUnixScheme)) {
      const std::string path(address.substr(kUnixScheme.size()));
      if (absl::Status s = ClearStaleSocket(path); !s.ok()) return s;
    } else if (!IsLoopback(address) && options.tls == nullptr &&
               !engine.requires_token() &&
               !options.allow_insecure_non_loopback) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "refusing to serve %s without TLS or a token: anyone who can "
          "reach it could read and change every object. Give "
          "--tls_cert/--tls_key or --auth_token_file, listen on loopback, or "
          "pass --allow_insecure_non_loopback if the network is trusted",
          address));
    }
  }

  server->loop_ = std::make_unique<lane::EventLoop>(options.event_threads);
  server->table_ = std::make_unique<handlers::MethodTable>(engine);
  handlers::RpcObserver* observer = options.metrics;
  if (options.metrics != nullptr) {
    std::vector<std::string> names;
    for (const handlers::Method& m : server->table_->methods()) {
      names.push_back(m.full_name);
    }
    options.metrics->ObserveMethods(names);
  }
  server->adapter_ = std::make_unique<grpc_transport::GrpcAdapter>(
      engine, *server->table_, *server->loop_, observer);
  server->sessions_ = std::make_unique<grpc_transport::SessionService>(engine);
  server->watches_ = std::make_unique<grpc_transport::WatchService>(
      engine, [loop = server->loop_.get()](std::function<void()> fn) {
        loop->Next().Post(std::move(fn));
      });
  lane::ListenerOptions listener_options;
  listener_options.max_message_bytes =
      static_cast<uint32_t>(options.max_message_bytes);
  listener_options.unix_socket_mode = options.unix_socket_mode;
  server->listener_ = std::make_unique<lane::Listener>(
      *server->loop_, engine, *server->table_, observer, listener_options);

  // Referencing the health descriptor links its registration in, so
  // reflection can describe grpc.health.v1.Health (see api/grpc/health).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Clients ping every 30 s even when idle (clients/cpp and
  // clients/python use the same figure); allow it so the server does not
  // answer with GOAWAY "too_many_pings".
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);

  // Plaintext addresses are the listener's, which hands gRPC the
  // connections that speak HTTP/2; TLS addresses are gRPC's own (no lane).
  std::vector<std::unique_ptr<int>> tls_ports(listen.size());
  std::vector<std::string> bound(listen.size());
  for (size_t i = 0; i < listen.size(); ++i) {
    const std::string& address = listen[i];
    const bool unix_socket = absl::StartsWith(address, kUnixScheme);
    if (unix_socket || options.tls == nullptr) {
      absl::StatusOr<std::string> at = server->listener_->Listen(address);
      if (!at.ok()) return at.status();
      bound[i] = *at;
      if (unix_socket) {
        server->socket_files_.push_back(
            std::string(address.substr(kUnixScheme.size())));
      }
      continue;
    }
    tls_ports[i] = std::make_unique<int>(0);
    builder.AddListeningPort(address, options.tls, tls_ports[i].get());
  }

  for (grpc::Service* service : server->adapter_->services()) {
    builder.RegisterService(service);
  }
  builder.RegisterService(server->sessions_.get());
  builder.RegisterService(server->watches_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrFormat(
        "could not start gRPC on %s (address in use, bad address, or no "
        "permission)",
        absl::StrJoin(listen, ", ")));
  }
  for (size_t i = 0; i < listen.size(); ++i) {
    if (tls_ports[i] == nullptr) {
      server->addresses_.push_back(bound[i]);
      continue;
    }
    if (*tls_ports[i] == 0) {
      return absl::UnavailableError(
          absl::StrFormat("could not listen on %s", listen[i]));
    }
    const size_t colon = listen[i].rfind(':');
    server->addresses_.push_back(
        absl::StrCat(listen[i].substr(0, colon), ":", *tls_ports[i]));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  server->listener_->Serve(server->server_.get());

  Server* raw = server.get();
  server->expiry_ = std::thread(
      [raw, interval = options.expiry_interval, metrics = options.metrics] {
        while (!raw->stop_.WaitForNotificationWithTimeout(interval)) {
          const absl::Time now = absl::Now();
          raw->engine_.watches().Tick(now);
          const std::vector<SessionId> expired =
              raw->engine_.sessions().ExpireDue(now);
          for (SessionId id : expired) {
            SPDLOG_INFO("session {} expired: no keepalive within the lease",
                        SessionTable::FormatId(id));
          }
          if (metrics != nullptr && !expired.empty()) {
            metrics->LeaseExpired(static_cast<int64_t>(expired.size()));
          }
        }
      });
  return server;
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (listener_ != nullptr) listener_->Stop();
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  // The lane's connections close on the loop; let it finish them (each
  // withdraws its parked calls) before it stops.
  const absl::Time deadline = absl::Now() + grace + absl::Seconds(1);
  while (listener_ != nullptr && listener_->lane_connections() > 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  stop_.Notify();
  if (expiry_.joinable()) expiry_.join();
  if (loop_ != nullptr) loop_->Stop();
  listener_.reset();
  for (const std::string& path : socket_files_) unlink(path.c_str());
}

Server::~Server() { Shutdown(); }

}  // namespace statehub
