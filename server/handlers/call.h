// File: server/handlers/call.h
//
// What every handler shares, whichever transport brought the call: `Call`,
// one rpc in flight as the handlers see it (who calls, how to finish it);
// the Timers a parked call arms its timeout on; the RpcObserver that counts
// and times every call; and the request-side conversions that apply the
// value limits. Handlers are transport-neutral: a request message in, a
// response message or a parked completion out (server/handlers/methods.h
// holds their table; server/grpc and server/lane adapt transports to it).

#ifndef STATEHUB_SERVER_HANDLERS_CALL_H_
#define STATEHUB_SERVER_HANDLERS_CALL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "server/engine/engine.h"
#include "server/engine/slice.h"
#include "statehub/internal/wire.h"
#include "statehub/v1/list.pb.h"
#include "statehub/v1/value.pb.h"
// STATEHUB_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a StatusOr); returns
// its status on error, otherwise moves its value into lhs.
#define STATEHUB_CONCAT_INNER(a, b) a##b
#define STATEHUB_CONCAT(a, b) STATEHUB_CONCAT_INNER(a, b)
#define STATEHUB_ASSIGN_OR_RETURN(lhs, expr)              \
  auto STATEHUB_CONCAT(statusor_, __LINE__) = (expr);     \
  if (!STATEHUB_CONCAT(statusor_, __LINE__).ok())         \
    return STATEHUB_CONCAT(statusor_, __LINE__).status(); \
  lhs = *std::move(STATEHUB_CONCAT(statusor_, __LINE__))
#define STATEHUB_RETURN_IF_ERROR(expr)                 \
  do {                                                 \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (false)

namespace statehub::handlers {

// Transport is how a call reached the server; a label of the rpc metrics,
// and nothing a handler may depend on.
enum class Transport { kGrpc = 0, kLane = 1 };
inline constexpr int kTransportCount = 2;
inline absl::string_view TransportName(Transport t) {
  return t == Transport::kGrpc ? "grpc" : "lane";
}

// Timer is an armed timeout. Cancel stops it from firing (a no-op once it
// has fired); destroying it cancels it.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void Cancel() = 0;
};

// Timers runs a function at a deadline, on a server thread that may run
// handlers (so the function must not block).
class Timers {
 public:
  virtual ~Timers() = default;
  virtual std::unique_ptr<Timer> At(absl::Time deadline,
                                    std::function<void()> fire) = 0;
};

// RpcObserver is told of every finished call: the method's index in the
// method table, the transport, the status code and the time from arrival to
// status (a parked call's includes its wait).
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  virtual void RpcDone(int method_index, Transport transport,
                       absl::StatusCode code, double seconds) = 0;
};

// Call is one rpc in flight. The transport creates it with the caller
// already admitted (token checked, session resolved), owns the request and
// response messages, and makes sure Finish is reached exactly once; Finish
// records the call with the observer and then sends the reply (the
// response the handler filled, if OK, else the status with its
// ErrorDetail).
//
// A blocking handler that parks the call registers a canceller; the
// transport runs it (at most once, and never before the handler has
// returned) when the client cancels or goes away.
//
// Thread safety: Finish may be called from any thread, with no engine mutex
// held; after it the call may be gone.
class Call {
 public:
  // `changes`, if not null, holds the reply until what the call changed
  // (and anything it saw) is durable: see Finish.
  Call(Transport transport, Caller caller, Timers* timers,
       RpcObserver* observer, int method_index, ChangeStream* changes = nullptr,
       bool read_only = false)
      : transport_(transport),
        caller_(caller),
        timers_(timers),
        observer_(observer),
        method_index_(method_index),
        changes_(changes),
        read_only_(read_only),
        start_(std::chrono::steady_clock::now()) {}
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Transport transport() const { return transport_; }
  const Caller& caller() const { return caller_; }
  Timers& timers() const { return *timers_; }

  // Number makes this a numbered call (NumberedCall, changes.h) whose
  // handler fills `response`: Finish remembers its answer in `replies` for
  // a retry, and logs it if the call changed something.
  void Number(uint64_t number, uint32_t lane_method, Replies* replies,
              const google::protobuf::Message* response) {
    number_ = number;
    lane_method_ = lane_method;
    replies_ = replies;
    numbered_response_ = response;
  }

  // Finish sends the reply once every change published so far is as
  // durable as --fsync promises (ChangeStream::AfterCommit: with a data
  // dir, a reply never acknowledges nor shows a change that a crash could
  // lose); if the log cannot take them, the reply is that error instead.
  // A numbered call's answer is remembered first.
  void Finish(const absl::Status& status) {
    if (number_ != 0) Remember(status);
    if (changes_ == nullptr) {
      Done(status);
      return;
    }
    changes_->AfterCommit(
        [this, status](absl::Status durable) {
          Done(durable.ok() ? status : durable);
        },
        read_only_);
  }

  // SetCanceller is for ParkedCall: `cancel` withdraws the parked call.
  void SetCanceller(std::function<void()> cancel) {
    canceller_ = std::move(cancel);
  }
  // Cancel runs the canceller, if any (the transport's side).
  void Cancel() {
    if (canceller_) canceller_();
  }

 protected:
  virtual ~Call() = default;
  // Done records the call with the observer and sends `status`.
  void Done(const absl::Status& status) {
    if (observer_ != nullptr) {
      const std::chrono::duration<double> elapsed =
          std::chrono::steady_clock::now() - start_;
      observer_->RpcDone(method_index_, transport_, status.code(),
                         elapsed.count());
    }
    Send(status);
  }
  // Send delivers the reply; the transport may delete the call in it.
  virtual void Send(const absl::Status& status) = 0;

 private:
  // Remember keeps a numbered call's answer (Number): an OK one always,
  // an error only if the call changed something first. Run on the call's
  // own thread it closes the call's NumberedCall, logging the answer after
  // the call's changes; a parked call answered later logs it on its own.
  void Remember(const absl::Status& status);

  const Transport transport_;
  const Caller caller_;
  Timers* const timers_;
  RpcObserver* const observer_;
  const int method_index_;
  ChangeStream* const changes_;
  const bool read_only_;
  const std::chrono::steady_clock::time_point start_;
  std::function<void()> canceller_;
  uint64_t number_ = 0;
  uint32_t lane_method_ = 0;
  Replies* replies_ = nullptr;
  const google::protobuf::Message* numbered_response_ = nullptr;
};

// Decoder turns request values into engine values, enforcing
// --max_value_bytes and --max_depth; errors name the object the request is
// for.
class Decoder {
 public:
  Decoder(const Limits& limits, ObjectType type, absl::string_view name)
      : limits_(limits), type_(type), name_(name) {}

  absl::StatusOr<Value> operator()(const v1::Value& wire) const;
  // An optional field: nullopt when unset.
  absl::StatusOr<std::optional<Value>> Optional(bool has,
                                                const v1::Value& wire) const;
  absl::StatusOr<Value::Items> Items(
      const google::protobuf::RepeatedPtrField<v1::Value>& wire) const;
  absl::StatusOr<Value::Entries> Entries(
      const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire) const;
  // Columns appends the entries of an EntryColumns batch (value.proto) to
  // `out`. Errors: VALUE_ERROR for a batch of the wrong shape (a keys-only
  // one included), LIMIT_EXCEEDED for a key or value over
  // --max_value_bytes.
  absl::Status Columns(const v1::EntryColumns& wire, Value::Entries* out) const;
  // Columns appends the items of an ItemColumns batch (value.proto) to
  // `out`. Errors: VALUE_ERROR for a column that holds no whole number of
  // items, LIMIT_EXCEEDED for a str over --max_value_bytes.
  absl::Status Columns(const v1::ItemColumns& wire, Value::Items* out) const;

 private:
  // Checks a value of `bytes` on the wire against --max_value_bytes.
  absl::Status CheckSize(int64_t bytes) const;
  // Checks a string of `size` bytes, as the Value it stands for.
  absl::Status CheckStringSize(size_t size) const;

  const Limits& limits_;
  const ObjectType type_;
  const absl::string_view name_;
};

// SliceOf converts a wire slice; an unset subscript means the full slice.
SliceSpec SliceOf(const v1::Slice& wire);

// Encode helpers for replies.
void EncodeItems(const Value::Items& items,
                 google::protobuf::RepeatedPtrField<v1::Value>* wire);
void EncodeEntries(const Value::Entries& entries,
                   google::protobuf::RepeatedPtrField<v1::MapEntry>* wire);
// EncodeColumns lays `entries` out as an EntryColumns batch (only keys when
// `keys_only`) if they fit its shape: string keys, and values all ints, all
// doubles or all strings, no string holding U+0000. Returns false, writing
// nothing, if they do not.
bool EncodeColumns(const Value::Entries& entries, bool keys_only,
                   v1::EntryColumns* wire);
// EncodeColumns lays `items` out as an ItemColumns batch if they fit its
// shape: at least one, and all ints, all doubles or all strings without
// U+0000. Returns false, writing nothing, if they do not.
bool EncodeColumns(const Value::Items& items, v1::ItemColumns* wire);

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_CALL_H_
