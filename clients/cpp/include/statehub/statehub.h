// File: statehub/statehub.h
//
// The whole statehub C++ client in one include: Client (client.h), the
// object handles Dict, List, Namespace, ValueCell, Array, Lock, RLock,
// Condition, Semaphore, Event, Barrier and Queue, watches of their
// changes (watch.h), the neutral Value (value.h) and error kinds
// (status.h).
//
// Example:
//
//   #include "statehub/statehub.h"
//
//   absl::StatusOr<std::unique_ptr<statehub::Client>> client =
//       statehub::Client::Connect("unix:///tmp/statehub.sock");
//   if (!client.ok()) return client.status();
//   absl::StatusOr<statehub::Dict> d = (*client)->OpenDict("shared/config");

#ifndef STATEHUB_STATEHUB_H_
#define STATEHUB_STATEHUB_H_

#include "statehub/cache.h"      // IWYU pragma: export
#include "statehub/cell.h"       // IWYU pragma: export
#include "statehub/client.h"     // IWYU pragma: export
#include "statehub/dict.h"       // IWYU pragma: export
#include "statehub/list.h"       // IWYU pragma: export
#include "statehub/lock.h"       // IWYU pragma: export
#include "statehub/namespace.h"  // IWYU pragma: export
#include "statehub/queue.h"      // IWYU pragma: export
#include "statehub/status.h"     // IWYU pragma: export
#include "statehub/sync.h"       // IWYU pragma: export
#include "statehub/value.h"      // IWYU pragma: export
#include "statehub/watch.h"      // IWYU pragma: export

#endif  // STATEHUB_STATEHUB_H_
