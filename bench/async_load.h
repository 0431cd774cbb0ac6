// File: bench/async_load.h
//
// The C++ client's asynchronous API (statehub/async.h) as lane_loop's
// --client=async: --connections AsyncClients (a lane connection and a
// session each) on one AsyncLoop run by the calling thread, each with
// --pipeline calls in flight; each callback records its call and issues
// the next. Where lane_loop's raw frames measure the server alone, this
// measures the client library too: encoding, the request id map, Asio,
// the callbacks. The async client numbers no calls (it never sends one
// again), so over TCP its writes are not numbered, as Redis's are not.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<AsyncLoad>> load =
//       AsyncLoad::Connect("127.0.0.1:7420", /*connections=*/50);
//   absl::StatusOr<LoopResult> r =
//       (*load)->Run("dict_set", /*pipeline=*/16, /*warmup=*/1, 5);
//
// Thread safety: an AsyncLoad is used by one thread.

#ifndef STATEHUB_BENCH_ASYNC_LOAD_H_
#define STATEHUB_BENCH_ASYNC_LOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "statehub/async.h"

namespace statehub::bench {

// LoopResult is what one op's measured window saw over every connection.
struct LoopResult {
  int64_t ops = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  std::vector<int64_t> latencies_ns;
};

class AsyncLoad {
 public:
  // Connect opens `connections` AsyncClients to `address` on one loop, and
  // the dict and list the ops use. Errors: AsyncClient::Connect's, and
  // those of opening the objects.
  static absl::StatusOr<std::unique_ptr<AsyncLoad>> Connect(
      const std::string& address, int connections);

  // Run drives op `op` (dict_set, dict_get, list_append, list_pop) with
  // `pipeline` calls in flight on each connection: `warmup` seconds, then
  // `seconds` measured. A call's latency runs from its issue to its
  // callback. Errors: INVALID_ARGUMENT for an unknown op. Blocks.
  absl::StatusOr<LoopResult> Run(const std::string& op, int pipeline,
                                 double warmup, double seconds);

  ~AsyncLoad();

 private:
  class Connection;
  AsyncLoad();

  // loop_ is declared first: destroyed after the clients on it.
  AsyncLoop loop_;
  std::vector<std::unique_ptr<Connection>> conns_;
};

}  // namespace statehub::bench

#endif  // STATEHUB_BENCH_ASYNC_LOAD_H_
