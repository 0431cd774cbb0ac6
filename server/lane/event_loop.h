// File: server/lane/event_loop.h
//
// `EventLoop` is the server's event loops: a fixed number of threads, each
// running its own single-threaded standalone Asio io_context (Redis's and
// nginx's shape: a connection lives on one loop, and everything it does
// runs on that loop's thread). The lane's connections are spread over
// them (Next); their handlers run inline (an engine call takes
// microseconds and never blocks), so a call costs no hand-off between
// threads: only a reply finished on another thread (a parked call granted
// there) is posted across. The loops are also the Timers of every parked
// call, whichever transport brought it: a timeout is armed on the calling
// thread's own loop when it has one (docs/decisions.md, "One loop per
// thread").
//
// Example:
//
//   EventLoop loop(2);
//   asio::io_context& io = loop.Next();   // for a new connection
//   std::unique_ptr<handlers::Timer> t =
//       loop.At(absl::Now() + absl::Seconds(1), [] { ... });
//   loop.Stop();
//
// Thread safety: thread-safe. Stop joins the threads; call it once, from a
// thread that is not one of them.

#ifndef STATEHUB_SERVER_LANE_EVENT_LOOP_H_
#define STATEHUB_SERVER_LANE_EVENT_LOOP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "server/handlers/call.h"

namespace statehub::lane {

class EventLoop final : public handlers::Timers {
 public:
  // Starts `threads` loops (at least 1), a thread each.
  explicit EventLoop(int threads);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Stops the loops if they run.
  ~EventLoop() override;

  // context is the first loop's: listening sockets and name lookups.
  asio::io_context& context() { return loops_.front()->io; }
  // Next picks the loop a new connection lives on, in turn.
  asio::io_context& Next();

  // At arms `fire` on the calling thread's loop if it runs one, else on
  // the next loop.
  std::unique_ptr<handlers::Timer> At(absl::Time deadline,
                                      std::function<void()> fire) override;

  // Stop ends every loop: pending handlers are dropped, the threads
  // joined.
  void Stop();

 private:
  struct Loop {
    Loop();
    // One thread runs it: Asio may then keep handlers posted from that
    // thread on the thread, with no lock taken and no wakeup.
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
        work;
    std::thread thread;
  };

  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
};

}  // namespace statehub::lane

#endif  // STATEHUB_SERVER_LANE_EVENT_LOOP_H_
