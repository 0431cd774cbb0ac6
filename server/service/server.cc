#include "server/service/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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
    if (absl::StartsWith(address, kUnixScheme)) {
      const std::string path(address.substr(kUnixScheme.size()));
      if (absl::Status s = ClearStaleSocket(path); !s.ok()) return s;
      server->socket_files_.push_back(path);
    }
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(),
                             ports.back().get());
  }

  server->services_.push_back(std::make_unique<ObjectsService>(engine));
  server->services_.push_back(std::make_unique<SessionService>(engine));
  server->services_.push_back(std::make_unique<DictService>(engine));
  server->services_.push_back(std::make_unique<ListService>(engine));
  server->services_.push_back(std::make_unique<NamespaceService>(engine));
  server->services_.push_back(std::make_unique<ValueService>(engine));
  server->services_.push_back(std::make_unique<ArrayService>(engine));
  server->services_.push_back(std::make_unique<LockService>(engine));
  server->services_.push_back(std::make_unique<ConditionService>(engine));
  server->services_.push_back(std::make_unique<SemaphoreService>(engine));
  server->services_.push_back(std::make_unique<EventService>(engine));
  server->services_.push_back(std::make_unique<BarrierService>(engine));
  server->services_.push_back(std::make_unique<QueueService>(engine));
  for (auto& service : server->services_)
    builder.RegisterService(service.get());

  server->server_ = builder.BuildAndStart();
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
  server->expiry_ = std::thread([raw, interval = options.expiry_interval] {
    while (!raw->stop_.WaitForNotificationWithTimeout(interval)) {
      for (SessionId id : raw->engine_.sessions().ExpireDue(absl::Now())) {
        SPDLOG_INFO("session {} expired: no keepalive within the lease",
                    SessionTable::FormatId(id));
      }
    }
  });
  return server;
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  stop_.Notify();
  if (expiry_.joinable()) expiry_.join();
  for (const std::string& path : socket_files_) unlink(path.c_str());
}

Server::~Server() { Shutdown(); }

}  // namespace statehub::service
