#include "tests/fuzz/fake_call.h"

#include "statehub/internal/wire.h"

namespace grpc::testing {

void ServerContextTestSpouse::AddClientMetadata(const std::string& key,
                                                const std::string& value) {
  client_metadata_storage_.emplace(key, value);
  // The context's map holds views; rebuild it over the stored strings.
  auto* map = ctx_->client_metadata_.map();
  map->clear();
  for (const auto& [k, v] : client_metadata_storage_) {
    map->emplace(grpc::string_ref(k.data(), k.size()),
                 grpc::string_ref(v.data(), v.size()));
  }
}

std::multimap<std::string, std::string>
ServerContextTestSpouse::GetTrailingMetadata() const {
  return ctx_->trailing_metadata_;
}

}  // namespace grpc::testing

namespace statehub::fuzz {

CallContext::CallContext(const std::string& session_id) {
  if (!session_id.empty()) {
    spouse_.AddClientMetadata(internal::kSessionKey, session_id);
  }
}

std::string CallContext::ErrorDetail() const {
  const auto trailers = spouse_.GetTrailingMetadata();
  auto it = trailers.find(internal::kErrorDetailKey);
  return it == trailers.end() ? "" : it->second;
}

void FakeUnaryCall::Bind(grpc::ServerUnaryReactor* reactor) {
  reactor_ = reactor;
  BindReactor(reactor);
}

void FakeUnaryCall::Finish(grpc::Status status) {
  // gRPC's contract, which ParkedCall promises to keep: exactly one Finish.
  FUZZ_CHECK(!finished_, "a call finished twice: first %d '%s', then %d '%s'",
             status_.error_code(), status_.error_message(), status.error_code(),
             status.error_message());
  finished_ = true;
  status_ = std::move(status);
}

BlockingCall::~BlockingCall() {
  FUZZ_CHECK(!parked_ || done_, "a parked call was never retired");
}

void BlockingCall::Started() {
  if (reactor_ == peer_->reactor()) {
    // Failed before it could park (Fail): the default reactor finished it.
    FUZZ_CHECK(peer_->test_status_set(), "a blocking handler did not finish");
    return;
  }
  parked_ = true;
  call_.Bind(reactor_);
}

bool BlockingCall::finished() const {
  return parked_ ? call_.finished() : peer_->test_status_set();
}

Outcome BlockingCall::outcome() const {
  return Outcome{parked_ ? call_.status() : peer_->test_status(),
                 ctx_.ErrorDetail()};
}

const Waiter* BlockingCall::waiter() const {
  if (!parked_ || done_) return nullptr;
  return static_cast<service::ParkedCall*>(reactor_)->waiter().get();
}

bool BlockingCall::Cancel() {
  if (!parked_ || cancelled_ || done_) return false;
  cancelled_ = true;
  reactor_->OnCancel();
  return true;
}

void BlockingCall::Done() {
  FUZZ_CHECK(finished(), "OnDone before Finish");
  if (!parked_ || done_) return;
  done_ = true;
  reactor_->OnDone();
}

}  // namespace statehub::fuzz
