// LaneSession (server/lane/lane_session.h) over a real Engine and method
// table, without a socket: what the lane's protocol does on a connection
// that the end-to-end tests cannot time.

#include "server/lane/lane_session.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/lock.h"
#include "server/engine/waiter.h"
#include "server/handlers/methods.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/sync.pb.h"

namespace statehub::lane {
namespace {

// The connection: keeps what the server writes; every context is the
// caller's (Dispatch runs at once, on whichever thread calls it).
class RecordingLink final : public LaneSession::Link {
 public:
  void Write(std::string bytes) override {
    absl::MutexLock lock(&mu_);
    out_ += bytes;
  }
  void Close() override {}
  void Dispatch(std::function<void()> fn) override { fn(); }

  // replies counts the RESPONSE and ERROR frames written.
  int replies() {
    absl::MutexLock lock(&mu_);
    FrameReader reader(UINT32_MAX, /*expect_preface=*/false);
    reader.Append(out_);
    Frame frame;
    std::optional<FrameError> error;
    int n = 0;
    while (reader.Next(&frame, &error)) {
      const auto kind = static_cast<Kind>(frame.header.kind);
      n += kind == Kind::kResponse || kind == Kind::kError;
    }
    return n;
  }

 private:
  absl::Mutex mu_;
  std::string out_ ABSL_GUARDED_BY(mu_);
};

// Timeouts that never fire: the calls here wait forever.
class NoTimers final : public handlers::Timers {
 public:
  std::unique_ptr<handlers::Timer> At(absl::Time,
                                      std::function<void()>) override {
    class Never final : public handlers::Timer {
     public:
      void Cancel() override {}
    };
    return std::make_unique<Never>();
  }
};

std::string Hello(SessionId resume) {
  v1::LaneHello hello;
  hello.set_protocol_version(kProtocolVersion);
  hello.set_resume_session_id(SessionTable::FormatId(resume));
  hello.set_label("lane_session_test");
  std::string out(kPreface);
  AppendFrame(&out, Kind::kHello, 0, 0, &hello);
  return out;
}

std::string Acquire(uint32_t request_id, const std::string& lock) {
  v1::LockAcquireRequest request;
  request.set_name(lock);
  request.set_blocking(true);
  request.set_thread_id(1);
  std::string out;
  AppendFrame(&out, Kind::kRequest, request_id, /*Locks.Acquire*/ 80, &request);
  return out;
}

// A parked call that another thread has claimed (here a release, which
// hands the lock on) when its connection closes: the claimer completes the
// call after the connection withdrew it, so the connection must keep the
// call until it is finished. (Found by the soak under ASan, the claimer
// being the end of the call's session on another connection: a
// heap-use-after-free in ParkedCall::Finish; in a release build, "pure
// virtual method called".)
TEST(LaneSessionTest, AParkedCallClaimedElsewhereOutlivesItsConnection) {
  Engine engine(Limits{}, absl::Seconds(30));
  handlers::MethodTable table(engine);
  NoTimers timers;
  const absl::Time now = absl::Now();
  const SessionId holder = engine.sessions().Open(0, "holder", now)->id;
  const SessionId waiter = engine.sessions().Open(0, "waiter", now)->id;
  auto opened =
      engine.registry().Open("L", ObjectType::kLock, {}, Caller{holder});
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto lock = std::static_pointer_cast<LockObject>(opened->object);
  ASSERT_TRUE(lock->Acquire(Caller{holder}, 1, nullptr, "holder")->acquired);

  auto link = std::make_shared<RecordingLink>();
  auto session =
      std::make_shared<LaneSession>(engine, table, timers, /*observer=*/nullptr,
                                    LaneSession::Options{}, link);
  session->Feed(Hello(waiter) + Acquire(7, "L"));
  ASSERT_EQ(session->parked_calls(), 1u);
  // The release claims the parked acquire; its completion is delivered
  // after the connection is gone.
  absl::StatusOr<std::vector<Completion>> granted =
      lock->Release(Caller{holder}, 1);
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_EQ(granted->size(), 1u);
  session->Closed();
  DeliverCompletions(*std::move(granted));

  EXPECT_EQ(session->parked_calls(), 0u);
  // The grant stands (api/LANE.md, "Cancel"): the waiter holds the lock.
  EXPECT_FALSE(lock->Acquire(Caller{holder}, 1, nullptr, "holder")->acquired);
  // Nothing went out after the connection closed.
  EXPECT_EQ(link->replies(), 0);
}

}  // namespace
}  // namespace statehub::lane
