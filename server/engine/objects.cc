// MakeObject: the one place that knows every object type's constructor.

#include "absl/strings/str_format.h"
#include "server/engine/array.h"
#include "server/engine/barrier.h"
#include "server/engine/condition.h"
#include "server/engine/dict.h"
#include "server/engine/event.h"
#include "server/engine/list.h"
#include "server/engine/lock.h"
#include "server/engine/namespace.h"
#include "server/engine/queue.h"
#include "server/engine/registry.h"
#include "server/engine/semaphore.h"
#include "server/engine/value_cell.h"

namespace statehub {

absl::StatusOr<std::shared_ptr<Object>> MakeObject(std::string name,
                                                   ObjectType type,
                                                   InitialContents init,
                                                   Registry* registry) {
  switch (type) {
    case ObjectType::kDict:
      return DictObject::Make(std::move(name), std::move(init.entries),
                              registry);
    case ObjectType::kNamespace:
      return NamespaceObject::Make(std::move(name), std::move(init.entries),
                                   registry);
    case ObjectType::kList:
      return ListObject::Make(std::move(name), std::move(init.items), registry);
    case ObjectType::kValue:
      return ValueCell::Make(std::move(name), std::move(init.value),
                             std::move(init.typecode), registry);
    case ObjectType::kArray:
      if (init.typecode.empty()) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         ErrorKind::kValueError,
                         absl::StrFormat("%s: creating an array needs "
                                         "array_init (its typecode and items)",
                                         ObjectLabel(type, name)),
                         name);
      }
      return ArrayObject::Make(std::move(name), std::move(init.typecode),
                               std::move(init.items), registry);
    case ObjectType::kLock:
    case ObjectType::kRLock:
      return LockObject::Make(std::move(name), type, registry);
    case ObjectType::kCondition: {
      // The registry resolved the lock into init.value (a counted ref).
      absl::StatusOr<std::shared_ptr<LockObject>> lock =
          registry->Find<LockObject>(init.value.AsRef().name);
      if (!lock.ok()) return lock.status();
      return ConditionObject::Make(std::move(name), *std::move(lock),
                                   std::move(init.value), registry);
    }
    case ObjectType::kSemaphore:
    case ObjectType::kBoundedSemaphore:
      return SemaphoreObject::Make(std::move(name), type, init.semaphore_value,
                                   registry);
    case ObjectType::kEvent:
      return EventObject::Make(std::move(name), registry);
    case ObjectType::kBarrier:
      return BarrierObject::Make(std::move(name), init.parties, registry);
    case ObjectType::kQueue:
    case ObjectType::kJoinableQueue:
      return QueueObject::Make(std::move(name), type, init.maxsize, registry);
    default:
      return MakeError(
          absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
          absl::StrFormat("cannot create %s: type %s is not "
                          "supported by this server",
                          ObjectLabel(type, name), ObjectTypeName(type)),
          name);
  }
}

}  // namespace statehub
