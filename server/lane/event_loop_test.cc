// EventLoop (server/lane/event_loop.h) on real threads, an eventfd and
// epoll: what its users rely on and the end-to-end tests cannot time.

#include "server/lane/event_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace statehub::lane {
namespace {

constexpr absl::Duration kLong = absl::Seconds(30);

// Notification over std::mutex: Debian's Abseil is not built for
// ThreadSanitizer, which would not see its synchronization
// (server/engine/mutex.h).
class Notification {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return notified_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

TEST(EventLoopTest, PostedWorkRunsOnTheLoopsThread) {
  EventLoop loops(2);
  EventLoop::Loop& loop = loops.Next();
  EXPECT_FALSE(loop.RunsHere());
  Notification ran;
  std::atomic<bool> here{false};
  loop.Post([&] {
    here = loop.RunsHere();
    ran.Notify();
  });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kLong));
  EXPECT_TRUE(here);
}

TEST(EventLoopTest, TimersFireInDeadlineOrderAndNeverEarly) {
  EventLoop loops(1);
  const absl::Time start = absl::Now();
  std::vector<int> order;
  absl::Time first_fired;
  Notification done;
  // Armed from this thread, which runs no loop: the loop is woken for
  // each new first deadline.
  auto late = loops.At(start + absl::Milliseconds(60), [&] {
    order.push_back(2);
    done.Notify();
  });
  auto early = loops.At(start + absl::Milliseconds(20), [&] {
    first_fired = absl::Now();
    order.push_back(1);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kLong));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(first_fired, start + absl::Milliseconds(20));
}

// Notes the thread that destroys it.
struct Witness {
  std::atomic<std::thread::id>* destroyed_on;
  ~Witness() { *destroyed_on = std::this_thread::get_id(); }
};

TEST(EventLoopTest, ACancelledTimerNeverFiresAndIsLetGoOnTheLoop) {
  EventLoop loops(1);
  EventLoop::Loop& loop = loops.Next();
  std::atomic<std::thread::id> loop_thread;
  Notification known;
  loop.Post([&] {
    loop_thread = std::this_thread::get_id();
    known.Notify();
  });
  ASSERT_TRUE(known.WaitForNotificationWithTimeout(kLong));

  std::atomic<bool> fired{false};
  std::atomic<std::thread::id> destroyed_on;
  std::shared_ptr<Witness> witness(new Witness{&destroyed_on});
  auto timer = loops.At(absl::Now() + absl::Milliseconds(50),
                        [&fired, witness] { fired = true; });
  witness.reset();
  timer.reset();  // cancels, from this thread
  Notification later;
  auto after =
      loops.At(absl::Now() + absl::Milliseconds(100), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(kLong));
  EXPECT_FALSE(fired);
  EXPECT_EQ(destroyed_on.load(), loop_thread.load());
}

TEST(EventLoopTest, ATimerMayBeDestroyedByItsOwnFunction) {
  EventLoop loops(1);
  std::unique_ptr<handlers::Timer> timer;
  Notification done;
  EventLoop::Loop& loop = loops.Next();
  loop.Post([&] {
    // Armed on the loop's own thread, so it lands on the same loop.
    timer = loops.At(absl::Now(), [&] {
      timer.reset();
      done.Notify();
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kLong));
}

TEST(EventLoopTest, DeferredWorkRunsAfterThePassBeforeTheNextWait) {
  EventLoop loops(1);
  EventLoop::Loop& loop = loops.Next();
  std::vector<int> order;
  Notification done;
  loop.Post([&] {
    loop.Defer([&] {
      order.push_back(2);
      done.Notify();
    });
    order.push_back(1);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kLong));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

// Reads what its socket holds when the loop says it is readable.
class Reader final : public EventLoop::Watcher {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  void OnEvents(uint32_t events) override {
    if ((events & EPOLLIN) == 0) return;
    char buffer[64];
    while (::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
      if (++reads_ == 2) both.Notify();
    }
  }
  Notification both;

 private:
  const int fd_;
  int reads_ = 0;
};

TEST(EventLoopTest, AWatchedSocketIsReadOnEachEdge) {
  EventLoop loops(1);
  EventLoop::Loop& loop = loops.Next();
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Reader reader(fds[0]);
  Notification watched;
  loop.Post([&] {
    EXPECT_TRUE(loop.Watch(fds[0], EPOLLIN, &reader));
    watched.Notify();
  });
  ASSERT_TRUE(watched.WaitForNotificationWithTimeout(kLong));
  ASSERT_EQ(::send(fds[1], "a", 1, 0), 1);
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(::send(fds[1], "b", 1, 0), 1);
  EXPECT_TRUE(reader.both.WaitForNotificationWithTimeout(kLong));
  Notification unwatched;
  loop.Post([&] {
    loop.Unwatch(fds[0]);
    unwatched.Notify();
  });
  ASSERT_TRUE(unwatched.WaitForNotificationWithTimeout(kLong));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(EventLoopTest, StopDropsWhatWasNotRun) {
  auto loops = std::make_unique<EventLoop>(1);
  std::atomic<bool> ran{false};
  auto timer = loops->At(absl::Now() + absl::Hours(1), [&] { ran = true; });
  loops->Stop();
  loops->Next().Post([&] { ran = true; });
  timer.reset();
  loops.reset();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace statehub::lane
