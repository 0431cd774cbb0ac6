// counter: a shared hit counter and visit log on a statehub server.
//
//   counter [address]    (default unix:///tmp/statehub.sock)
//
// Each run increments "hits" in the dict "example/counters" atomically,
// appends a line to the list "example/visits" and prints both. Run it from
// several processes at once: no increment is lost. It also updates
// "best_streak" under the lock "example/lock": a read-modify-write of
// several calls, which only a lock makes safe.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "statehub/statehub.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "counter: %s (%s)\n", status.ToString().c_str(),
               statehub::ErrorKindName(statehub::GetErrorKind(status)).data());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "unix:///tmp/statehub.sock";

  absl::StatusOr<std::unique_ptr<statehub::Client>> client =
      statehub::Client::Connect(address);
  if (!client.ok()) return Fail(client.status());

  absl::StatusOr<statehub::Dict> counters =
      (*client)->OpenDict("example/counters");
  if (!counters.ok()) return Fail(counters.status());
  // One atomic server operation; `d["hits"] += 1` would be two.
  absl::StatusOr<statehub::Value> hits = counters->Increment("hits");
  if (!hits.ok()) return Fail(hits.status());
  std::printf("hits = %s\n", hits->Repr().c_str());

  absl::StatusOr<statehub::Lock> lock = (*client)->OpenLock("example/lock");
  if (!lock.ok()) return Fail(lock.status());
  try {
    // lock() cannot return a status: it throws statehub::Error instead.
    std::lock_guard<statehub::Lock> hold(*lock);
    absl::StatusOr<statehub::Value> best = counters->Get("best_streak", 0);
    if (!best.ok()) return Fail(best.status());
    const int64_t streak = hits->AsInt() % 7;
    if (streak > best->AsInt()) {
      if (absl::Status s = counters->Set("best_streak", streak); !s.ok()) {
        return Fail(s);
      }
    }
    std::printf("best streak %lld (lock fencing token %llu)\n",
                static_cast<long long>(std::max(streak, best->AsInt())),
                static_cast<unsigned long long>(lock->held().fencing_token));
  } catch (const statehub::Error& e) {
    return Fail(e.status());
  }

  absl::StatusOr<statehub::List> visits = (*client)->OpenList("example/visits");
  if (!visits.ok()) return Fail(visits.status());
  absl::StatusOr<int64_t> length = visits->Append(
      absl::StrCat("visit ", hits->Repr(), " by ", (*client)->session_id()));
  if (!length.ok()) return Fail(length.status());

  absl::StatusOr<statehub::Value::Items> items = visits->Snapshot();
  if (!items.ok()) return Fail(items.status());
  std::printf("visits (%lld):\n", static_cast<long long>(*length));
  for (const statehub::Value& item : *items) {
    std::printf("  %s\n", item.Repr().c_str());
  }
  return 0;
}
