// What becomes of a call whose connection broke under it, on either
// transport (docs/durability.md, "Clients" and "Exactly once"): the rules
// that LaneTransport::Call and Core::CallGrpc apply, the numbers that let a
// call that changes state be sent again and still be applied once, and the
// errors of the calls that cannot be made again.
//
// A call that changes state is numbered where the server advises it
// (WELCOME's number_calls): the server answers a number it has seen with
// its first answer, so the call is sent again, unchanged, in its session.
// A call that only reads is sent again once. A parked call (an acquire, a
// wait, a get) is made again by CallParked with what is left of its
// timeout. Anything else may have been applied and fails UNAVAILABLE,
// naming the rpc and the object.

#ifndef STATEHUB_CLIENTS_CPP_SRC_RECONNECT_H_
#define STATEHUB_CLIENTS_CPP_SRC_RECONNECT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace statehub::client_internal {

// How long after a call's connection broke it waits for the server to come
// back (and never past the call's own deadline): the Python client's
// RECONNECT_WAIT. A restart on a data dir takes well under a second.
inline constexpr absl::Duration kReconnectWait = absl::Seconds(15);

// How many times one call is made at most when its connection keeps
// breaking (or no connection can be opened) while the server looks up: a
// bound, so that a call never goes round for ever; a restart costs one or
// two.
inline constexpr int kMaxAttempts = 10;

// Rpc is what the client knows of one statehub rpc, read once from its
// descriptor and options (api/statehub/v1/lane.proto). See RpcOf in
// lane_transport.h.
struct Rpc {
  // name is "Service.Method", e.g. "Dicts.Set", for messages.
  std::string name;
  // lane_method is its (statehub.v1.lane_method); 0 if it has none.
  uint16_t lane_method = 0;
  // read_only is its (statehub.v1.read_only): it changes nothing, so it
  // may be sent again.
  bool read_only = false;
  // reparkable: a parked call of it is made again after a reconnect (it
  // changes nothing, or CallParked checks first whether it was served).
  bool reparkable = false;
  // numbered_when_parked: a parked call of it is numbered all the same
  // (Queues.Put: answered at once unless the queue is full, and a retry
  // must not put the item twice).
  bool numbered_when_parked = false;
};

// AfterBreak is what becomes of a call whose request went out and whose
// connection then broke.
enum class AfterBreak : uint8_t {
  // It may have been applied: it fails UNAVAILABLE (BrokenCallError).
  kFail,
  // It changes nothing: it is sent again, once.
  kRepeat,
  // It is numbered: it is sent again unchanged in the session it was sent
  // in, which answers it once; if that session ended, SessionEndedError.
  kResend,
  // It parked: CallParked makes it again with what is left of its timeout.
  kRepark,
};

// Numbered is whether a call of `rpc` is numbered where the server advises
// numbering; `parked` for a call made through CallParked.
inline bool Numbered(const Rpc& rpc, bool parked) {
  return !rpc.read_only && (!parked || rpc.numbered_when_parked);
}

// AfterBreakOf is the rule for a call of `rpc` (`parked`, `numbered`).
inline AfterBreak AfterBreakOf(const Rpc& rpc, bool parked, bool numbered) {
  if (numbered) return AfterBreak::kResend;
  if (parked) return rpc.reparkable ? AfterBreak::kRepark : AfterBreak::kFail;
  return rpc.read_only ? AfterBreak::kRepeat : AfterBreak::kFail;
}

// CallNumber is a numbered call's number and the `seen` sent with it
// (api/LANE.md, "Numbered calls"); number 0 for a call that is not
// numbered.
struct CallNumber {
  uint64_t number = 0;
  uint64_t seen = 0;
};

// CallPlan is what a transport needs to know of a call, beside its
// messages, to make it and to decide what becomes of it after a break.
struct CallPlan {
  const Rpc* rpc = nullptr;
  // object is the name the request carries ("" if none), for messages.
  absl::string_view object;
  AfterBreak after_break = AfterBreak::kFail;
  // numbering_advised is the server's number_calls when the call was made.
  bool numbering_advised = false;
  CallNumber number;
};

// CallNumbers hands out a client's call numbers. A number stays unseen
// from Take until Done; `seen` is the smallest unseen one, so every
// number below it has been answered to the client. A client has at most
// one call in flight per thread, so the unseen ones are few and a scan is
// cheap. Thread-safe.
class CallNumbers {
 public:
  // Take returns the next number, unseen until Done(number).
  CallNumber Take();
  // Done says the call numbered `number` returned or failed for good.
  void Done(uint64_t number);

 private:
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  // unseen_ is in ascending order: numbers are appended as taken.
  std::vector<uint64_t> unseen_ ABSL_GUARDED_BY(mu_);
};

// BrokenCallError is the UNAVAILABLE of a call of `plan` that was sent and
// is not made again: it may or may not have been applied. `cause` is the
// transport's error; `address` the server's.
absl::Status BrokenCallError(absl::string_view address, const CallPlan& plan,
                             const absl::Status& cause);

// SessionEndedError is the UNAVAILABLE of a numbered call whose session
// ended while its connection was broken: sent again in another session it
// could run twice, so it is not.
absl::Status SessionEndedError(absl::string_view address, const CallPlan& plan,
                               const absl::Status& cause);

// NotBackError is the UNAVAILABLE of a call whose server went away and did
// not come back in time (kReconnectWait, or the call's deadline).
absl::Status NotBackError(absl::string_view address, const CallPlan& plan,
                          const absl::Status& cause);

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_RECONNECT_H_
