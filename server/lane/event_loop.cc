#include "server/lane/event_loop.h"

#include <chrono>
#include <utility>

#include "asio/steady_timer.hpp"
#include "spdlog/spdlog.h"

namespace statehub::lane {
namespace {

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

EventLoop::EventLoop(int threads) : work_(asio::make_work_guard(io_)) {
  threads = std::max(threads, 1);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      // A handler that throws is a bug; log it and keep serving.
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          SPDLOG_ERROR("event loop handler threw: {}", e.what());
        }
      }
    });
  }
}

EventLoop::~EventLoop() { Stop(); }

std::unique_ptr<handlers::Timer> EventLoop::At(absl::Time deadline,
                                               std::function<void()> fire) {
  return std::make_unique<AsioTimer>(io_, deadline, std::move(fire));
}

void EventLoop::Stop() {
  if (threads_.empty()) return;
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace statehub::lane
