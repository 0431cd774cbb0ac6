// File: server/lane/event_loop.h
//
// `EventLoop` is the server's event loops: a fixed number of threads, each
// running a loop of its own over epoll (Redis's and nginx's shape: a
// connection lives on one loop, and everything it does runs on that loop's
// thread). The lane's connections are spread over them (Next); their
// handlers run inline (an engine call takes microseconds and never blocks),
// so a call costs no hand-off between threads and, when it arrives alone,
// three system calls: the wait, the read, the write (docs/decisions.md,
// "Reads go through the loop's own epoll"). Only a reply finished on
// another thread (a parked call granted there) is posted across. The loops
// are also the Timers of every parked call, whichever transport brought
// it: a timeout is armed on the calling thread's own loop when it has one.
// Listening sockets and name lookups run on an Asio io_context of their own
// (context()), on one more thread.
//
// Example:
//
//   EventLoop loops(2);
//   EventLoop::Loop& loop = loops.Next();  // for a new connection
//   loop.Post([] { ... });                 // runs on that loop's thread
//   std::unique_ptr<handlers::Timer> t =
//       loops.At(absl::Now() + absl::Seconds(1), [] { ... });
//   loops.Stop();
//
// Thread safety: thread-safe. Stop joins the threads; call it once, from a
// thread that is not one of them.

#ifndef STATEHUB_SERVER_LANE_EVENT_LOOP_H_
#define STATEHUB_SERVER_LANE_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "server/engine/mutex.h"
#include "server/handlers/call.h"

namespace statehub::lane {

class EventLoop final : public handlers::Timers {
 public:
  // Watcher is told of the epoll events of a descriptor it watches, on the
  // loop's thread.
  class Watcher {
   public:
    virtual ~Watcher() = default;
    virtual void OnEvents(uint32_t events) = 0;
  };

  // Loop is one loop and its thread.
  class Loop {
   public:
    explicit Loop(const EventLoop* owner);
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;
    ~Loop();

    // Post runs `fn` on this loop's thread, later (never before it
    // returns). Any thread, with any lock held.
    void Post(std::function<void()> fn);
    // Defer runs `fn` on this loop's thread once the handlers of every
    // descriptor that was ready in the same wait have run, before the loop
    // waits again. From the loop's own thread (elsewhere it is Post).
    void Defer(std::function<void()> fn);
    // RunsHere is whether the calling thread is this loop's.
    bool RunsHere() const;

    // Watch registers `fd` for `events` (edge-triggered) with `watcher`,
    // which must stay alive until Unwatch and the end of the loop's
    // current pass. Unwatch stops it. The loop's thread.
    bool Watch(int fd, uint32_t events, Watcher* watcher);
    // Rewatch changes the events watched for.
    bool Rewatch(int fd, uint32_t events, Watcher* watcher);
    void Unwatch(int fd);

   private:
    friend class EventLoop;
    struct TimerState;
    class LoopTimer;

    bool Control(int op, int fd, uint32_t events, Watcher* watcher);
    void Run();
    void Wake();
    void RunPosted();
    void FireTimers();
    int WaitMillis();
    std::unique_ptr<handlers::Timer> At(absl::Time deadline,
                                        std::function<void()> fire);
    void Cancel(const std::shared_ptr<TimerState>& state);
    void Stop();

    const EventLoop* const owner_;
    const int epoll_fd_;
    const int wake_fd_;
    std::thread thread_;
    std::atomic<bool> stopping_{false};

    // The loop's thread only.
    std::vector<std::function<void()>> deferred_;

    mutable Mutex mu_;
    std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
    bool woken_ ABSL_GUARDED_BY(mu_) = false;
    std::multimap<absl::Time, std::shared_ptr<TimerState>> timers_
        ABSL_GUARDED_BY(mu_);
  };

  // Starts `threads` loops (at least 1), a thread each, and the thread of
  // context().
  explicit EventLoop(int threads);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Stops the loops if they run.
  ~EventLoop() override;

  // context is for listening sockets and name lookups: an Asio io_context
  // run by a thread of its own.
  asio::io_context& context() { return io_; }
  // Next picks the loop a new connection lives on, in turn.
  Loop& Next();

  // At arms `fire` on the calling thread's loop if it runs one, else on
  // the next loop. The Timer may be cancelled or destroyed from any
  // thread, including from inside `fire`; a timer cancelled after its
  // deadline came may still fire.
  std::unique_ptr<handlers::Timer> At(absl::Time deadline,
                                      std::function<void()> fire) override;

  // Stop ends every loop: pending handlers are dropped, the threads
  // joined.
  void Stop();

 private:
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  std::thread io_thread_;
  bool stopped_ = false;
};

}  // namespace statehub::lane

#endif  // STATEHUB_SERVER_LANE_EVENT_LOOP_H_
