#include "server/engine/changes.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace statehub {
namespace {
thread_local SessionId current_author = 0;
thread_local NumberedCall* current_call = nullptr;
}  // namespace

void ChangeStream::set_sink(ChangeSink* sink) {
  MutexLock lock(&mu_);
  sink_.store(sink, std::memory_order_release);
  recording_.store(sink != nullptr || listener_.load(std::memory_order_relaxed),
                   std::memory_order_release);
}

uint64_t ChangeStream::set_listener(ChangeSink* listener) {
  MutexLock lock(&mu_);
  listener_.store(listener, std::memory_order_release);
  recording_.store(listener != nullptr || sink_.load(std::memory_order_relaxed),
                   std::memory_order_release);
  return revision_.load(std::memory_order_relaxed);
}

void ChangeStream::Deliver(const v1::ChangeRecord& record) {
  if (ChangeSink* sink = sink_.load(std::memory_order_relaxed)) {
    sink->Write(record);
  }
  if (ChangeSink* listener = listener_.load(std::memory_order_relaxed)) {
    listener->Write(record);
  }
}

void ChangeStream::DeliverGroup(absl::Span<const v1::ChangeRecord> records) {
  if (ChangeSink* sink = sink_.load(std::memory_order_relaxed)) {
    sink->WriteGroup(records);
  }
  if (ChangeSink* listener = listener_.load(std::memory_order_relaxed)) {
    listener->WriteGroup(records);
  }
}

uint64_t ChangeStream::Publish(v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  if (!recording_.load(std::memory_order_relaxed)) return 0;
  const uint64_t revision = revision_.load(std::memory_order_relaxed) + 1;
  record.set_revision(revision);
  if (record.session() == 0) record.set_session(current_author);
  NumberedCall* call = current_call;
  if (call != nullptr && !call->closed_) {
    record.set_call(call->number_);
    if (call->first_ == 0) {
      call->first_ = revision;
      calls_.emplace(revision, 0);
    }
    call->last_ = revision;
  }
  if (calls_.empty()) {
    Deliver(record);
  } else {
    held_.push_back(record);
  }
  // Published after the sink has the record (or holds it back), so a
  // reader of revision() that waits for it never waits for a record the
  // sink will not see.
  revision_.store(revision, std::memory_order_release);
  return revision;
}

void ChangeStream::Close(uint64_t first, uint64_t last) {
  MutexLock lock(&mu_);
  calls_[first] = last;
  // The held records below `end` can go: no open call has a record below
  // it, and no call that closed has records on both sides of it (a crash
  // between two groups would keep its changes without its answer).
  uint64_t end = UINT64_MAX;
  uint64_t reach = 0;  // the last revision of the calls passed so far
  uint64_t gap = 0;    // the latest call start that no earlier call reaches
  for (const auto& [call_first, call_last] : calls_) {
    if (call_first > reach) gap = call_first;
    if (call_last == 0) {
      end = gap;
      break;
    }
    reach = std::max(reach, call_last);
  }
  std::vector<v1::ChangeRecord> ready;
  while (!held_.empty() && held_.front().revision() < end) {
    ready.push_back(std::move(held_.front()));
    held_.pop_front();
  }
  calls_.erase(calls_.begin(), calls_.lower_bound(end));
  if (ready.empty()) return;
  for (size_t i = 0; i + 1 < ready.size(); ++i) ready[i].set_more(true);
  DeliverGroup(ready);
}

void ChangeStream::AfterCommit(ChangeSink::Done done, bool read_only) const {
  ChangeSink* sink = sink_.load(std::memory_order_acquire);
  if (sink == nullptr || (read_only && !sink->health().ok())) {
    done(absl::OkStatus());
    return;
  }
  sink->WhenDurable(revision(), std::move(done));
}

absl::Status ChangeStream::health() const {
  ChangeSink* sink = sink_.load(std::memory_order_acquire);
  return sink == nullptr ? absl::OkStatus() : sink->health();
}

bool ChangeStream::commits_inline() const {
  ChangeSink* sink = sink_.load(std::memory_order_acquire);
  return sink == nullptr || sink->answers_inline();
}

void ChangeStream::RunLocked(absl::FunctionRef<void(uint64_t)> fn) {
  MutexLock lock(&mu_);
  fn(revision_.load(std::memory_order_relaxed));
}

void ChangeStream::set_revision(uint64_t revision) {
  MutexLock lock(&mu_);
  revision_.store(revision, std::memory_order_release);
}

NumberedCall::NumberedCall(ChangeStream& stream, SessionId session,
                           uint64_t number)
    : stream_(stream),
      session_(session),
      number_(number),
      previous_(current_call) {
  current_call = this;
}

NumberedCall::~NumberedCall() {
  if (!closed_) {
    closed_ = true;
    if (first_ != 0) stream_.Close(first_, last_);
  }
  current_call = previous_;
}

NumberedCall* NumberedCall::Current() { return current_call; }

void NumberedCall::Answer(v1::ChangeRecord& answer) {
  if (closed_) return;
  if (first_ != 0) {
    answer.set_session(session_);
    stream_.Publish(answer);
  }
  closed_ = true;
  if (first_ != 0) stream_.Close(first_, last_);
}

ChangeAuthor::ChangeAuthor(SessionId session) : previous_(current_author) {
  current_author = session;
}

ChangeAuthor::~ChangeAuthor() { current_author = previous_; }

SessionId ChangeAuthor::Current() { return current_author; }

}  // namespace statehub
