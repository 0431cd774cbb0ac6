#include "server/lane/event_loop.h"

#include <chrono>
#include <utility>

#include "asio/steady_timer.hpp"
#include "spdlog/spdlog.h"

namespace statehub::lane {
namespace {

// The loop this thread runs, and whose it is, if it is a loop's thread.
thread_local const EventLoop* current_owner = nullptr;
thread_local asio::io_context* current_loop = nullptr;

// One armed timeout. The handler holds only a weak reference to the timer's
// state, so destroying the Timer (which cancels it) is safe from any thread,
// including from inside `fire` itself.
class AsioTimer final : public handlers::Timer {
 public:
  AsioTimer(asio::io_context& io, absl::Time deadline,
            std::function<void()> fire)
      : timer_(std::make_shared<asio::steady_timer>(io)) {
    const absl::Duration wait =
        std::max(deadline - absl::Now(), absl::ZeroDuration());
    timer_->expires_after(absl::ToChronoNanoseconds(wait));
    timer_->async_wait(
        [keep = timer_, fire = std::move(fire)](const std::error_code& ec) {
          if (!ec) fire();
        });
  }
  ~AsioTimer() override { Cancel(); }
  void Cancel() override { timer_->cancel(); }

 private:
  // Shared with the pending handler: the steady_timer must outlive its
  // wait, which Asio completes (as cancelled) after Cancel.
  std::shared_ptr<asio::steady_timer> timer_;
};

}  // namespace

EventLoop::Loop::Loop() : work(asio::make_work_guard(io)) {}

EventLoop::EventLoop(int threads) {
  threads = std::max(threads, 1);
  for (int i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<Loop>());
  }
  for (const std::unique_ptr<Loop>& loop : loops_) {
    loop->thread = std::thread([this, io = &loop->io] {
      current_owner = this;
      current_loop = io;
      // A handler that throws is a bug; log it and keep serving.
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          SPDLOG_ERROR("event loop handler threw: {}", e.what());
        }
      }
    });
  }
}

EventLoop::~EventLoop() { Stop(); }

asio::io_context& EventLoop::Next() {
  return loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()]
      ->io;
}

std::unique_ptr<handlers::Timer> EventLoop::At(absl::Time deadline,
                                               std::function<void()> fire) {
  asio::io_context& io = current_owner == this ? *current_loop : Next();
  return std::make_unique<AsioTimer>(io, deadline, std::move(fire));
}

void EventLoop::Stop() {
  for (const std::unique_ptr<Loop>& loop : loops_) {
    loop->work.reset();
    loop->io.stop();
  }
  for (const std::unique_ptr<Loop>& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

}  // namespace statehub::lane
