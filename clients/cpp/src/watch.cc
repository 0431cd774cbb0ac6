#include "statehub/watch.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core.h"
#include "statehub/internal/value_codec.h"
#include "statehub/status.h"
#include "statehub/v1/change.pb.h"
#include "statehub/v1/watch.pb.h"
#include "watch_stream.h"

namespace statehub {
namespace client_internal {
namespace {

// The pause between attempts to resume a broken watch: it grows from the
// first to the last.
constexpr absl::Duration kFirstPause = absl::Milliseconds(50);
constexpr absl::Duration kLastPause = absl::Seconds(1);
// How long one attempt to resume may wait for the server, so that Close
// is noticed soon even while the server is away.
constexpr absl::Duration kAttempt = absl::Seconds(1);

absl::Status ClosedError() {
  return absl::CancelledError("statehub: the watch is closed");
}

absl::StatusOr<Value> Decode(const v1::Value& wire) {
  // Refs in events carry no hold: the server granted none for them.
  return internal::DecodeValue(wire, kMaxDecodeDepth);
}

absl::StatusOr<Value::Items> DecodeAll(
    const google::protobuf::RepeatedPtrField<v1::Value>& wire) {
  Value::Items items;
  items.reserve(wire.size());
  for (const v1::Value& item : wire) {
    STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(item));
    items.push_back(std::move(value));
  }
  return items;
}

Value TypeValue(v1::ObjectType type) {
  return Value(std::string(ObjectTypeName(internal::FromWire(type))));
}

// AppendEvents turns one change record into the events it means (as the
// Python client's _Decoder.events does), appended to `out`.
absl::Status AppendEvents(const v1::ChangeRecord& record,
                          const std::string& label,
                          std::deque<WatchEvent>* out) {
  auto event = [&](WatchOp op, Value key = {}, Value value = {},
                   int64_t removed = 0) {
    out->push_back(WatchEvent{record.revision(), op, std::move(key),
                              std::move(value), label, record.object(),
                              removed});
  };
  switch (record.change_case()) {
    case v1::ChangeRecord::kEntriesSet:
      for (const v1::MapEntry& entry : record.entries_set().entries()) {
        STATEHUB_ASSIGN_OR_RETURN(Value key, Decode(entry.key()));
        STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(entry.value()));
        event(WatchOp::kSet, std::move(key), std::move(value));
      }
      break;
    case v1::ChangeRecord::kEntriesRemoved: {
      const WatchOp op = record.entries_removed().expired() ? WatchOp::kExpire
                                                            : WatchOp::kDelete;
      for (const v1::Value& wire : record.entries_removed().keys()) {
        STATEHUB_ASSIGN_OR_RETURN(Value key, Decode(wire));
        event(op, std::move(key));
      }
      break;
    }
    case v1::ChangeRecord::kItemsSpliced: {
      const v1::ItemsSpliced& s = record.items_spliced();
      STATEHUB_ASSIGN_OR_RETURN(Value::Items items, DecodeAll(s.items()));
      const Value start(static_cast<int64_t>(s.start()));
      if (s.removed() == 1 && items.size() == 1) {
        event(WatchOp::kSet, start, std::move(items[0]));
      } else if (s.removed() == 0) {
        event(WatchOp::kInsert, start, Value::List(std::move(items)));
      } else if (items.empty()) {
        event(WatchOp::kRemove, start, Value(), s.removed());
      } else {
        event(WatchOp::kSplice, start, Value::List(std::move(items)),
              s.removed());
      }
      break;
    }
    case v1::ChangeRecord::kCellSet: {
      STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(record.cell_set().value()));
      event(WatchOp::kSet, Value(), std::move(value));
      break;
    }
    case v1::ChangeRecord::kCleared:
      event(WatchOp::kClear);
      break;
    case v1::ChangeRecord::kCreated:
      event(WatchOp::kCreated, Value(), TypeValue(record.created().type()));
      break;
    case v1::ChangeRecord::kDeleted:
      event(WatchOp::kDeleted);
      break;
    case v1::ChangeRecord::kQueuePut: {
      STATEHUB_ASSIGN_OR_RETURN(Value item, Decode(record.queue_put().item()));
      event(WatchOp::kPut, Value(), std::move(item));
      break;
    }
    case v1::ChangeRecord::kQueueTaken:
      event(WatchOp::kGet);
      break;
    case v1::ChangeRecord::kTasksChanged:
      event(WatchOp::kTasks, Value(),
            Value(static_cast<int64_t>(record.tasks_changed().unfinished())));
      break;
    case v1::ChangeRecord::kLockChanged:
      if (record.lock_changed().held()) {
        event(WatchOp::kAcquire, Value(),
              Value(record.lock_changed().holder_label()));
      } else {
        event(WatchOp::kRelease);
      }
      break;
    case v1::ChangeRecord::kSemaphoreChanged:
      event(WatchOp::kSemaphore, Value(),
            Value(static_cast<int64_t>(record.semaphore_changed().value())));
      break;
    case v1::ChangeRecord::kEventChanged:
      event(record.event_changed().set() ? WatchOp::kSet : WatchOp::kClear);
      break;
    case v1::ChangeRecord::kBarrierChanged:
      event(WatchOp::kBarrier, Value(),
            Value(static_cast<int64_t>(record.barrier_changed().generation())));
      break;
    default:
      event(WatchOp::kUnknown);
      break;
  }
  return absl::OkStatus();
}

// DecodeInitial reads a started response's initial records (watch.proto,
// WatchResponse.initial).
absl::StatusOr<WatchContents> DecodeInitial(
    const google::protobuf::RepeatedPtrField<v1::ChangeRecord>& records,
    bool by_prefix) {
  WatchContents contents;
  for (const v1::ChangeRecord& record : records) {
    if (!record.has_created()) continue;
    const v1::ObjectCreated& created = record.created();
    if (by_prefix) {
      contents.objects.emplace_back(record.object(),
                                    internal::FromWire(created.type()));
      continue;
    }
    contents.type = internal::FromWire(created.type());
    for (const v1::MapEntry& entry : created.entries()) {
      STATEHUB_ASSIGN_OR_RETURN(Value key, Decode(entry.key()));
      STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(entry.value()));
      contents.entries.emplace_back(std::move(key), std::move(value));
    }
    STATEHUB_ASSIGN_OR_RETURN(contents.items, DecodeAll(created.items()));
    if (created.has_value()) {
      STATEHUB_ASSIGN_OR_RETURN(contents.value, Decode(created.value()));
    }
    break;  // the records after it are the object's state
  }
  return contents;
}

}  // namespace

// WatchState is a Watch's all: the stream it reads, the events it has
// taken from it and not yet returned, and what it needs to watch again.
class WatchState {
 public:
  WatchState(std::shared_ptr<Core> core, v1::WatchRequest request,
             absl::Duration resume_for)
      : core_(std::move(core)),
        request_(std::move(request)),
        by_prefix_(request_.has_prefix()),
        resume_for_(resume_for) {}

  WatchState(const WatchState&) = delete;
  WatchState& operator=(const WatchState&) = delete;

  ~WatchState() { Close(); }

  // Start opens the stream and reads its started response by `deadline`.
  absl::Status Start(absl::Time deadline) {
    STATEHUB_ASSIGN_OR_RETURN(std::unique_ptr<WatchStream> opened,
                              core_->OpenWatch(request_, false, deadline));
    std::shared_ptr<WatchStream> stream = std::move(opened);
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream;
    }
    absl::StatusOr<std::optional<v1::WatchResponse>> first =
        stream->Next(deadline);
    if (!first.ok()) return first.status();
    if (!first->has_value()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "statehub: ", core_->address(), " did not start the watch in time"));
    }
    const v1::WatchResponse& started = **first;
    if (!started.started()) {
      return absl::InternalError(
          "statehub: the server's first watch response is not its start");
    }
    start_revision_ = started.revision();
    stream_revision_ = started.revision();
    revision_.store(started.revision());
    if (request_.initial()) {
      STATEHUB_ASSIGN_OR_RETURN(initial_,
                                DecodeInitial(started.initial(), by_prefix_));
    }
    return Take(started);
  }

  absl::StatusOr<std::optional<WatchEvent>> Next(absl::Duration timeout) {
    const absl::Time deadline = timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + timeout;
    while (events_.empty()) {
      if (!ended_.ok()) return ended_;
      if (closed()) return ClosedError();
      absl::StatusOr<std::optional<v1::WatchResponse>> response =
          stream()->Next(deadline);
      if (!response.ok()) {
        if (closed()) return ClosedError();
        if (!Broke(response.status()) || resume_for_ <= absl::ZeroDuration()) {
          return End(response.status());
        }
        if (absl::Status s = Resume(response.status()); !s.ok()) {
          return End(s);
        }
        continue;
      }
      if (!response->has_value()) {
        if (absl::Now() >= deadline) return std::nullopt;
        continue;
      }
      if (absl::Status s = Take(**response); !s.ok()) return End(s);
    }
    WatchEvent event = std::move(events_.front());
    events_.pop_front();
    UpdateRevision();
    return event;
  }

  void Close() {
    std::shared_ptr<WatchStream> stream;
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
      stream = stream_;
      cv_.SignalAll();
    }
    if (stream != nullptr) stream->Close();
  }

  uint64_t revision() const { return revision_.load(); }
  uint64_t start_revision() const { return start_revision_; }
  const WatchContents& initial() const { return initial_; }

 private:
  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

  std::shared_ptr<WatchStream> stream() const {
    absl::MutexLock lock(&mu_);
    return stream_;
  }

  absl::Status End(absl::Status status) {
    ended_ = std::move(status);
    return ended_;
  }

  // Take queues the events of `response` and notes its revision.
  absl::Status Take(const v1::WatchResponse& response) {
    for (const v1::WatchEvent& event : response.events()) {
      if (absl::Status s =
              AppendEvents(event.change(), event.session_label(), &events_);
          !s.ok()) {
        return s;
      }
    }
    stream_revision_ = std::max(stream_revision_, response.revision());
    UpdateRevision();
    return absl::OkStatus();
  }

  // UpdateRevision sets revision_ to the last revision whose changes Next
  // has all returned: just before the first event not yet returned, or, with
  // none left, as far as the stream has gone.
  void UpdateRevision() {
    revision_.store(events_.empty() ? stream_revision_
                                    : events_.front().revision - 1);
  }

  // Pause waits until `until`; false if the watch was closed.
  bool Pause(absl::Time until) {
    absl::MutexLock lock(&mu_);
    while (!closed_) {
      if (cv_.WaitWithDeadline(&mu_, until)) break;
    }
    return !closed_;
  }

  // Resume watches again from stream_revision_ on a new stream, after the
  // last one broke with `broke`, for up to resume_for_. Errors: CANCELLED
  // once closed; the server's refusal (WATCH_TOO_OLD, OBJECT_NOT_FOUND);
  // UNAVAILABLE past resume_for_.
  absl::Status Resume(const absl::Status& broke) {
    if (std::shared_ptr<WatchStream> old = stream(); old != nullptr) {
      old->Close();
    }
    v1::WatchRequest request = request_;
    request.set_initial(false);
    request.set_since(stream_revision_);
    const absl::Time give_up = absl::Now() + resume_for_;
    absl::Duration pause = kFirstPause;
    absl::Status last = broke;
    // Worth another attempt: the server is away, or not yet the one that
    // knows our session.
    auto passing = [](const absl::Status& s) {
      return Broke(s) || absl::IsDeadlineExceeded(s) ||
             GetErrorKind(s) == ErrorKind::kSessionError;
    };
    while (true) {
      if (closed()) return ClosedError();
      const absl::Time attempt = std::min(give_up, absl::Now() + kAttempt);
      absl::StatusOr<std::unique_ptr<WatchStream>> opened =
          core_->OpenWatch(request, true, attempt);
      if (opened.ok()) {
        std::shared_ptr<WatchStream> stream = *std::move(opened);
        std::shared_ptr<WatchStream> old;
        {
          absl::MutexLock lock(&mu_);
          if (!closed_) old = std::exchange(stream_, stream);
        }
        // Destroyed out of the lock: a gRPC stream joins its thread.
        old.reset();
        if (closed()) {
          stream->Close();
          return ClosedError();
        }
        absl::StatusOr<std::optional<v1::WatchResponse>> first =
            stream->Next(std::max(attempt, absl::Now() + kAttempt));
        if (first.ok() && first->has_value() && (*first)->started()) {
          return Take(**first);
        }
        if (first.ok()) {
          stream->Close();
          last = absl::UnavailableError(
              "statehub: the server did not start the watch again in time");
        } else if (closed()) {
          return ClosedError();
        } else if (!passing(first.status())) {
          return first.status();
        } else {
          last = first.status();
        }
      } else if (!passing(opened.status())) {
        return opened.status();
      } else {
        last = opened.status();
      }
      const absl::Time now = absl::Now();
      if (now + pause > give_up) {
        return absl::UnavailableError(absl::StrCat(
            "statehub: a watch of ", core_->address(),
            " broke and could not go on within ",
            absl::FormatDuration(resume_for_), ": ", last.message()));
      }
      if (!Pause(now + pause)) return ClosedError();
      pause = std::min(pause * 2, kLastPause);
    }
  }

  const std::shared_ptr<Core> core_;
  const v1::WatchRequest request_;
  const bool by_prefix_;
  const absl::Duration resume_for_;
  // Set by Start, then only read.
  uint64_t start_revision_ = 0;
  WatchContents initial_;
  // revision_ is revision(): read from any thread.
  std::atomic<uint64_t> revision_{0};

  // The reader's own (Next, one thread at a time).
  // stream_revision_: every change up to it is in events_ or returned.
  uint64_t stream_revision_ = 0;
  std::deque<WatchEvent> events_;
  // ended_ is the error that ended the watch; OK while it goes on.
  absl::Status ended_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // stream_ is replaced by the reader when it resumes; Close reaches it
  // from any thread.
  std::shared_ptr<WatchStream> stream_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<Watch> StartWatch(const std::shared_ptr<Core>& core,
                                 absl::string_view name, bool by_prefix,
                                 const WatchOptions& options) {
  if (core == nullptr) return MovedFromError();
  const absl::Duration timeout = core->options().call_timeout;
  return StartWatch(core, name, by_prefix, options,
                    timeout == absl::InfiniteDuration()
                        ? absl::InfiniteFuture()
                        : absl::Now() + timeout);
}

absl::StatusOr<Watch> StartWatch(const std::shared_ptr<Core>& core,
                                 absl::string_view name, bool by_prefix,
                                 const WatchOptions& options,
                                 absl::Time deadline) {
  if (core == nullptr) return MovedFromError();
  v1::WatchRequest request;
  if (by_prefix) {
    request.set_prefix(std::string(name));
  } else {
    request.set_name(std::string(name));
  }
  if (options.since.has_value()) request.set_since(*options.since);
  request.set_initial(options.initial);
  auto state = std::make_unique<WatchState>(core, std::move(request),
                                            options.resume_for);
  STATEHUB_RETURN_IF_ERROR(state->Start(deadline));
  return Watch(std::move(state));
}

}  // namespace client_internal

absl::string_view WatchOpName(WatchOp op) {
  switch (op) {
    case WatchOp::kSet:
      return "set";
    case WatchOp::kDelete:
      return "delete";
    case WatchOp::kExpire:
      return "expire";
    case WatchOp::kClear:
      return "clear";
    case WatchOp::kInsert:
      return "insert";
    case WatchOp::kRemove:
      return "remove";
    case WatchOp::kSplice:
      return "splice";
    case WatchOp::kPut:
      return "put";
    case WatchOp::kGet:
      return "get";
    case WatchOp::kTasks:
      return "tasks";
    case WatchOp::kAcquire:
      return "acquire";
    case WatchOp::kRelease:
      return "release";
    case WatchOp::kSemaphore:
      return "semaphore";
    case WatchOp::kBarrier:
      return "barrier";
    case WatchOp::kCreated:
      return "created";
    case WatchOp::kDeleted:
      return "deleted";
    case WatchOp::kUnknown:
      break;
  }
  return "unknown";
}

Watch::Watch(std::unique_ptr<client_internal::WatchState> state)
    : state_(std::move(state)) {}

Watch::Watch(Watch&& other) noexcept = default;

Watch& Watch::operator=(Watch&& other) noexcept {
  if (this != &other) {
    Close();
    state_ = std::move(other.state_);
  }
  return *this;
}

Watch::~Watch() = default;

absl::StatusOr<std::optional<WatchEvent>> Watch::Next(absl::Duration timeout) {
  if (state_ == nullptr) return client_internal::MovedFromError();
  return state_->Next(timeout);
}

void Watch::Close() {
  if (state_ != nullptr) state_->Close();
}

uint64_t Watch::revision() const {
  return state_ == nullptr ? 0 : state_->revision();
}

uint64_t Watch::start_revision() const {
  return state_ == nullptr ? 0 : state_->start_revision();
}

const WatchContents& Watch::initial() const {
  static const WatchContents* const empty = new WatchContents;
  return state_ == nullptr ? *empty : state_->initial();
}

}  // namespace statehub
