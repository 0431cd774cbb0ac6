// engine_fuzz: the input is a sequence of requests from up to three client
// sessions, run through the transport-neutral handlers (server/handlers/)
// into a real Engine, as either transport would run them, minus the
// transport itself (fake_transport.h). Sessions open, resume, renew,
// release and end the way the session stream and the lane do it (with
// these same engine calls); blocking calls park, and are granted, time
// out, are cancelled or retired as over gRPC or the lane (each request
// says which).
//
// Input: ops until it runs out (at most kMaxOps), each an op code byte and
// its arguments, read with Input (fuzz_input.h); the op codes are the Op
// enum of engine_harness.h, and make_corpus.py writes seeds in the same
// format. The harness itself: engine_harness.h.
//
// Oracles, besides ASan/UBSan, absl::Mutex's deadlock detection and
// _GLIBCXX_ASSERTIONS:
//   - every call finishes exactly once; an error is a status whose code
//     and ErrorDetail kind (as the transports send it) agree with
//     shared/DESIGN.md's Errors table, and whose message names the object
//     the detail names;
//   - the objects listed are exactly the named objects opened minus those
//     deleted, with their types; every anonymous object is held or
//     referred to, and held by no one once no session is live;
//   - a parked call never outlives its session (so none is claimed and
//     left unfinished); cancelling one finishes it; no timeout stays armed
//     once every call has finished;
//   - what a request stored reads back (dict set, list append), what it
//     removed is gone (dict delete, pop, popitem); a dict's length, items
//     and membership agree;
//   - lock fencing tokens only grow; over gRPC a parked grant whose call is
//     cancelled no longer holds the lock, over the lane cancelling an
//     answered call changes nothing; lock and semaphore holders are live
//     sessions;
//     semaphore values stay within [0, initial] (bounded); a barrier never
//     has `parties` waiters.

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/engine_harness.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  statehub::fuzz::Input in(data, size);
  statehub::fuzz::Harness harness;
  harness.Run(in);
  harness.Teardown();
  return 0;
}
