// engine_fuzz: the input is a sequence of requests from up to three client
// sessions, run through the gRPC service handlers (server/service/) into a
// real Engine, as the server would run them, minus the transport
// (fake_call.h). Sessions open, resume, renew, release and end the way the
// session stream's handler does it (session_service.cc drives the engine
// with these same calls); blocking calls park, and are granted, cancelled
// or retired as gRPC would.
//
// Input: ops until it runs out (at most kMaxOps), each an op code byte and
// its arguments, read with Input (fuzz_input.h); the op codes are the Op
// enum of engine_harness.h, and make_corpus.py writes seeds in the same
// format. The harness itself: engine_harness.h.
//
// Oracles, besides ASan/UBSan, absl::Mutex's deadlock detection and
// _GLIBCXX_ASSERTIONS:
//   - every call finishes exactly once; an error is a status whose code
//     and ErrorDetail kind agree with shared/DESIGN.md's Errors table, and
//     whose message names the object the detail names;
//   - the objects listed are exactly the named objects opened minus those
//     deleted, with their types; every anonymous object is held or
//     referred to, and held by no one once no session is live;
//   - a parked call is never claimed without being finished, and never
//     outlives its session; cancelling one finishes it;
//   - what a request stored reads back (dict set, list append), what it
//     removed is gone (dict delete, pop, popitem); a dict's length, items
//     and membership agree;
//   - lock fencing tokens only grow; a parked grant whose call is cancelled
//     no longer holds the lock; lock and semaphore holders are live sessions;
//     semaphore values stay within [0, initial] (bounded); a barrier never
//     has `parties` waiters.

#include <cstddef>
#include <cstdint>

#include "grpc/grpc.h"
#include "tests/fuzz/engine_harness.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // grpc::Alarm (every parked call has one) initializes gRPC; holding one
  // reference for the whole run keeps it from shutting down and starting
  // up again with every input.
  grpc_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  statehub::fuzz::Input in(data, size);
  statehub::fuzz::Harness harness;
  harness.Run(in);
  harness.Teardown();
  return 0;
}
