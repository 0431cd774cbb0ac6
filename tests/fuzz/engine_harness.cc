#include "tests/fuzz/engine_harness.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "server/engine/registry.h"
#include "server/engine/sessions.h"
#include "statehub/status.h"
#include "tests/fuzz/check.h"
#include "tests/fuzz/error_kinds.h"

namespace statehub::fuzz {
namespace {

const std::string kTypecodes[] = {"b", "B", "h", "H", "i", "I", "l", "L",
                                  "q", "Q", "f", "d", "u", "c", "x", ""};

// SetText makes `text` a string value, or a bytes value if it is not UTF-8
// (no transport would deliver such a string: protobuf refuses to parse it).
void SetText(std::string text, v1::Value* out) {
  if (IsUtf8(text)) {
    out->set_string_value(std::move(text));
  } else {
    out->set_bytes_value(std::move(text));
  }
}

}  // namespace

bool Tracing() {
  static const bool tracing = std::getenv("STATEHUB_FUZZ_TRACE") != nullptr;
  return tracing;
}

// Small limits, so that every limit is within a fuzzer's reach.
Limits FuzzLimits() {
  Limits limits;
  limits.max_value_bytes = 64 << 10;
  limits.max_objects = 48;
  limits.max_elements = 256;
  limits.max_sessions = 4;
  limits.max_waiters_per_session = 8;
  return limits;
}

Harness::Harness() = default;

std::string Harness::Name(Input& in) {
  const uint8_t b = in.Byte() % 16;
  if (b < 8) return std::string(1, static_cast<char>('a' + b));
  switch (b) {
    case 8:
      return "";
    case 9:
    case 10:
    case 11:
      if (anonymous_.empty()) return "_anon/dict/1";
      return anonymous_[anonymous_.size() - 1 - (b - 9) % anonymous_.size()];
    case 12:
      return "bad name";
    case 13:
      return std::string(257, 'x');
    case 14:
      return "_anon/none";
    default:
      return "a/b";
  }
}

// 0: no session; 4: a malformed session id; 1-3 and 5-7: a slot's
// session, over gRPC (1-3) or the lane (5-7), whose parked calls differ
// only when cancelled (parked_call.h).
Who Harness::From(Input& in) {
  const uint8_t b = in.Byte() % 8;
  if (b == 0) return Who{};
  if (b == 4) return Who{"not-a-session"};
  const SessionId id = slots_[(b - 1) % kSlots];
  if (id == 0) return Who{};
  return Who{SessionTable::FormatId(id), Live(id) ? id : 0,
             b < 4 ? handlers::Transport::kGrpc : handlers::Transport::kLane};
}

void Harness::BuildValue(Input& in, v1::Value* out, int depth) {
  if (depth >= 12) return;  // null
  const uint8_t kind = in.Byte() % 14;
  switch (kind) {
    case 0:
      return;
    case 1:
      out->set_bool_value(in.Bit());
      return;
    case 2:
      out->set_int_value(in.Int());
      return;
    case 3:
      out->set_double_value(in.Pick(kDoubles));
      return;
    case 4:
      SetText(in.Pick(kStrings), out);
      return;
    case 5:
      out->set_bytes_value(in.Pick(kStrings));
      return;
    case 6:
    case 7: {
      v1::ValueList* list =
          kind == 6 ? out->mutable_list_value() : out->mutable_tuple_value();
      for (int n = in.Byte() % 5; n > 0; --n) {
        BuildValue(in, list->add_items(), depth + 1);
      }
      return;
    }
    case 8:
      for (int n = in.Byte() % 5; n > 0; --n) {
        v1::MapEntry* entry = out->mutable_map_value()->add_entries();
        BuildValue(in, entry->mutable_key(), depth + 1);
        BuildValue(in, entry->mutable_value(), depth + 1);
      }
      out->mutable_map_value();
      return;
    case 9: {
      v1::ObjectRef* ref = out->mutable_ref_value();
      ref->set_name(Name(in));
      ref->set_type(static_cast<v1::ObjectType>(in.Byte() % 16));
      return;
    }
    case 10:
      out->mutable_blob_value()->set_codec(in.Pick(kCodecs));
      out->mutable_blob_value()->set_data(in.Pick(kStrings));
      return;
    case 11: {
      v1::Value* inner = out;
      for (int n = in.Byte(); n > 0; --n) {
        inner = inner->mutable_list_value()->add_items();
      }
      inner->set_int_value(1);
      return;
    }
    case 12:
      out->set_string_value(std::string(size_t{in.Byte()} * 512, 'b'));
      return;
    default:
      SetText(in.Raw(in.Byte() % 32), out);
      return;
  }
}

void Harness::BuildSubscript(Input& in, v1::Subscript* out) {
  const uint8_t b = in.Byte();
  if (b & 1) {
    out->set_index(in.Int());
    return;
  }
  v1::Slice* slice = out->mutable_slice();
  if (b & 2) slice->set_start(in.Int());
  if (b & 4) slice->set_stop(in.Int());
  if (b & 8) slice->set_step(in.Int());
}

void Harness::NoteAnonymous(const std::string& name) {
  for (const std::string& seen : anonymous_) {
    if (seen == name) return;
  }
  if (anonymous_.size() == kMaxAnonymous) anonymous_.erase(anonymous_.begin());
  anonymous_.push_back(name);
}

void Harness::Trace(absl::string_view what, const std::string& object,
                    const Who& who, const absl::Status& status) const {
  if (!Tracing()) return;
  std::fprintf(stderr, "  %s \"%s\" from %s%s: %s\n", std::string(what).c_str(),
               object.c_str(), who.id.empty() ? "-" : who.id.c_str(),
               who.transport == handlers::Transport::kLane ? " (lane)" : "",
               status.ToString().c_str());
}

void Harness::CheckOutcome(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return;
  const std::string code = absl::StatusCodeToString(status.code());
  const absl::string_view message = status.message();
  FUZZ_CHECK(!message.empty(), "%s: status %s without a message", what, code);
  // ParkedCall's own status for a cancelled call: no client reads it.
  if (absl::IsCancelled(status)) return;
  // What both transports send (the statehub-error-bin trailer, the lane's
  // LaneError.detail).
  const std::string wire = SerializeErrorDetail(status);
  v1::ErrorDetail detail;
  FUZZ_CHECK(!wire.empty() && detail.ParseFromString(wire),
             "%s: status %s '%s' carries no error detail", what, code, message);
  FUZZ_CHECK(KindAgrees(detail.kind(), status.code()),
             "%s: status %s with kind %s ('%s')", what, code,
             v1::ErrorKind_Name(detail.kind()), message);
  if (!detail.object().empty()) {
    FUZZ_CHECK(absl::StrContains(message, detail.object()),
               "%s: '%s' does not name object \"%s\"", what, message,
               detail.object());
  }
  if (detail.kind() == v1::LIMIT_EXCEEDED) {
    FUZZ_CHECK(!detail.limit().empty(), "%s: '%s' names no limit", what,
               message);
  }
}

void Harness::Run(Input& in) {
  for (size_t ops = 0; ops < kMaxOps && !in.done(); ++ops) Step(in);
}

void Harness::Step(Input& in) {
  const auto op = static_cast<Op>(in.Byte() % kOpCount);
  if (Tracing()) std::fprintf(stderr, "op %d\n", static_cast<int>(op));
  switch (op) {
    case kSessionOpen:
    case kSessionKeepalive:
    case kSessionRelease:
    case kSessionGoodbye:
    case kSessionsExpire:
      SessionOp(op, in);
      break;
    case kOpen:
      Open(in);
      break;
    case kDelete: {
      const Who who = From(in);
      v1::DeleteRequest req;
      req.set_name(Name(in));
      const Outcome out = Call(objects_, &handlers::ObjectsHandlers::Delete,
                               who, req, "delete");
      auto it = named_.find(req.name());
      if (out.ok()) {
        FUZZ_CHECK(it != named_.end() ||
                       absl::StartsWith(req.name(), kAnonymousPrefix),
                   "deleted \"%s\", which was never opened", req.name());
        if (it != named_.end()) named_.erase(it);
        tokens_.erase(req.name());
        ++deletions_[req.name()];
      } else if (absl::IsNotFound(out.status)) {
        FUZZ_CHECK(it == named_.end(), "\"%s\" was opened, yet not found",
                   req.name());
      }
      break;
    }
    case kList: {
      const Who who = From(in);
      v1::ListObjectsRequest req;
      if (in.Bit()) req.set_prefix(Name(in));
      req.set_include_anonymous(in.Bit());
      v1::ListObjectsResponse resp;
      const Outcome out = Call(objects_, &handlers::ObjectsHandlers::List, who,
                               req, &resp, "list");
      if (who.admitted()) {
        FUZZ_CHECK(out.ok(), "list failed: %s", out.status.message());
      }
      for (const v1::ObjectInfo& info : resp.objects()) {
        FUZZ_CHECK(absl::StartsWith(info.name(), req.prefix()),
                   "\"%s\" listed for prefix \"%s\"", info.name(),
                   req.prefix());
      }
      break;
    }
    case kDescribe: {
      const Who who = From(in);
      v1::DescribeRequest req;
      req.set_name(Name(in));
      v1::DescribeResponse resp;
      const Outcome out = Call(objects_, &handlers::ObjectsHandlers::Describe,
                               who, req, &resp, "describe");
      auto it = named_.find(req.name());
      if (it != named_.end() && who.admitted()) {
        FUZZ_CHECK(out.ok() && resp.info().type() == it->second,
                   "describe \"%s\": %s", req.name(), out.status.message());
      }
      break;
    }
    case kCancel:
      Cancel(in);
      break;
    case kRetire:
      Retire(/*all=*/false);
      break;
    default:
      if (op <= kDictGetAndSet) {
        DictOp(op, in);
      } else if (op <= kListRepeat) {
        ListOp(op, in);
      } else if (op <= kArraySet) {
        CellOp(op, in);
      } else if (op <= kBarrierState) {
        SyncOp(op, in);
      } else {
        QueueOp(op, in);
      }
  }
  // Timeouts are due by the real clock: a zero one now, a long one never
  // within a run.
  timers_.FireDue(absl::Now());
  if (pending_.size() > kMaxPending) Retire(/*all=*/false);
  CheckAll();
}

void Harness::SessionOp(Op op, Input& in) {
  const int slot = in.Byte() % kSlots;
  const SessionId id = slots_[slot];
  const absl::Time now = absl::Now();
  if (Tracing()) {
    std::fprintf(stderr, "  session op on slot %d (%s)\n", slot,
                 id == 0 ? "-" : SessionTable::FormatId(id).c_str());
  }
  switch (op) {
    case kSessionOpen: {
      // Hello: resume the slot's session (if it is live) or begin one.
      const SessionId resume = in.Bit() ? id : 0;
      absl::StatusOr<SessionTable::Opened> opened =
          engine_.sessions().Open(resume, in.Pick(kLabels), now);
      if (!opened.ok()) {
        FUZZ_CHECK(GetErrorKind(opened.status()) == ErrorKind::kLimitExceeded,
                   "session open: %s", opened.status().ToString());
        break;
      }
      FUZZ_CHECK(!opened->resumed || opened->id == resume,
                 "resumed another session");
      slots_[slot] = opened->id;
      break;
    }
    case kSessionKeepalive:
      if (id != 0) engine_.sessions().Touch(id, now);
      break;
    case kSessionRelease: {
      std::vector<std::string> names;
      for (int n = in.Byte() % 4; n > 0; --n) names.push_back(Name(in));
      if (id != 0 && engine_.sessions().Touch(id, now)) {
        engine_.registry().ReleaseHolds(id, names);
      }
      break;
    }
    case kSessionGoodbye:
      if (id != 0) engine_.sessions().End(id);
      break;
    default:
      // The lease timer finding every lease run out.
      engine_.sessions().ExpireDue(now + 2 * kLeaseTtl);
      break;
  }
}

void Harness::Open(Input& in) {
  const Who who = From(in);
  v1::OpenRequest req;
  req.set_name(Name(in));
  req.set_type(static_cast<v1::ObjectType>(in.Byte() % 16));
  switch (in.Byte() % 5) {
    case 1:
      for (int n = in.Byte() % 5; n > 0; --n) {
        v1::MapEntry* entry = req.mutable_dict_init()->add_entries();
        BuildValue(in, entry->mutable_key(), 1);
        BuildValue(in, entry->mutable_value(), 1);
      }
      req.mutable_dict_init();
      break;
    case 2:
      for (int n = in.Byte() % 5; n > 0; --n) {
        BuildValue(in, req.mutable_list_init()->add_items(), 1);
      }
      req.mutable_list_init();
      break;
    case 3:
      BuildValue(in, req.mutable_value_init(), 0);
      break;
    case 4:
      req.mutable_array_init()->set_typecode(in.Pick(kTypecodes));
      for (int n = in.Byte() % 5; n > 0; --n) {
        BuildValue(in, req.mutable_array_init()->add_items(), 1);
      }
      break;
    default:
      break;
  }
  const uint8_t fields = in.Byte();
  if (fields & 1) req.set_typecode(in.Pick(kTypecodes));
  if (fields & 2) req.set_condition_lock(Name(in));
  if (fields & 4) req.set_semaphore_value(in.Int());
  if (fields & 8) req.set_parties(in.Int());
  if (fields & 16) req.set_maxsize(in.Int());

  v1::OpenResponse resp;
  const Outcome out =
      Call(objects_, &handlers::ObjectsHandlers::Open, who, req, &resp, "open");
  // Opening a named object as another type must fail: it never gets here.
  auto it = named_.find(req.name());
  if (!out.ok()) return;
  FUZZ_CHECK(resp.type() == req.type(), "opened as %d, asked for %d",
             resp.type(), req.type());
  if (absl::StartsWith(resp.name(), kAnonymousPrefix)) {
    FUZZ_CHECK(req.name().empty() || req.name() == resp.name(),
               "opened \"%s\" as \"%s\"", req.name(), resp.name());
    NoteAnonymous(resp.name());
    return;
  }
  FUZZ_CHECK(resp.name() == req.name(), "opened \"%s\" as \"%s\"", req.name(),
             resp.name());
  if (it == named_.end()) {
    FUZZ_CHECK(resp.created(), "\"%s\" was not opened before, yet not created",
               req.name());
    named_[req.name()] = req.type();
  } else {
    FUZZ_CHECK(!resp.created() && it->second == req.type(),
               "\"%s\": a %d opened again as a %d, created=%d", req.name(),
               it->second, req.type(), resp.created());
  }
}

void Harness::Started(std::unique_ptr<FakeCall> call, const std::string& object,
                      const Who& who, absl::string_view what) {
  if (Tracing()) {
    std::fprintf(stderr, "  %s \"%s\" from %s%s: %s (call %zu)\n",
                 std::string(what).c_str(), object.c_str(),
                 who.id.empty() ? "-" : who.id.c_str(),
                 who.transport == handlers::Transport::kLane ? " (lane)" : "",
                 call->finished() ? "answered" : "parked", pending_.size());
  }
  pending_.push_back(Pending{std::move(call), std::string(what), object,
                             who.session, /*cancelled=*/false,
                             deletions_[object]});
}

void Harness::Cancel(Input& in) {
  if (pending_.empty()) return;
  Pending& p = pending_[in.Byte() % pending_.size()];
  if (p.cancelled) return;
  p.cancelled = true;
  if (Tracing()) {
    std::fprintf(stderr, "  cancel %s \"%s\"\n", p.what.c_str(),
                 p.object.c_str());
  }
  // The lock a finished acquire was granted, unless it was deleted since (a
  // lock of that name now is another).
  uint64_t granted_token = 0;
  if (p.generation == deletions_[p.object] && p.call->finished() &&
      p.call->status().ok()) {
    if (const auto* lock =
            dynamic_cast<const v1::LockAcquireResponse*>(p.call->response());
        lock != nullptr && lock->acquired()) {
      granted_token = lock->fencing_token();
    }
  }
  v1::LockStateRequest req;
  req.set_name(p.object);
  v1::LockStateResponse before;
  const bool lane = p.call->transport() == handlers::Transport::kLane;
  if (granted_token != 0) {
    Call(locks_, &handlers::LockHandlers::State, Who{}, req, &before, "state");
  }
  p.call->Cancel();
  FUZZ_CHECK(p.call->finished(), "%s on \"%s\": still running after Cancel",
             p.what, p.object);
  if (granted_token == 0) return;
  v1::LockStateResponse after;
  if (!Call(locks_, &handlers::LockHandlers::State, Who{}, req, &after, "state")
           .ok()) {
    return;
  }
  if (lane) {
    // The lane client reads the reply of a call it cancelled and releases
    // what it got: the grant stands (api/LANE.md, "Cancel").
    FUZZ_CHECK(after.locked() == before.locked() &&
                   after.fencing_token() == before.fencing_token(),
               "lock \"%s\": cancelling a lane call answered with grant %d "
               "changed the lock",
               p.object, granted_token);
  } else if (before.locked() && before.fencing_token() == granted_token &&
             before.recursion() > 1) {
    // Over gRPC a grant the client never saw, parked or answered at once,
    // is rolled back: for an RLock held more than once, by one level.
    FUZZ_CHECK(after.locked() && after.fencing_token() == granted_token &&
                   after.recursion() == before.recursion() - 1,
               "rlock \"%s\": cancelling grant %d took it from recursion "
               "%d to %d",
               p.object, granted_token, before.recursion(),
               after.locked() ? after.recursion() : 0);
  } else {
    FUZZ_CHECK(!after.locked() || after.fencing_token() != granted_token,
               "lock \"%s\": grant %d still holds it after its call was "
               "cancelled",
               p.object, granted_token);
  }
}

void Harness::Settle(Pending& p) {
  if (p.checked || !p.call->finished()) return;
  p.checked = true;
  if (Tracing()) {
    std::fprintf(stderr, "  %s \"%s\" finished: %s %s\n", p.what.c_str(),
                 p.object.c_str(), p.call->status().ToString().c_str(),
                 p.call->response()->ShortDebugString().c_str());
  }
  CheckOutcome(p.call->status(), p.what);
}

void Harness::Retire(bool all) {
  std::vector<Pending> kept;
  for (Pending& p : pending_) {
    if (p.call->finished()) {
      Settle(p);
    } else {
      FUZZ_CHECK(!all, "%s on \"%s\" never finished", p.what, p.object);
      kept.push_back(std::move(p));
    }
  }
  pending_ = std::move(kept);
}

void Harness::Teardown() {
  // Every session ends, as when the lease timer finds them all expired:
  // every parked call must then have finished.
  engine_.sessions().ExpireDue(absl::Now() + 2 * kLeaseTtl);
  CheckAll();
  Retire(/*all=*/true);
  // A finished call's timeout is cancelled with it.
  FUZZ_CHECK(timers_.armed() == 0, "%d timeouts armed after every call ended",
             timers_.armed());
}

}  // namespace statehub::fuzz
