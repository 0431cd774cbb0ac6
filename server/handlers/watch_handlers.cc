#include "server/handlers/watch_handlers.h"

#include <utility>

#include "google/protobuf/descriptor.h"
#include "statehub/v1/lane.pb.h"

namespace statehub::handlers {

uint16_t WatchLaneId() {
  static const uint16_t id = [] {
    const google::protobuf::MethodDescriptor* method =
        v1::WatchRequest::descriptor()
            ->file()
            ->FindServiceByName("Watches")
            ->FindMethodByName("Watch");
    return static_cast<uint16_t>(
        method->options().GetExtension(v1::lane_method));
  }();
  return id;
}

WatchSpec WatchSpecOf(const v1::WatchRequest& request) {
  WatchSpec spec;
  spec.by_prefix = request.target_case() == v1::WatchRequest::kPrefix;
  spec.name = spec.by_prefix ? request.prefix() : request.name();
  if (request.has_since()) spec.since = request.since();
  spec.initial = request.initial();
  return spec;
}

void FillStarted(Watch& watch, v1::WatchResponse* response) {
  response->set_started(true);
  response->set_revision(watch.start_revision());
  response->set_oldest_revision(watch.oldest_revision());
  for (v1::ChangeRecord& record : watch.initial()) {
    *response->add_initial() = std::move(record);
  }
  watch.initial().clear();
}

bool FillBatch(const Watch::Batch& batch, v1::WatchResponse* response) {
  if (batch.changes.empty() && !batch.progress) return false;
  response->set_revision(batch.revision);
  for (const auto& change : batch.changes) {
    v1::WatchEvent* event = response->add_events();
    *event->mutable_change() = change->record;
    event->set_session_label(change->label);
  }
  return true;
}

}  // namespace statehub::handlers
