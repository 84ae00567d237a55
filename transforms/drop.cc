#include "transforms/drop.h"

#include <algorithm>

namespace searchsync {

Transform MakeDrop(std::vector<std::string> fields) {
  return [fields = std::move(fields)](Event event) -> Result<Event> {
    if (event.op != Op::kUpsert) return event;
    std::erase_if(event.document, [&](const Field& field) {
      return std::find(fields.begin(), fields.end(), field.name) != fields.end();
    });
    return event;
  };
}

Transform ParseDrop(const YAML::Node& value, const std::string& path, const Section& where) {
  std::vector<std::string> fields;
  if (value.IsScalar() && !value.Scalar().empty()) {
    fields.push_back(value.Scalar());
  } else if (value.IsSequence() && value.size() > 0) {
    bool ok = true;
    size_t index = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++index) {
      if (!it->IsScalar() || it->Scalar().empty()) {
        where.ErrorAt(*it, path + "[" + std::to_string(index) + "]: expected a field name");
        ok = false;
        continue;
      }
      fields.push_back(it->Scalar());
    }
    if (!ok) return {};
  } else {
    where.ErrorAt(value, path + ": expected a list of field names, like [internal_notes]");
    return {};
  }
  return MakeDrop(std::move(fields));
}

}  // namespace searchsync
