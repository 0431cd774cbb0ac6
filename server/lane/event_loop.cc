#include "server/lane/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "spdlog/spdlog.h"

namespace statehub::lane {
namespace {

// The loop this thread runs, if it is a loop's thread.
thread_local EventLoop::Loop* current_loop = nullptr;

// Runs `fn`, logging what it throws: a handler that throws is a bug, and
// the loop keeps serving.
template <typename Fn>
void Guarded(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    SPDLOG_ERROR("event loop handler threw: {}", e.what());
  }
}

}  // namespace

// One armed timeout: the loop's timer list holds it until its deadline or
// its cancellation, both under the loop's mutex.
struct EventLoop::Loop::TimerState {
  std::function<void()> fire;
  std::multimap<absl::Time, std::shared_ptr<TimerState>>::iterator where;
  bool armed = false;
};

class EventLoop::Loop::LoopTimer final : public handlers::Timer {
 public:
  LoopTimer(Loop* loop, std::shared_ptr<TimerState> state)
      : loop_(loop), state_(std::move(state)) {}
  ~LoopTimer() override { Cancel(); }
  void Cancel() override { loop_->Cancel(state_); }

 private:
  Loop* const loop_;
  const std::shared_ptr<TimerState> state_;
};

EventLoop::Loop::Loop(const EventLoop* owner)
    : owner_(owner),
      epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    SPDLOG_CRITICAL("event loop: epoll or eventfd failed: {}",
                    std::strerror(errno));
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: read until drained
  ev.data.ptr = nullptr;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

EventLoop::Loop::~Loop() {
  Stop();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

bool EventLoop::Loop::RunsHere() const { return current_loop == this; }

void EventLoop::Loop::Wake() {
  const uint64_t one = 1;
  // EAGAIN (the counter is full) still leaves the loop woken.
  (void)!::write(wake_fd_, &one, sizeof one);
}

void EventLoop::Loop::Post(std::function<void()> fn) {
  bool wake = false;
  {
    MutexLock lock(&mu_);
    posted_.push_back(std::move(fn));
    // The loop's own thread looks at posted_ before it waits again.
    if (!woken_ && !RunsHere()) wake = woken_ = true;
  }
  if (wake) Wake();
}

void EventLoop::Loop::Defer(std::function<void()> fn) {
  if (!RunsHere()) return Post(std::move(fn));
  deferred_.push_back(std::move(fn));
}

bool EventLoop::Loop::Control(int op, int fd, uint32_t events,
                              Watcher* watcher) {
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.ptr = watcher;
  return ::epoll_ctl(epoll_fd_, op, fd, &ev) == 0;
}

bool EventLoop::Loop::Watch(int fd, uint32_t events, Watcher* watcher) {
  return Control(EPOLL_CTL_ADD, fd, events, watcher);
}

bool EventLoop::Loop::Rewatch(int fd, uint32_t events, Watcher* watcher) {
  return Control(EPOLL_CTL_MOD, fd, events, watcher);
}

void EventLoop::Loop::Unwatch(int fd) {
  Control(EPOLL_CTL_DEL, fd, 0, nullptr);
}

std::unique_ptr<handlers::Timer> EventLoop::Loop::At(
    absl::Time deadline, std::function<void()> fire) {
  auto state = std::make_shared<TimerState>();
  bool earliest = false;
  {
    MutexLock lock(&mu_);
    state->fire = std::move(fire);
    state->where = timers_.emplace(deadline, state);
    state->armed = true;
    earliest = state->where == timers_.begin() && !woken_ && !RunsHere();
    if (earliest) woken_ = true;
  }
  // A new first deadline: the loop's wait must end sooner.
  if (earliest) Wake();
  return std::make_unique<LoopTimer>(this, std::move(state));
}

void EventLoop::Loop::Cancel(const std::shared_ptr<TimerState>& state) {
  std::function<void()> fire;
  {
    MutexLock lock(&mu_);
    if (!state->armed) return;
    state->armed = false;
    timers_.erase(state->where);
    fire = std::move(state->fire);
  }
  // What `fire` holds is let go on the loop's thread, as after a firing.
  if (!RunsHere()) Post([dropped = std::move(fire)] {});
}

void EventLoop::Loop::RunPosted() {
  std::vector<std::function<void()>> batch;
  {
    MutexLock lock(&mu_);
    if (posted_.empty()) return;
    batch.swap(posted_);
  }
  for (std::function<void()>& fn : batch) Guarded(fn);
}

void EventLoop::Loop::FireTimers() {
  std::vector<std::function<void()>> due;
  {
    MutexLock lock(&mu_);
    if (timers_.empty()) return;
    const absl::Time now = absl::Now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto node = timers_.begin();
      node->second->armed = false;
      due.push_back(std::move(node->second->fire));
      timers_.erase(node);
    }
  }
  for (std::function<void()>& fn : due) Guarded(fn);
}

int EventLoop::Loop::WaitMillis() {
  if (!deferred_.empty()) return 0;
  absl::Time first;
  {
    MutexLock lock(&mu_);
    if (!posted_.empty()) return 0;
    if (timers_.empty()) return -1;
    first = timers_.begin()->first;
  }
  const absl::Duration wait = first - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  // Rounded up: a timer never fires early.
  const int64_t millis =
      absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(millis, INT_MAX));
}

void EventLoop::Loop::Run() {
  current_loop = this;
  std::array<epoll_event, 128> events;
  while (!stopping_.load(std::memory_order_acquire)) {
    RunPosted();
    const int n = ::epoll_wait(epoll_fd_, events.data(),
                               static_cast<int>(events.size()), WaitMillis());
    if (n < 0 && errno != EINTR) {
      SPDLOG_ERROR("event loop: epoll_wait failed: {}", std::strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      auto* watcher = static_cast<Watcher*>(events[i].data.ptr);
      if (watcher == nullptr) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof count);
        MutexLock lock(&mu_);
        woken_ = false;
        continue;
      }
      Guarded([&] { watcher->OnEvents(events[i].events); });
    }
    // The end of the pass: what the ready descriptors' handlers deferred.
    while (!deferred_.empty()) {
      std::vector<std::function<void()>> batch;
      batch.swap(deferred_);
      for (std::function<void()>& fn : batch) Guarded(fn);
    }
    FireTimers();
  }
}

void EventLoop::Loop::Stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable()) thread_.join();
    return;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
}

EventLoop::EventLoop(int threads) : work_(asio::make_work_guard(io_)) {
  threads = std::max(threads, 1);
  for (int i = 0; i < threads; ++i) {
    loops_.push_back(std::make_unique<Loop>(this));
  }
  for (const std::unique_ptr<Loop>& loop : loops_) {
    loop->thread_ = std::thread([loop = loop.get()] { loop->Run(); });
  }
  io_thread_ = std::thread([this] {
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

EventLoop::~EventLoop() { Stop(); }

EventLoop::Loop& EventLoop::Next() {
  return *loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
}

std::unique_ptr<handlers::Timer> EventLoop::At(absl::Time deadline,
                                               std::function<void()> fire) {
  Loop& loop = current_loop != nullptr && current_loop->owner_ == this
                   ? *current_loop
                   : Next();
  return loop.At(deadline, std::move(fire));
}

void EventLoop::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (const std::unique_ptr<Loop>& loop : loops_) loop->Stop();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

}  // namespace statehub::lane
