#include "server/service/server.h"

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
#include "server/service/cell_service.h"
#include "server/service/dict_service.h"
#include "server/service/list_service.h"
#include "server/service/lock_service.h"
#include "server/service/namespace_service.h"
#include "server/service/objects_service.h"
#include "server/service/queue_service.h"
#include "server/service/session_service.h"
#include "server/service/sync_service.h"
#include "spdlog/spdlog.h"

namespace statehub::service {
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

  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& address : listen) {
    const bool unix_socket = absl::StartsWith(address, kUnixScheme);
    if (unix_socket) {
      const std::string path(address.substr(kUnixScheme.size()));
      if (absl::Status s = ClearStaleSocket(path); !s.ok()) return s;
      server->socket_files_.push_back(path);
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
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address,
                             unix_socket || options.tls == nullptr
                                 ? grpc::InsecureServerCredentials()
                                 : options.tls,
                             ports.back().get());
  }

  server->Add<ObjectsService, v1::Objects>();
  server->Add<SessionService, v1::Sessions>();
  server->Add<DictService, v1::Dicts>();
  server->Add<ListService, v1::Lists>();
  server->Add<NamespaceService, v1::Namespaces>();
  server->Add<ValueService, v1::Values>();
  server->Add<ArrayService, v1::Arrays>();
  server->Add<LockService, v1::Locks>();
  server->Add<ConditionService, v1::Conditions>();
  server->Add<SemaphoreService, v1::Semaphores>();
  server->Add<EventService, v1::Events>();
  server->Add<BarrierService, v1::Barriers>();
  server->Add<QueueService, v1::Queues>();
  if (options.metrics != nullptr) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(
        options.metrics->Interceptors(server->service_names_));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  for (auto& service : server->services_)
    builder.RegisterService(service.get());

  // The sockets are created with the mode they keep (umask) rather than
  // chmod-ed after bind, so there is no moment when others may connect.
  const mode_t old_umask = umask(~options.unix_socket_mode & 0777);
  server->server_ = builder.BuildAndStart();
  umask(old_umask);
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrFormat(
        "could not listen on %s (address in use, bad address, or no "
        "permission)",
        absl::StrJoin(listen, ", ")));
  }
  for (size_t i = 0; i < listen.size(); ++i) {
    const std::string& address = listen[i];
    if (*ports[i] == 0) {
      return absl::UnavailableError(
          absl::StrFormat("could not listen on %s", address));
    }
    if (absl::StartsWith(address, kUnixScheme)) {
      server->addresses_.push_back(address);
    } else {
      const size_t colon = address.rfind(':');
      server->addresses_.push_back(
          absl::StrCat(address.substr(0, colon), ":", *ports[i]));
    }
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);

  Server* raw = server.get();
  server->expiry_ = std::thread(
      [raw, interval = options.expiry_interval, metrics = options.metrics] {
        while (!raw->stop_.WaitForNotificationWithTimeout(interval)) {
          const std::vector<SessionId> expired =
              raw->engine_.sessions().ExpireDue(absl::Now());
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
  // A Start that failed before building the server has nothing to stop.
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  stop_.Notify();
  if (expiry_.joinable()) expiry_.join();
  for (const std::string& path : socket_files_) unlink(path.c_str());
}

Server::~Server() { Shutdown(); }

template <typename S, typename G>
void Server::Add() {
  services_.push_back(std::make_unique<S>(engine_));
  service_names_.push_back(G::service_full_name());
}

}  // namespace statehub::service
