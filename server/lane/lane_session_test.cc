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
#include "server/engine/changes.h"
#include "server/engine/engine.h"
#include "server/engine/lock.h"
#include "server/engine/waiter.h"
#include "server/handlers/methods.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/dict.pb.h"
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
  // Deferred work waits for RunDeferred, as an event loop's posted handler
  // waits for the connections that are ready before it.
  void Defer(std::function<void()> fn) override {
    absl::MutexLock lock(&mu_);
    deferred_.push_back(std::move(fn));
  }
  void RunDeferred() {
    std::vector<std::function<void()>> deferred;
    {
      absl::MutexLock lock(&mu_);
      deferred.swap(deferred_);
    }
    for (auto& fn : deferred) fn();
  }

  // replies counts the RESPONSE and ERROR frames written; errors, the
  // ERRORs among them.
  int errors() { return Count(Kind::kError); }
  int replies() { return Count(Kind::kResponse) + Count(Kind::kError); }

 private:
  int Count(Kind wanted) {
    absl::MutexLock lock(&mu_);
    FrameReader reader(UINT32_MAX, /*expect_preface=*/false);
    reader.Append(out_);
    Frame frame;
    std::optional<FrameError> error;
    int n = 0;
    while (reader.Next(&frame, &error)) {
      n += static_cast<Kind>(frame.header.kind) == wanted;
    }
    return n;
  }

  absl::Mutex mu_;
  std::string out_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
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

// A log that answers inline (as --fsync=everysec and no do) and counts its
// writes; `fail` makes the next writes fail, as a full disk does.
class CountingLog final : public ChangeSink {
 public:
  void Write(const v1::ChangeRecord&) override { ++records; }
  void WhenDurable(uint64_t, Done done) override {
    ++writes;
    done(fail);
  }
  bool answers_inline() const override { return true; }

  int records = 0;
  int writes = 0;
  absl::Status fail;
};

std::string DictSet(uint32_t request_id, const std::string& dict) {
  v1::DictSetRequest request;
  request.set_name(dict);
  request.mutable_key()->set_string_value("k");
  request.mutable_value()->set_int_value(request_id);
  std::string out;
  AppendFrame(&out, Kind::kRequest, request_id, /*Dicts.Set*/ 17, &request);
  return out;
}

std::string DictLen(uint32_t request_id, const std::string& dict) {
  v1::DictLenRequest request;
  request.set_name(dict);
  std::string out;
  AppendFrame(&out, Kind::kRequest, request_id, /*Dicts.Len*/ 20, &request);
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

// On a data dir whose log answers inline, the replies of every connection
// served in one pass of the event loop wait for one log write at the end of
// the pass, rather than one write each; a write that fails turns the reply
// of a call that changed something into that error, and a read's stays.
TEST(LaneSessionTest, RepliesOfAPassWaitForOneLogWrite) {
  Engine engine(Limits{}, absl::Seconds(30));
  handlers::MethodTable table(engine);
  NoTimers timers;
  CountingLog log;
  engine.changes().set_sink(&log);
  const absl::Time now = absl::Now();
  ASSERT_TRUE(engine.registry()
                  .Open("d", ObjectType::kDict, {},
                        Caller{engine.sessions().Open(0, "x", now)->id})
                  .ok());

  auto link_a = std::make_shared<RecordingLink>();
  auto link_b = std::make_shared<RecordingLink>();
  auto a = std::make_shared<LaneSession>(engine, table, timers, nullptr,
                                         LaneSession::Options{}, link_a);
  auto b = std::make_shared<LaneSession>(engine, table, timers, nullptr,
                                         LaneSession::Options{}, link_b);
  a->Feed(Hello(engine.sessions().Open(0, "a", now)->id));
  b->Feed(Hello(engine.sessions().Open(0, "b", now)->id));
  link_a->RunDeferred();
  link_b->RunDeferred();
  const int writes_before = log.writes;

  a->Feed(DictSet(1, "d") + DictSet(2, "d"));
  b->Feed(DictSet(3, "d"));
  EXPECT_EQ(link_a->replies() + link_b->replies(), 0)
      << "a reply went out before the log was written";
  EXPECT_EQ(log.writes, writes_before);
  link_a->RunDeferred();  // the end of the pass: the first Defer posted
  link_b->RunDeferred();
  EXPECT_EQ(log.writes, writes_before + 1);
  EXPECT_EQ(link_a->replies(), 2);
  EXPECT_EQ(link_b->replies(), 1);
  EXPECT_EQ(link_a->errors() + link_b->errors(), 0);

  log.fail = absl::ResourceExhaustedError("no space left on device");
  a->Feed(DictSet(4, "d") + DictLen(5, "d"));
  link_a->RunDeferred();
  EXPECT_EQ(link_a->replies(), 4);
  EXPECT_EQ(link_a->errors(), 1) << "the set fails, the read is answered";

  engine.changes().set_sink(nullptr);
  a->Closed();
  b->Closed();
}

}  // namespace
}  // namespace statehub::lane
