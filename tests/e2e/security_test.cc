// Auth, TLS, the Unix socket's mode, the non-loopback refusal and the
// session limits, against the real server with certificates openssl makes
// for the test (tests/testing/make_certs.sh).

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/change.pb.h"
#include "statehub/v1/dict.grpc.pb.h"
#include "statehub/v1/watch.pb.h"
#include "tests/testing/server_process.h"
#include "tests/testing/shell.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kToken[] = "s3cret-token-for-the-tests";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// A temporary directory with the test certificates and a token file.
class Secrets {
 public:
  Secrets() {
    char pattern[] = "/tmp/statehub-certs-XXXXXX";
    dir_ = mkdtemp(pattern);
    const std::string command =
        absl::StrCat(STATEHUB_MAKE_CERTS, " ", dir_.string());
    made_ = std::system(command.c_str()) == 0;
    std::ofstream(dir_ / "token") << "  " << kToken << "\n";
  }
  ~Secrets() { fs::remove_all(dir_); }

  bool made() const { return made_; }
  std::string path(absl::string_view name) const {
    return (dir_ / std::string(name)).string();
  }
  std::string pem(absl::string_view name) const {
    return ReadFile(dir_ / std::string(name));
  }

 private:
  fs::path dir_;
  bool made_ = false;
};

std::unique_ptr<testing::ServerProcess> StartServer(
    std::vector<std::string> flags) {
  auto server = testing::ServerProcess::Start(std::move(flags));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Connect options that fail fast: a refused handshake shows as a timeout.
ClientOptions Quick() {
  ClientOptions options = testing::TestOptions();
  options.connect_timeout = absl::Seconds(3);
  return options;
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    secrets_ = new Secrets();
    ASSERT_TRUE(secrets_->made()) << "tests/testing/make_certs.sh failed";
  }
  static void TearDownTestSuite() { delete secrets_; }

  static Secrets* secrets_;
};
Secrets* SecurityTest::secrets_ = nullptr;

// --- the token --------------------------------------------------------------

TEST_F(SecurityTest, TheRightTokenIsLetInAndNoTokenOrAWrongOneIsNot) {
  auto server = StartServer({"--auth_token_file=" + secrets_->path("token")});
  ASSERT_NE(server, nullptr);

  ClientOptions with_token = Quick();
  with_token.token = kToken;
  auto client = Client::Connect(server->unix_address(), with_token);
  ASSERT_TRUE(client.ok()) << client.status();
  auto jobs = (*client)->OpenDict("jobs");
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_TRUE(jobs->Set("a", 1).ok());
  EXPECT_EQ(jobs->Get("a")->AsInt(), 1);
  auto anonymous = (*client)->OpenDict("");  // needs the session
  EXPECT_TRUE(anonymous.ok()) << anonymous.status();

  for (const std::string& token : {std::string(), std::string("wrong")}) {
    ClientOptions options = Quick();
    options.token = token;
    auto refused = Client::Connect(server->unix_address(), options);
    ASSERT_FALSE(refused.ok()) << "token '" << token << "' was let in";
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(GetErrorKind(refused.status()), ErrorKind::kUnauthenticated);
    EXPECT_THAT(refused.status().message(),
                HasSubstr(token.empty() ? "requires a token" : "wrong token"));

    // Without a session the calls themselves are refused too.
    options.open_session = false;
    auto sessionless = Client::Connect(server->unix_address(), options);
    ASSERT_TRUE(sessionless.ok());
    auto opened = (*sessionless)->OpenDict("jobs");
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated);
  }
  EXPECT_TRUE(server->Stop().ok());
}

// Runs statehub-cli with `args` (and `env`, shell assignments); its exit
// status and output.
std::pair<int, std::string> RunCli(const std::string& args,
                                   const std::string& env = "") {
  int status;
  std::string out = testing::Shell(
      absl::StrCat(env, " ", STATEHUB_CLI_PATH, " ", args), &status);
  return {status, std::move(out)};
}

TEST_F(SecurityTest, TheCliSendsTheTokenFromAFileOrTheEnvironment) {
  auto server = StartServer({"--auth_token_file=" + secrets_->path("token")});
  ASSERT_NE(server, nullptr);
  ClientOptions options = Quick();
  options.token = kToken;
  auto client = Client::Connect(server->unix_address(), options);
  ASSERT_TRUE(client.ok() && (*client)->OpenDict("visible").ok());

  const std::string address = "--address=" + server->unix_address();
  auto [refused, why] = RunCli(address + " ls");
  EXPECT_EQ(refused, 1);
  EXPECT_THAT(why, HasSubstr("requires a token"));
  auto [from_file, listing] =
      RunCli(address + " --token_file=" + secrets_->path("token") + " ls");
  EXPECT_EQ(from_file, 0) << listing;
  EXPECT_THAT(listing, HasSubstr("visible"));
  auto [from_env, again] =
      RunCli(address + " ls", absl::StrCat("STATEHUB_TOKEN=", kToken));
  EXPECT_EQ(from_env, 0) << again;
  EXPECT_THAT(again, HasSubstr("visible"));
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, EveryStatehubMethodRefusesACallWithoutTheToken) {
  auto server = StartServer({"--auth_token_file=" + secrets_->path("token")});
  ASSERT_NE(server, nullptr);
  auto channel = grpc::CreateChannel(server->unix_address(),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);

  // Every service of every file in api/statehub/v1, so a new one is covered
  // the day it is added. change.proto has no service and nothing else here
  // uses it, nor (yet) watch.proto: name them, so that the linker keeps
  // their descriptors.
  ASSERT_NE(v1::ChangeRecord::descriptor(), nullptr);
  ASSERT_NE(v1::WatchRequest::descriptor(), nullptr);
  int methods = 0;
  for (const auto& entry : fs::directory_iterator(STATEHUB_API_DIR)) {
    const std::string file =
        absl::StrCat("statehub/v1/", entry.path().filename().string());
    const google::protobuf::FileDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
            file);
    ASSERT_NE(descriptor, nullptr) << file << " is not linked in";
    for (int s = 0; s < descriptor->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service =
          descriptor->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const std::string path = absl::StrCat("/", service->full_name(), "/",
                                              service->method(m)->name());
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        ctx.AddMetadata(internal::kAuthorizationKey, "Bearer wrong");
        grpc::Slice empty;  // an empty message parses as any type
        grpc::ByteBuffer request(&empty, 1);
        grpc::ByteBuffer response;
        absl::Notification done;
        grpc::Status status;
        stub.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response,
                       [&](grpc::Status s) {
                         status = std::move(s);
                         done.Notify();
                       });
        done.WaitForNotification();
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << path << ": " << status.error_message();
        ++methods;
      }
    }
  }
  EXPECT_GT(methods, 50) << "the api directory looks empty";
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, HealthStaysOpenWithoutTheToken) {
  auto server = StartServer({"--auth_token_file=" + secrets_->path("token")});
  ASSERT_NE(server, nullptr);
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      server->tcp_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, AnEmptyTokenFileIsRefusedAtStart) {
  std::ofstream(secrets_->path("empty-token")) << "\n";
  auto server = testing::ServerProcess::Start(
      {"--auth_token_file=" + secrets_->path("empty-token")});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("exited with status 2"));
}

// --- TLS --------------------------------------------------------------------

TEST_F(SecurityTest, TlsServesClientsThatTrustItsCa) {
  auto server = StartServer({"--tls_cert=" + secrets_->path("server.pem"),
                             "--tls_key=" + secrets_->path("server.key")});
  ASSERT_NE(server, nullptr);

  ClientOptions trusting = Quick();
  trusting.tls = ClientOptions::TlsOptions{secrets_->pem("ca.pem")};
  auto client = Client::Connect(server->tcp_address(), trusting);
  ASSERT_TRUE(client.ok()) << client.status();
  auto d = (*client)->OpenDict("over-tls");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->Set("k", "v").ok());

  // A client that trusts another CA does not complete the handshake.
  ClientOptions other = Quick();
  other.tls = ClientOptions::TlsOptions{secrets_->pem("other-ca.pem")};
  EXPECT_EQ(Client::Connect(server->tcp_address(), other).status().code(),
            absl::StatusCode::kUnavailable);
  // Nor does a plaintext one.
  EXPECT_EQ(Client::Connect(server->tcp_address(), Quick()).status().code(),
            absl::StatusCode::kUnavailable);
  // The Unix socket stays plaintext: its file mode guards it.
  auto local = Client::Connect(server->unix_address(), Quick());
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->OpenDict("over-tls")->Get("k")->AsString(), "v");
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  auto server = StartServer({"--tls_cert=" + secrets_->path("server.pem"),
                             "--tls_key=" + secrets_->path("server.key"),
                             "--tls_client_ca=" + secrets_->path("ca.pem")});
  ASSERT_NE(server, nullptr);

  ClientOptions with_cert = Quick();
  with_cert.tls = ClientOptions::TlsOptions{secrets_->pem("ca.pem"),
                                            secrets_->pem("client.pem"),
                                            secrets_->pem("client.key")};
  auto client = Client::Connect(server->tcp_address(), with_cert);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->OpenDict("mtls").ok());

  ClientOptions without_cert = Quick();
  without_cert.tls = ClientOptions::TlsOptions{secrets_->pem("ca.pem")};
  EXPECT_FALSE(Client::Connect(server->tcp_address(), without_cert).ok());

  ClientOptions foreign_cert = Quick();
  foreign_cert.tls = ClientOptions::TlsOptions{
      secrets_->pem("ca.pem"), secrets_->pem("other-client.pem"),
      secrets_->pem("other-client.key")};
  EXPECT_FALSE(Client::Connect(server->tcp_address(), foreign_cert).ok());
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, TlsFlagsMustComeTogether) {
  auto server = testing::ServerProcess::Start(
      {"--tls_cert=" + secrets_->path("server.pem")});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("exited with status 2"));
}

// --- where it listens -------------------------------------------------------

mode_t SocketMode(const std::string& unix_address) {
  struct stat st {};
  const std::string path = unix_address.substr(std::string("unix://").size());
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST_F(SecurityTest, TheUnixSocketIsOwnerOnlyUnlessGroupAccessIsAskedFor) {
  auto server = StartServer({});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(SocketMode(server->unix_address()), 0600u);
  EXPECT_TRUE(server->Stop().ok());

  auto shared = StartServer({"--unix_socket_group_access"});
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(SocketMode(shared->unix_address()), 0660u);
  EXPECT_TRUE(shared->Stop().ok());
}

TEST_F(SecurityTest, NonLoopbackWithoutTlsOrTokenIsRefusedUnlessAllowed) {
  auto refused = testing::ServerProcess::Start({"--listen=0.0.0.0:0"});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("exited with status 1"));

  // ServerProcess wants a Unix socket to talk to.
  const std::string listen =
      absl::StrCat("--listen=unix://", secrets_->path("s.sock"), ",");
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{listen + "0.0.0.0:0",
                                 "--allow_insecure_non_loopback"},
        std::vector<std::string>{
            listen + "0.0.0.0:0",
            "--auth_token_file=" + secrets_->path("token")},
        std::vector<std::string>{listen + "0.0.0.0:0",
                                 "--tls_cert=" + secrets_->path("server.pem"),
                                 "--tls_key=" + secrets_->path("server.key")},
        std::vector<std::string>{listen + "localhost:0"}}) {
    auto server = StartServer(flags);
    ASSERT_NE(server, nullptr) << flags.back();
    EXPECT_TRUE(server->Stop().ok());
  }
}

// --- session limits ---------------------------------------------------------

TEST_F(SecurityTest, OneSessionTooManyIsRefusedNamingTheLimit) {
  auto server = StartServer({"--max_sessions=2"});
  ASSERT_NE(server, nullptr);
  auto first = Client::Connect(server->unix_address(), Quick());
  auto second = Client::Connect(server->unix_address(), Quick());
  ASSERT_TRUE(first.ok() && second.ok());

  auto third = Client::Connect(server->unix_address(), Quick());
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorLimit(third.status()), "max_sessions");
  EXPECT_THAT(third.status().message(), HasSubstr("--max_sessions=2"));

  // A session that ends makes room; the others never noticed.
  (*first)->Close();
  EXPECT_TRUE(Client::Connect(server->unix_address(), Quick()).ok());
  EXPECT_TRUE((*second)->OpenDict("still-here").ok());
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, OneBlockingCallTooManyInASessionIsRefused) {
  auto server = StartServer({"--max_waiters_per_session=2"});
  ASSERT_NE(server, nullptr);
  auto holder = Client::Connect(server->unix_address(), Quick());
  auto waiter = Client::Connect(server->unix_address(), Quick());
  ASSERT_TRUE(holder.ok() && waiter.ok());
  auto held = (*holder)->OpenLock("busy");
  ASSERT_TRUE(held.ok() && held->Acquire()->acquired);

  auto lock = (*waiter)->OpenLock("busy");
  ASSERT_TRUE(lock.ok());
  std::vector<std::thread> parked;
  for (int i = 0; i < 2; ++i) {
    parked.emplace_back([&] { (void)lock->Acquire(absl::Seconds(30)); });
  }
  // Both parked (the lock's state lists them) before the one too many.
  for (int i = 0; i < 200 && held->State()->waiters.size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(held->State()->waiters.size(), 2u);

  auto refused = lock->Acquire(absl::Seconds(30));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorLimit(refused.status()), "max_waiters_per_session");
  // Another session is counted on its own.
  auto other = (*holder)->OpenLock("busy");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->Acquire(absl::Milliseconds(10))->acquired);

  ASSERT_TRUE(held->Release().ok());  // one parked acquire gets it
  ASSERT_TRUE(lock->Release().ok());  // and the next one
  for (std::thread& t : parked) t.join();
  ASSERT_TRUE(lock->Release().ok());
  // The counted calls finished, so there is room again.
  EXPECT_TRUE(lock->Acquire(absl::Seconds(5))->acquired);
  EXPECT_TRUE(server->Stop().ok());
}

TEST_F(SecurityTest, AMessageOverTheServersLimitNamesTheLimit) {
  auto server = StartServer({"--max_message_bytes=4096"});
  ASSERT_NE(server, nullptr);
  auto client = Client::Connect(server->unix_address(), Quick());
  ASSERT_TRUE(client.ok());
  auto d = (*client)->OpenDict("big");
  ASSERT_TRUE(d.ok());
  const absl::Status s = d->Set("k", std::string(10'000, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kLimitExceeded);
  EXPECT_EQ(GetErrorLimit(s), "max_message_bytes");
  EXPECT_THAT(s.message(), HasSubstr("--max_message_bytes"));
  EXPECT_TRUE(d->Set("k", "small").ok()) << "the server goes on serving";
  EXPECT_TRUE(server->Stop().ok());
}

}  // namespace
}  // namespace statehub
