// File: server/engine/namespace.h
//
// `NamespaceObject` is Manager's Namespace: attributes set and read one at a
// time, kept in the order first set. Attribute names are identifiers that do
// not start with '_' (Manager keeps those for the proxy).
//
// Thread safety: all methods are thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_NAMESPACE_H_
#define STATEHUB_SERVER_ENGINE_NAMESPACE_H_

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/ordered_map.h"

namespace statehub {

class NamespaceObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kNamespace;

  // Errors: VALUE_ERROR for a key that is not a valid attribute name.
  static absl::StatusOr<std::shared_ptr<NamespaceObject>> Make(
      std::string name, Value::Entries entries, Registry* registry);

  int64_t Size() const override;

  // ns.attribute. Errors: ATTRIBUTE_ERROR, VALUE_ERROR (bad name).
  absl::StatusOr<Value> Get(const Caller& caller,
                            absl::string_view attribute) const;
  absl::Status Set(absl::string_view attribute, Value value);
  // del ns.attribute. Errors: ATTRIBUTE_ERROR.
  absl::Status Delete(absl::string_view attribute);
  // vars(ns), in the order attributes were first set.
  absl::StatusOr<Value::Entries> Items(const Caller& caller) const;

  // Apply replays an EntriesSet or EntriesRemoved record (keys are the
  // attribute names as strings). Errors: DATA_LOSS (removing an attribute
  // that is not there, another kind of record).
  absl::Status Apply(const v1::ChangeRecord& record) override;
  // Dump appends the namespace's created record, its attributes included.
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  NamespaceObject(std::string name, Registry* registry);
  std::vector<Value> TakeContents() override;
  absl::Status CheckAttribute(absl::string_view attribute) const;

  OrderedMap map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_NAMESPACE_H_
