#include "server/engine/changes.h"

namespace statehub {
namespace {
thread_local SessionId current_author = 0;
}  // namespace

void ChangeStream::set_sink(ChangeSink* sink) {
  MutexLock lock(&mu_);
  sink_.store(sink, std::memory_order_release);
}

uint64_t ChangeStream::Publish(v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  ChangeSink* sink = sink_.load(std::memory_order_relaxed);
  if (sink == nullptr) return 0;
  const uint64_t revision = revision_.load(std::memory_order_relaxed) + 1;
  record.set_revision(revision);
  if (record.session() == 0) record.set_session(current_author);
  sink->Write(record);
  // Published after the sink has the record, so a reader of revision()
  // never waits for a record the sink has not seen.
  revision_.store(revision, std::memory_order_release);
  return revision;
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

void ChangeStream::RunLocked(absl::FunctionRef<void(uint64_t)> fn) {
  MutexLock lock(&mu_);
  fn(revision_.load(std::memory_order_relaxed));
}

void ChangeStream::set_revision(uint64_t revision) {
  MutexLock lock(&mu_);
  revision_.store(revision, std::memory_order_release);
}

ChangeAuthor::ChangeAuthor(SessionId session) : previous_(current_author) {
  current_author = session;
}

ChangeAuthor::~ChangeAuthor() { current_author = previous_; }

SessionId ChangeAuthor::Current() { return current_author; }

}  // namespace statehub
