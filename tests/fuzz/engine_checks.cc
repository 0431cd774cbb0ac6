// The invariants Harness checks after every request (engine_fuzz.cc lists
// them).

#include "server/engine/sessions.h"
#include "statehub/internal/wire.h"
#include "tests/fuzz/check.h"
#include "tests/fuzz/encoding.h"
#include "tests/fuzz/engine_harness.h"

namespace statehub::fuzz {

std::string Harness::Canonical(const v1::Value& wire) {
  absl::StatusOr<Value> value = internal::DecodeValue(wire, 1 << 20);
  FUZZ_CHECK(value.ok(), "a stored value does not decode: %s",
             value.status().ToString());
  return EncodedBytes(*value);
}

void Harness::CheckPending() {
  for (Pending& p : pending_) {
    if (p.call->finished()) {
      Settle(p);
      continue;
    }
    // A call whose waiter was claimed but never completed shows here once
    // its session ends (at the latest in Teardown), and in Cancel: the
    // Waiter itself (the ParkedCall) is out of the transport's reach.
    FUZZ_CHECK(Live(p.session),
               "%s on \"%s\": still parked after its session ended", p.what,
               p.object);
  }
}

void Harness::CheckDict(const std::string& name, int64_t size) {
  using S = handlers::DictHandlers;
  v1::DictLenRequest len;
  len.set_name(name);
  v1::DictLenResponse length;
  if (!Call(dicts_, &S::Len, Who{}, len, &length, "len").ok()) return;
  FUZZ_CHECK(length.length() == size, "dict \"%s\": len %d, size %d", name,
             length.length(), size);
  v1::DictItemsRequest items;
  items.set_name(name);
  items.set_keys_only(true);
  v1::DictItemsResponse page;
  Call(dicts_, &S::Items, Who{}, items, &page, "items");
  FUZZ_CHECK(page.entries_size() == size && page.next_cursor() == 0,
             "dict \"%s\": %d items, len %d", name, page.entries_size(), size);
  for (const v1::MapEntry& entry : page.entries()) {
    v1::DictContainsRequest req;
    req.set_name(name);
    *req.mutable_key() = entry.key();
    v1::DictContainsResponse resp;
    const Outcome out = Call(dicts_, &S::Contains, Who{}, req, &resp, "in");
    FUZZ_CHECK(out.ok() && resp.contains(),
               "dict \"%s\": a listed key is not in it (%s)", name,
               out.status.message());
  }
}

void Harness::CheckLock(const std::string& name) {
  v1::LockStateRequest req;
  req.set_name(name);
  v1::LockStateResponse state;
  Call(locks_, &handlers::LockHandlers::State, Who{}, req, &state, "state");
  uint64_t& seen = tokens_[name];
  FUZZ_CHECK(state.fencing_token() >= seen,
             "lock \"%s\": fencing token went from %d back to %d", name, seen,
             state.fencing_token());
  seen = state.fencing_token();
  if (state.locked()) {
    const SessionId holder = SessionTable::ParseId(state.holder().session_id());
    FUZZ_CHECK(Live(holder), "lock \"%s\" is held by ended session %s", name,
               state.holder().session_id());
  }
}

void Harness::CheckObject(const v1::ObjectInfo& info) {
  const std::string& name = info.name();
  if (info.anonymous()) {
    FUZZ_CHECK(info.holders() + info.referrers() > 0,
               "anonymous \"%s\" lives with no holder and no referrer", name);
    FUZZ_CHECK(info.holders() >= 0 && info.referrers() >= 0,
               "\"%s\": %d holders, %d referrers", name, info.holders(),
               info.referrers());
  }
  switch (info.type()) {
    case v1::DICT:
      if (info.size() <= 32) CheckDict(name, info.size());
      break;
    case v1::LOCK:
    case v1::RLOCK:
      CheckLock(name);
      break;
    case v1::SEMAPHORE:
    case v1::BOUNDED_SEMAPHORE: {
      v1::SemaphoreStateRequest req;
      req.set_name(name);
      v1::SemaphoreStateResponse state;
      Call(semaphores_, &handlers::SemaphoreHandlers::State, Who{}, req, &state,
           "state");
      FUZZ_CHECK(state.value() >= 0, "semaphore \"%s\" at %d", name,
                 state.value());
      if (state.bounded()) {
        FUZZ_CHECK(state.value() <= state.initial_value(),
                   "bounded semaphore \"%s\" at %d over its %d", name,
                   state.value(), state.initial_value());
      }
      for (const v1::SemaphoreHolding& h : state.holders()) {
        FUZZ_CHECK(h.units() > 0, "semaphore \"%s\": %d units held", name,
                   h.units());
        FUZZ_CHECK(Live(SessionTable::ParseId(h.session_id())),
                   "semaphore \"%s\": units held by ended session %s", name,
                   h.session_id());
      }
      break;
    }
    case v1::BARRIER: {
      v1::BarrierStateRequest req;
      req.set_name(name);
      v1::BarrierStateResponse state;
      Call(barriers_, &handlers::BarrierHandlers::State, Who{}, req, &state,
           "state");
      FUZZ_CHECK(state.n_waiting() < state.parties(),
                 "barrier \"%s\": %d of %d parties wait", name,
                 state.n_waiting(), state.parties());
      break;
    }
    default:
      break;
  }
}

void Harness::CheckAll() {
  CheckPending();
  v1::ListObjectsRequest req;
  req.set_include_anonymous(true);
  v1::ListObjectsResponse resp;
  Call(objects_, &handlers::ObjectsHandlers::List, Who{}, req, &resp, "list");
  FUZZ_CHECK(resp.objects_size() == engine_.registry().Count(),
             "%d objects listed, %d counted", resp.objects_size(),
             engine_.registry().Count());
  const bool any_live = engine_.sessions().Count() > 0;
  std::map<std::string, v1::ObjectType> listed;
  for (const v1::ObjectInfo& info : resp.objects()) {
    if (info.anonymous()) {
      NoteAnonymous(info.name());
      FUZZ_CHECK(any_live || info.holders() == 0,
                 "\"%s\" held %d times with no session live", info.name(),
                 info.holders());
    } else {
      listed[info.name()] = info.type();
    }
    CheckObject(info);
  }
  FUZZ_CHECK(listed == named_,
             "%d named objects listed, %d opened and not deleted",
             listed.size(), named_.size());
}

}  // namespace statehub::fuzz
