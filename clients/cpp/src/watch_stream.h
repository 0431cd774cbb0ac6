// The transport side of a watch (statehub/watch.h): one stream of
// statehub.v1.WatchResponse messages for one Watches.Watch call, on the
// lane or on gRPC. A Watch reads its stream, and opens another one (with
// `since`) when it breaks.
//
// On the lane the stream is a connection of its own that joins the
// client's session (api/LANE.md, "Watches"): one REQUEST, then the EVENT
// frames that carry its request id, until an ERROR frame. Nothing else
// runs on it, so a reader waiting for events never holds up a call, and
// closing the connection ends the watch on the server. On gRPC it is a
// server stream, read by a thread of its own into a short queue, so that
// Next can time out; the queue is bounded, so a watcher that stops reading
// pushes back on the server (which ends the watch past --watch_backlog)
// instead of growing this process.

#ifndef STATEHUB_CLIENTS_CPP_SRC_WATCH_STREAM_H_
#define STATEHUB_CLIENTS_CPP_SRC_WATCH_STREAM_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "lane_transport.h"
#include "statehub/v1/watch.grpc.pb.h"

namespace statehub::client_internal {

class WatchStream {
 public:
  virtual ~WatchStream() = default;

  // Next returns the next response, or nullopt if none came by `deadline`.
  // Errors: the server's error that ended the watch (WATCH_TOO_OLD,
  // OBJECT_NOT_FOUND, ...); UNAVAILABLE with no error kind when the
  // connection broke or the stream was closed (see Broke). Call from one
  // thread at a time.
  virtual absl::StatusOr<std::optional<v1::WatchResponse>> Next(
      absl::Time deadline) = 0;

  // Close ends the watch and wakes a thread blocked in Next. Idempotent;
  // thread-safe.
  virtual void Close() = 0;
};

// Broke is whether a watch's error means that its connection broke (the
// server went away), so that the watch may go on from its revision on a
// new one.
bool Broke(const absl::Status& status);

// StartLaneWatch opens a connection of `lane`'s (see
// LaneTransport::OpenWatchConnection) and sends `request` on it, by
// `deadline`.
absl::StatusOr<std::unique_ptr<WatchStream>> StartLaneWatch(
    LaneTransport& lane, const v1::WatchRequest& request, bool resuming,
    absl::Time deadline);

// StartGrpcWatch starts `request` on `stub`, with `ctx` (its metadata set;
// the stream keeps it). `address` is for messages.
std::unique_ptr<WatchStream> StartGrpcWatch(
    v1::Watches::Stub& stub, std::unique_ptr<grpc::ClientContext> ctx,
    const v1::WatchRequest& request, std::string address);

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_WATCH_STREAM_H_
