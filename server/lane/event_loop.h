// File: server/lane/event_loop.h
//
// `EventLoop` is the server's event loop: a standalone Asio io_context run
// by a bounded number of threads. The lane's connections are served on it
// (handlers run inline on these threads: an engine call takes microseconds
// and never blocks), and it is the Timers of every parked call, whichever
// transport brought it.
//
// Example:
//
//   EventLoop loop(2);
//   std::unique_ptr<handlers::Timer> t =
//       loop.At(absl::Now() + absl::Seconds(1), [] { ... });
//   loop.Stop();
//
// Thread safety: thread-safe. Stop joins the threads; call it once, from a
// thread that is not one of them.

#ifndef STATEHUB_SERVER_LANE_EVENT_LOOP_H_
#define STATEHUB_SERVER_LANE_EVENT_LOOP_H_

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
  // Starts `threads` threads (at least 1).
  explicit EventLoop(int threads);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Stops the loop if it runs.
  ~EventLoop() override;

  asio::io_context& context() { return io_; }

  std::unique_ptr<handlers::Timer> At(absl::Time deadline,
                                      std::function<void()> fire) override;

  // Stop ends the loop: pending handlers are dropped, the threads joined.
  void Stop();

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  std::vector<std::thread> threads_;
};

}  // namespace statehub::lane

#endif  // STATEHUB_SERVER_LANE_EVENT_LOOP_H_
