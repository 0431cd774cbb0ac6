// Holds on anonymous objects, shared by the blocking client (Core) and the
// asynchronous one (AsyncConnection): every ref to an "_anon/" object in a
// reply carries a hold the server granted to the session, and the client
// gives it a token whose last copy, when it dies, tells the token's keeper
// to send a Release. A token keeps only a weak pointer to its keeper, so a
// Ref that outlives its client releases nothing and harms nothing.

#ifndef STATEHUB_CLIENTS_CPP_SRC_HOLDS_H_
#define STATEHUB_CLIENTS_CPP_SRC_HOLDS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "statehub/value.h"

namespace statehub::client_internal {

// Servers name anonymous objects with this prefix (objects.proto).
inline constexpr absl::string_view kAnonymousPrefix = "_anon/";

// HoldKeeper is what a hold token reports to when its last copy dies.
class HoldKeeper {
 public:
  virtual ~HoldKeeper() = default;
  // ReleaseHold queues a Release of one hold on `name`, granted in session
  // `generation`. Called from whatever thread drops the last copy; never
  // blocks on the network.
  virtual void ReleaseHold(uint64_t generation, std::string name) const = 0;
};

// MakeHoldToken returns the token of one hold on anonymous object `name`,
// granted in session `generation`; destroying its last copy calls
// keeper->ReleaseHold if the keeper still lives.
std::shared_ptr<const void> MakeHoldToken(
    std::weak_ptr<const HoldKeeper> keeper, std::string name,
    uint64_t generation);

// AttachHolds gives every ref to an anonymous object in `value` (nested in
// lists, tuples and map values too) the token `make_hold(name)` returns.
void AttachHolds(
    Value& value,
    absl::FunctionRef<std::shared_ptr<const void>(const std::string& name)>
        make_hold);

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_HOLDS_H_
