// File: tests/fuzz/fake_transport.h
//
// The transport's part of a call, played by engine_fuzz without a server,
// socket or thread. The handlers of server/handlers/ are transport-neutral:
// a transport admits the call (resolves its session; the harness does it
// with Engine::ResolveCaller, as both transports do), runs the handler,
// sends the status the call finishes with, and cancels a parked call when
// its client goes away.
//
//   - An immediate handler needs no Call: the harness calls it and the
//     status it returns is the reply.
//   - A blocking handler (acquire, wait, get, ...) gets a FakeCall, which
//     records the one status sent and, like the gRPC adapter's OnCancel or
//     the lane's CANCEL, lets the harness run Cancel() later.
//   - FakeTimers holds the timeouts parked calls arm; they fire only when
//     the harness runs FireDue, on its own thread, so every run is
//     deterministic.
//
// Example:
//
//   FakeTimers timers;
//   auto req = std::make_unique<v1::LockAcquireRequest>();
//   req->set_name("a");
//   FakeCall call(handlers::Transport::kGrpc, Caller{session}, &timers,
//                 std::move(req), std::make_unique<v1::LockAcquireResponse>());
//   locks.Acquire(&call, ...);       // finishes now, or parks
//   timers.FireDue(absl::Now());     // timeouts that are due
//   call.Cancel();                   // the client went away
//   if (call.finished()) ... call.status() ...
//
// Not thread-safe.

#ifndef STATEHUB_TESTS_FUZZ_FAKE_TRANSPORT_H_
#define STATEHUB_TESTS_FUZZ_FAKE_TRANSPORT_H_

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "server/engine/caller.h"
#include "server/handlers/call.h"

namespace statehub::fuzz {

// FakeCall is one blocking call and the messages it needs until it is
// finished (a parked call writes its reply when it is granted, long after
// the handler returned). The harness owns it and deletes it only once it
// is finished, as a transport does.
class FakeCall final : public handlers::Call {
 public:
  FakeCall(handlers::Transport transport, Caller caller,
           handlers::Timers* timers,
           std::unique_ptr<google::protobuf::Message> request,
           std::unique_ptr<google::protobuf::Message> response)
      : Call(transport, caller, timers, /*observer=*/nullptr,
             /*method_index=*/0),
        request_(std::move(request)),
        response_(std::move(response)) {}
  ~FakeCall() override = default;

  bool finished() const { return status_.has_value(); }
  // status is what the call finished with. REQUIRES: finished().
  const absl::Status& status() const { return *status_; }
  const google::protobuf::Message& request() const { return *request_; }
  google::protobuf::Message* response() { return response_.get(); }

 private:
  // Aborts if the call finishes twice: every transport relies on once.
  void Send(const absl::Status& status) override;

  const std::unique_ptr<google::protobuf::Message> request_;
  const std::unique_ptr<google::protobuf::Message> response_;
  std::optional<absl::Status> status_;
};

// FakeTimers keeps armed timeouts until the harness fires them.
class FakeTimers final : public handlers::Timers {
 public:
  std::unique_ptr<handlers::Timer> At(absl::Time deadline,
                                      std::function<void()> fire) override;

  // FireDue runs, in deadline order, every timer due by `now` that was not
  // cancelled. A timer armed meanwhile waits for the next FireDue.
  void FireDue(absl::Time now);
  // armed counts the timers that may still fire.
  size_t armed() const;

 private:
  struct Entry {
    absl::Time deadline;
    std::function<void()> fire;
    bool cancelled = false;
  };
  class Handle;

  std::vector<std::shared_ptr<Entry>> entries_;
};

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_FAKE_TRANSPORT_H_
