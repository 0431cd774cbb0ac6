// File: statehub/internal/handle.h
//
// The state every object handle (Dict, List, ...) carries: the client core it
// talks through, the object's name and type, and the hold that keeps an
// anonymous object alive. Not part of the public API; included by the public
// handle headers only so that handles can be held by value.

#ifndef STATEHUB_INTERNAL_HANDLE_H_
#define STATEHUB_INTERNAL_HANDLE_H_

#include <memory>
#include <string>
#include <utility>

#include "statehub/value.h"

namespace statehub::client_internal {

class Core;

// HandleState is shared by value between a handle and nothing else; the
// `hold` it points to is shared with every Ref made from the handle.
struct HandleState {
  // core is null only in a moved-from handle.
  std::shared_ptr<Core> core;
  std::string name;
  ObjectType type = ObjectType::kUnspecified;
  // hold is set for an anonymous object this session holds; the hold is
  // released when the last handle or Ref sharing it goes away.
  std::shared_ptr<const void> hold;

  // MakeRef returns a ref value naming the object and sharing the hold.
  Value MakeRef() const { return Value(Ref{name, type, hold}); }
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_INTERNAL_HANDLE_H_
