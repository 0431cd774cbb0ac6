#include "statehub/internal/wire.h"

#include <string>

#include "absl/strings/str_format.h"
#include "statehub/status.h"

namespace statehub::internal {
namespace {

absl::StatusOr<Value> Decode(const v1::Value& wire, int depth_left) {
  if (depth_left < 0) {
    return MakeError(
        absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
        "value nests deeper than --max_depth allows", "", "max_depth");
  }
  switch (wire.kind_case()) {
    case v1::Value::KIND_NOT_SET:
      return Value();
    case v1::Value::kBoolValue:
      return Value(wire.bool_value());
    case v1::Value::kIntValue:
      return Value(int64_t{wire.int_value()});
    case v1::Value::kDoubleValue:
      return Value(wire.double_value());
    case v1::Value::kStringValue:
      return Value(wire.string_value());
    case v1::Value::kBytesValue:
      return Value::Bytes(wire.bytes_value());
    case v1::Value::kListValue:
    case v1::Value::kTupleValue: {
      const auto& items = wire.has_list_value() ? wire.list_value().items()
                                                : wire.tuple_value().items();
      Value::Items out;
      out.reserve(items.size());
      for (const v1::Value& item : items) {
        absl::StatusOr<Value> v = Decode(item, depth_left - 1);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return wire.has_list_value() ? Value::List(std::move(out))
                                   : Value::Tuple(std::move(out));
    }
    case v1::Value::kMapValue: {
      std::vector<std::pair<Value, Value>> entries;
      entries.reserve(wire.map_value().entries_size());
      for (const v1::MapEntry& entry : wire.map_value().entries()) {
        absl::StatusOr<Value> key = Decode(entry.key(), depth_left - 1);
        if (!key.ok()) return key.status();
        if (absl::Status s = CheckKey(*key); !s.ok()) {
          return MakeError(absl::StatusCode::kInvalidArgument,
                           ErrorKind::kTypeError, s.message());
        }
        absl::StatusOr<Value> value = Decode(entry.value(), depth_left - 1);
        if (!value.ok()) return value.status();
        entries.emplace_back(*std::move(key), *std::move(value));
      }
      return Value::Map(std::move(entries));
    }
    case v1::Value::kRefValue: {
      const v1::ObjectRef& ref = wire.ref_value();
      if (ref.name().empty() || ref.type() == v1::OBJECT_TYPE_UNSPECIFIED ||
          !v1::ObjectType_IsValid(ref.type())) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         ErrorKind::kValueError,
                         "a ref needs a name and an object type");
      }
      return Value(Ref{ref.name(), FromWire(ref.type()), nullptr});
    }
    case v1::Value::kBlobValue:
      if (wire.blob_value().codec().empty()) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         ErrorKind::kValueError, "a blob needs a codec name");
      }
      return Value(Blob{wire.blob_value().codec(), wire.blob_value().data()});
  }
  return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                   "unknown value kind");
}

}  // namespace

absl::StatusOr<Value> DecodeValue(const v1::Value& wire, int max_depth) {
  return Decode(wire, max_depth);
}

void EncodeValue(const Value& value, v1::Value* wire) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      wire->Clear();
      break;
    case Value::Kind::kBool:
      wire->set_bool_value(value.AsBool());
      break;
    case Value::Kind::kInt:
      wire->set_int_value(value.AsInt());
      break;
    case Value::Kind::kDouble:
      wire->set_double_value(value.AsDouble());
      break;
    case Value::Kind::kString:
      wire->set_string_value(value.AsString());
      break;
    case Value::Kind::kBytes:
      wire->set_bytes_value(value.AsBytes());
      break;
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      v1::ValueList* list = value.is_list() ? wire->mutable_list_value()
                                            : wire->mutable_tuple_value();
      list->mutable_items()->Reserve(static_cast<int>(value.AsItems().size()));
      for (const Value& item : value.AsItems()) {
        EncodeValue(item, list->add_items());
      }
      break;
    }
    case Value::Kind::kMap: {
      v1::ValueMap* map = wire->mutable_map_value();
      for (const auto& [k, v] : value.AsEntries()) {
        v1::MapEntry* entry = map->add_entries();
        EncodeValue(k, entry->mutable_key());
        EncodeValue(v, entry->mutable_value());
      }
      break;
    }
    case Value::Kind::kRef: {
      v1::ObjectRef* ref = wire->mutable_ref_value();
      ref->set_name(value.AsRef().name);
      ref->set_type(ToWire(value.AsRef().type));
      break;
    }
    case Value::Kind::kBlob: {
      v1::Blob* blob = wire->mutable_blob_value();
      blob->set_codec(value.AsBlob().codec);
      blob->set_data(value.AsBlob().data);
      break;
    }
  }
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status,
                            absl::string_view serialized_detail) {
  if (status.ok()) return absl::OkStatus();
  return StatusFromWire(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message(), serialized_detail);
}

}  // namespace statehub::internal
