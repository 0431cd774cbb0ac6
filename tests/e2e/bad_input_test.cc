// Bad input against the real server: each gets the status and error kind of
// shared/DESIGN.md and a message naming the object; the object is unchanged
// and the server keeps serving.

#include <signal.h>

#include <cmath>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/dict.grpc.pb.h"
#include "statehub/v1/list.grpc.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "tests/e2e/child_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

using ::testing::HasSubstr;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = testing::ServerProcess::Start(
        {"--max_value_bytes=1024", "--max_depth=8", "--max_objects=40"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    EXPECT_TRUE(server_->Stop().ok()) << "the server exits cleanly afterwards";
    delete server_;
  }

  void SetUp() override {
    auto client =
        Client::Connect(server_->unix_address(), testing::TestOptions());
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
    channel_ = grpc::CreateChannel(server_->tcp_address(),
                                   grpc::InsecureChannelCredentials());
  }

  // Calls a raw rpc and returns its status with the error detail attached.
  template <typename Stub, typename Request, typename Response>
  absl::Status Raw(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
                   std::unique_ptr<Stub>& stub, const Request& request,
                   Response* response, const std::string& session = "") {
    grpc::ClientContext ctx;
    if (!session.empty()) ctx.AddMetadata(internal::kSessionKey, session);
    grpc::Status status = ((*stub).*method)(&ctx, request, response);
    std::string detail;
    auto trailers = ctx.GetServerTrailingMetadata();
    auto it = trailers.find(internal::kErrorDetailKey);
    if (it != trailers.end())
      detail.assign(it->second.data(), it->second.size());
    return internal::FromGrpcStatus(status, detail);
  }

  static testing::ServerProcess* server_;
  std::unique_ptr<Client> client_;
  std::shared_ptr<grpc::Channel> channel_;
};

testing::ServerProcess* BadInputTest::server_ = nullptr;

void ExpectError(const absl::Status& s, absl::StatusCode code, ErrorKind kind,
                 absl::string_view mentions) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_EQ(GetErrorKind(s), kind) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(mentions)));
}

TEST_F(BadInputTest, InvalidNamesAreValueErrors) {
  const std::vector<std::string> names = {"has space", "semi;colon",
                                          std::string(300, 'n'),
                                          std::string("nul\0byte", 8)};
  for (const std::string& name : names) {
    auto dict = client_->OpenDict(name);
    ExpectError(dict.status(), absl::StatusCode::kInvalidArgument,
                ErrorKind::kValueError, "object name");
  }
}

TEST_F(BadInputTest, UnknownObjectNamesIt) {
  auto stub = v1::Dicts::NewStub(channel_);
  v1::DictGetRequest req;
  req.set_name("no/such/dict");
  v1::DictGetResponse resp;
  ExpectError(Raw(&v1::Dicts::Stub::Get, stub, req, &resp),
              absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
              "object \"no/such/dict\" not found");
}

TEST_F(BadInputTest, WrongTypeOnOpenNamesBothTypes) {
  ASSERT_TRUE(client_->OpenDict("typed").ok());
  auto list = client_->OpenList("typed");
  ExpectError(list.status(), absl::StatusCode::kFailedPrecondition,
              ErrorKind::kTypeError, "dict \"typed\": cannot open as a list");
  auto info = client_->Describe("typed");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, ObjectType::kDict);
}

TEST_F(BadInputTest, BadTtlsAreValueErrorsNamingDictAndKey) {
  auto dict = client_->OpenDict("ttls");
  ASSERT_TRUE(dict.ok()) << dict.status();
  ASSERT_TRUE(dict->Set("k", 1).ok());
  const absl::Duration bad[] = {
      absl::ZeroDuration(), absl::Seconds(-1), absl::InfiniteDuration(),
      -absl::InfiniteDuration(), absl::Hours(24 * 366 * 101)};
  for (absl::Duration ttl : bad) {
    ExpectError(dict->Set("x", 1, ttl), absl::StatusCode::kInvalidArgument,
                ErrorKind::kValueError, "dict \"ttls\": key 'x': a ttl must");
    ExpectError(dict->Expire("k", ttl).status(),
                absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                "dict \"ttls\": key 'k': a ttl must");
  }
  // NaN only comes raw: absl::Duration has none.
  auto stub = v1::Dicts::NewStub(channel_);
  v1::DictSetRequest set;
  set.set_name("ttls");
  set.mutable_key()->set_string_value("x");
  set.set_ttl_seconds(std::nan(""));
  v1::DictSetResponse set_response;
  ExpectError(Raw(&v1::Dicts::Stub::Set, stub, set, &set_response),
              absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
              "not nan");
  EXPECT_EQ(GetErrorKind(dict->Get("x").status()), ErrorKind::kKeyError);
  // A missing key: Expire says so, Ttl is a KEY_ERROR.
  absl::StatusOr<bool> expired = dict->Expire("missing", absl::Seconds(1));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_FALSE(*expired);
  ExpectError(dict->Ttl("missing").status(), absl::StatusCode::kNotFound,
              ErrorKind::kKeyError, "dict \"ttls\": key 'missing' not found");
  // A ttl on a list: the TYPE_ERROR of any dict call on a non-dict.
  ASSERT_TRUE(client_->OpenList("ttl-list").ok());
  set.set_name("ttl-list");
  set.set_ttl_seconds(5);
  ExpectError(Raw(&v1::Dicts::Stub::Set, stub, set, &set_response),
              absl::StatusCode::kFailedPrecondition, ErrorKind::kTypeError,
              "ttl-list");
}

TEST_F(BadInputTest, OutOfRangeIndexLeavesTheListUnchanged) {
  auto list = client_->OpenList("ranged", {1, 2, 3});
  ASSERT_TRUE(list.ok());
  ExpectError(list->Get(3).status(), absl::StatusCode::kOutOfRange,
              ErrorKind::kIndexError,
              "list \"ranged\": list index out of range");
  ExpectError(list->Set(-4, 0), absl::StatusCode::kOutOfRange,
              ErrorKind::kIndexError, "list \"ranged\"");
  ExpectError(list->Pop(99).status(), absl::StatusCode::kOutOfRange,
              ErrorKind::kIndexError, "pop index out of range");
  EXPECT_EQ(*list->Snapshot(), (Value::Items{1, 2, 3}));
}

TEST_F(BadInputTest, OversizeValueNamesTheLimit) {
  auto dict = client_->OpenDict("sized", {{"k", "small"}});
  ASSERT_TRUE(dict.ok());
  absl::Status s = dict->Set("k", std::string(2000, 'x'));
  ExpectError(s, absl::StatusCode::kResourceExhausted,
              ErrorKind::kLimitExceeded, "dict \"sized\"");
  EXPECT_EQ(GetErrorLimit(s), "max_value_bytes");
  EXPECT_EQ(*dict->Get("k"), Value("small"));
}

TEST_F(BadInputTest, TooDeepNestingNamesTheLimit) {
  auto list = client_->OpenList("deep");
  ASSERT_TRUE(list.ok());
  Value v = 1;
  for (int i = 0; i < 10; ++i) v = Value::List({v});
  absl::Status s = list->Append(v).status();
  ExpectError(s, absl::StatusCode::kResourceExhausted,
              ErrorKind::kLimitExceeded, "list \"deep\"");
  EXPECT_EQ(GetErrorLimit(s), "max_depth");
  EXPECT_EQ(*list->Len(), 0);
}

TEST_F(BadInputTest, MalformedRequestsAreRefused) {
  auto objects = v1::Objects::NewStub(channel_);
  v1::OpenRequest open;
  open.set_name("untyped");
  v1::OpenResponse opened;
  ExpectError(Raw(&v1::Objects::Stub::Open, objects, open, &opened),
              absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
              "object \"untyped\": open needs a type");

  ASSERT_TRUE(client_->OpenDict("refs").ok());
  auto dicts = v1::Dicts::NewStub(channel_);
  v1::DictSetRequest set;
  set.set_name("refs");
  set.mutable_key()->set_string_value("k");
  set.mutable_value()->mutable_ref_value()->set_name("");
  v1::DictSetResponse done;
  ExpectError(Raw(&v1::Dicts::Stub::Set, dicts, set, &done),
              absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
              "dict \"refs\": a ref needs a name");
  set.mutable_value()->mutable_ref_value()->set_name("nowhere");
  set.mutable_value()->mutable_ref_value()->set_type(v1::LIST);
  ExpectError(Raw(&v1::Dicts::Stub::Set, dicts, set, &done),
              absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
              "ref to missing object \"nowhere\"");

  v1::DictLenRequest len;
  len.set_name("refs");
  v1::DictLenResponse length;
  ExpectError(Raw(&v1::Dicts::Stub::Len, dicts, len, &length, "forged-id"),
              absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
              "session forged-id is not live");
  EXPECT_TRUE(Raw(&v1::Dicts::Stub::Len, dicts, len, &length).ok());
  EXPECT_EQ(length.length(), 0);
}

TEST_F(BadInputTest, MaxObjectsIsEnforced) {
  int created = 0;
  absl::Status last;
  for (int i = 0; i < 60 && last.ok(); ++i) {
    auto dict = client_->OpenDict("many/" + std::to_string(i));
    last = dict.status();
    created += dict.ok();
  }
  ExpectError(last, absl::StatusCode::kResourceExhausted,
              ErrorKind::kLimitExceeded, "--max_objects=40");
  EXPECT_EQ(GetErrorLimit(last), "max_objects");
  for (int i = 0; i < created; ++i) {
    ASSERT_TRUE(client_->Delete("many/" + std::to_string(i)).ok());
  }
}

TEST_F(BadInputTest, ClientKilledMidWritesLeavesConsistentState) {
  auto child = testing::ChildProcess::Start(
      {"hammer", server_->unix_address(), "hammered"});
  ASSERT_TRUE(child.has_value());
  ASSERT_EQ(child->ReadLine(), "ready");
  absl::SleepFor(absl::Milliseconds(300));
  child->Kill();
  auto dict = client_->OpenDict("hammered");
  ASSERT_TRUE(dict.ok());
  auto items = dict->Items();
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 100u);
  for (const auto& [key, value] : *items) {
    EXPECT_EQ(value, items->front().second) << "updates are atomic";
  }
}

TEST_F(BadInputTest, CancelledCallsLeaveTheServerServing) {
  auto lists = v1::Lists::NewStub(channel_);
  ASSERT_TRUE(client_->OpenList("cancelled").ok());
  for (int round = 0; round < 20; ++round) {
    grpc::ClientContext ctx;
    v1::ListExtendRequest req;
    req.set_name("cancelled");
    for (int i = 0; i < 2000; ++i) req.add_items()->set_int_value(i);
    v1::ListExtendResponse resp;
    grpc::CompletionQueue cq;
    auto call = lists->AsyncExtend(&ctx, req, &cq);
    ctx.TryCancel();
    grpc::Status status;
    call->Finish(&resp, &status, nullptr);
    void* tag;
    bool ok;
    cq.Next(&tag, &ok);
  }
  auto list = client_->OpenList("cancelled");
  auto length = list->Len();
  ASSERT_TRUE(length.ok()) << "the server still answers";
  EXPECT_EQ(*length % 2000, 0) << "each extend applied whole or not at all";
}

}  // namespace
}  // namespace statehub
