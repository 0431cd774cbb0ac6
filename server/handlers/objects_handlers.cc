#include "server/handlers/objects_handlers.h"

#include "absl/strings/str_format.h"
#include "server/handlers/call.h"

namespace statehub::handlers {
namespace {

void FillInfo(const ObjectInfo& info, v1::ObjectInfo* wire) {
  wire->set_name(info.name);
  wire->set_type(internal::ToWire(info.type));
  wire->set_anonymous(info.anonymous);
  wire->set_size(info.size);
  wire->set_typecode(info.typecode);
  wire->set_condition_lock(info.condition_lock);
  wire->set_holders(info.holders);
  wire->set_referrers(info.referrers);
}

// Decodes the initial contents of an Open, checking they suit the type.
absl::StatusOr<InitialContents> InitOf(const Limits& limits,
                                       const v1::OpenRequest& req,
                                       ObjectType type) {
  const std::string label = ObjectLabel(type, req.name());
  const Decoder decode(limits, type, req.name());
  InitialContents init;
  init.typecode = req.typecode();
  init.condition_lock = req.condition_lock();
  auto mismatch = [&](absl::string_view field) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrFormat("%s: %s does not apply to a %s", label,
                                     field, ObjectTypeName(type)),
                     req.name());
  };
  const bool semaphore =
      type == ObjectType::kSemaphore || type == ObjectType::kBoundedSemaphore;
  const bool queue =
      type == ObjectType::kQueue || type == ObjectType::kJoinableQueue;
  if (req.has_semaphore_value()) {
    if (!semaphore) return mismatch("semaphore_value");
    init.semaphore_value = req.semaphore_value();
  }
  if (req.parties() != 0) {
    if (type != ObjectType::kBarrier) return mismatch("parties");
    init.parties = req.parties();
  }
  if (req.maxsize() != 0) {
    if (!queue) return mismatch("maxsize");
    init.maxsize = req.maxsize();
  }
  if (!req.condition_lock().empty() && type != ObjectType::kCondition) {
    return mismatch("condition_lock");
  }
  switch (req.init_case()) {
    case v1::OpenRequest::INIT_NOT_SET:
      // An array's typecode comes with its items; opening an existing array
      // needs neither (MakeObject refuses to create one without them).
      break;
    case v1::OpenRequest::kDictInit: {
      if (type != ObjectType::kDict && type != ObjectType::kNamespace) {
        return mismatch("dict_init");
      }
      STATEHUB_ASSIGN_OR_RETURN(init.entries,
                                decode.Entries(req.dict_init().entries()));
      break;
    }
    case v1::OpenRequest::kListInit: {
      if (type != ObjectType::kList) return mismatch("list_init");
      STATEHUB_ASSIGN_OR_RETURN(init.items,
                                decode.Items(req.list_init().items()));
      break;
    }
    case v1::OpenRequest::kValueInit: {
      if (type != ObjectType::kValue) return mismatch("value_init");
      STATEHUB_ASSIGN_OR_RETURN(init.value, decode(req.value_init()));
      break;
    }
    case v1::OpenRequest::kArrayInit: {
      if (type != ObjectType::kArray) return mismatch("array_init");
      init.typecode = req.array_init().typecode();
      STATEHUB_ASSIGN_OR_RETURN(init.items,
                                decode.Items(req.array_init().items()));
      break;
    }
  }
  return init;
}

}  // namespace

absl::Status ObjectsHandlers::Open(const Caller& caller,
                                   const v1::OpenRequest* req,
                                   v1::OpenResponse* resp) {
  if (req->type() == v1::OBJECT_TYPE_UNSPECIFIED ||
      !v1::ObjectType_IsValid(req->type())) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("object \"%s\": open needs a type", req->name()),
        req->name());
  }
  const ObjectType type = internal::FromWire(req->type());
  STATEHUB_ASSIGN_OR_RETURN(InitialContents init,
                            InitOf(engine_.limits(), *req, type));
  STATEHUB_ASSIGN_OR_RETURN(
      Registry::Opened opened,
      engine_.registry().Open(req->name(), type, std::move(init), caller));
  resp->set_name(opened.object->name());
  resp->set_type(req->type());
  resp->set_created(opened.created);
  resp->set_typecode(opened.object->Typecode());
  resp->set_condition_lock(opened.object->BoundLock());
  return absl::OkStatus();
}

absl::Status ObjectsHandlers::Delete(const Caller&,
                                     const v1::DeleteRequest* req,
                                     v1::DeleteResponse*) {
  return engine_.registry().Delete(req->name());
}

absl::Status ObjectsHandlers::List(const Caller&,
                                   const v1::ListObjectsRequest* req,
                                   v1::ListObjectsResponse* resp) {
  for (const ObjectInfo& info :
       engine_.registry().List(req->prefix(), req->include_anonymous())) {
    FillInfo(info, resp->add_objects());
  }
  return absl::OkStatus();
}

absl::Status ObjectsHandlers::Describe(const Caller&,
                                       const v1::DescribeRequest* req,
                                       v1::DescribeResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(ObjectInfo info,
                            engine_.registry().Describe(req->name()));
  FillInfo(info, resp->mutable_info());
  return absl::OkStatus();
}

}  // namespace statehub::handlers
