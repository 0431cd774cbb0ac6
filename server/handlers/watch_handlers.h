// File: server/handlers/watch_handlers.h
//
// What both transports share to serve statehub.v1.Watches.Watch, a
// server-streaming rpc that the method table does not hold (its handlers
// answer once; a watch answers until it ends): the request read into a
// WatchSpec, and the engine's watch (server/engine/watches.h) written out
// as WatchResponses. The lane sends them in EVENT frames, gRPC on the
// stream (api/statehub/v1/watch.proto).
//
// Example:
//
//   absl::StatusOr<std::shared_ptr<Watch>> watch =
//       engine.watches().Start(WatchSpecOf(request), wake);
//   v1::WatchResponse started;
//   FillStarted(**watch, &started);      // send it
//   Watch::Batch batch = (*watch)->Take(kWatchBatchChanges,
//                                       kWatchBatchBytes);
//   v1::WatchResponse next;
//   if (FillBatch(batch, &next)) ...     // send it; then batch.end
//
// Thread safety: free functions over their arguments.

#ifndef STATEHUB_SERVER_HANDLERS_WATCH_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_WATCH_HANDLERS_H_

#include <cstddef>
#include <cstdint>

#include "server/engine/watches.h"
#include "statehub/v1/watch.pb.h"

namespace statehub::handlers {

// A response carries at most this many changes, or about this many bytes.
inline constexpr size_t kWatchBatchChanges = 1000;
inline constexpr size_t kWatchBatchBytes = 1 << 20;

// WatchLaneId is Watches.Watch's lane method id (its `lane_method`).
uint16_t WatchLaneId();

WatchSpec WatchSpecOf(const v1::WatchRequest& request);

// FillStarted fills a watch's first response (its start revision and,
// moved out of the watch, its initial contents).
void FillStarted(Watch& watch, v1::WatchResponse* response);

// FillBatch fills a response with what `batch` carries; false when there
// is nothing to send (no changes, no progress notice).
bool FillBatch(const Watch::Batch& batch, v1::WatchResponse* response);

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_WATCH_HANDLERS_H_
