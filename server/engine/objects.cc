// MakeObject: the one place that knows every object type's constructor.

#include "absl/strings/str_format.h"
#include "server/engine/array.h"
#include "server/engine/dict.h"
#include "server/engine/list.h"
#include "server/engine/namespace.h"
#include "server/engine/registry.h"
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
      return ArrayObject::Make(std::move(name), std::move(init.typecode),
                               std::move(init.items), registry);
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
