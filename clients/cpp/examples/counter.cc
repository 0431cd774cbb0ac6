// counter: a shared hit counter and visit log on a statehub server.
//
//   counter [address]    (default unix:///tmp/statehub.sock)
//
// Each run increments "hits" in the dict "example/counters" atomically,
// appends a line to the list "example/visits" and prints both. Run it from
// several processes at once: no increment is lost.

#include <cstdio>
#include <memory>
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
