#include "holds.h"

#include <utility>

#include "absl/strings/match.h"

namespace statehub::client_internal {
namespace {

// AnonymousHold is the object behind a hold token.
struct AnonymousHold {
  AnonymousHold(std::weak_ptr<const HoldKeeper> keeper, std::string name,
                uint64_t generation)
      : keeper(std::move(keeper)),
        name(std::move(name)),
        generation(generation) {}
  // Exactly one object per hold: a copy would release twice.
  AnonymousHold(const AnonymousHold&) = delete;
  AnonymousHold& operator=(const AnonymousHold&) = delete;

  ~AnonymousHold() {
    if (std::shared_ptr<const HoldKeeper> k = keeper.lock()) {
      k->ReleaseHold(generation, std::move(name));
    }
  }

  const std::weak_ptr<const HoldKeeper> keeper;
  std::string name;
  const uint64_t generation;
};

}  // namespace

std::shared_ptr<const void> MakeHoldToken(
    std::weak_ptr<const HoldKeeper> keeper, std::string name,
    uint64_t generation) {
  return std::make_shared<const AnonymousHold>(std::move(keeper),
                                               std::move(name), generation);
}

void AttachHolds(
    Value& value,
    absl::FunctionRef<std::shared_ptr<const void>(const std::string& name)>
        make_hold) {
  switch (value.kind()) {
    case Value::Kind::kRef: {
      const Ref& ref = value.AsRef();
      if (absl::StartsWith(ref.name, kAnonymousPrefix)) {
        value = Value(Ref{ref.name, ref.type, make_hold(ref.name)});
      }
      break;
    }
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      for (Value& item : value.MutableItems()) AttachHolds(item, make_hold);
      break;
    case Value::Kind::kMap:
      // Keys are scalars or tuples of scalars: never refs.
      for (auto& entry : value.MutableEntries()) {
        AttachHolds(entry.second, make_hold);
      }
      break;
    default:
      break;
  }
}

}  // namespace statehub::client_internal
