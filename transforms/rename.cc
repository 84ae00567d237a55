#include "transforms/rename.h"

#include <algorithm>

namespace searchsync {

Transform MakeRename(std::vector<FieldRename> renames) {
  return [renames = std::move(renames)](Event event) -> Result<Event> {
    if (event.op != Op::kUpsert) return event;
    auto rename_of = [&](const std::string& name) {
      return std::find_if(renames.begin(), renames.end(),
                          [&](const FieldRename& rename) { return rename.from == name; });
    };
    // New names of the fields present; a field already carrying one of them is replaced.
    std::vector<const std::string*> targets;
    for (const Field& field : event.document) {
      if (const auto rename = rename_of(field.name); rename != renames.end()) {
        targets.push_back(&rename->to);
      }
    }
    if (targets.empty()) return event;
    Document renamed;
    renamed.reserve(event.document.size());
    for (Field& field : event.document) {
      if (const auto rename = rename_of(field.name); rename != renames.end()) {
        field.name = rename->to;
        renamed.push_back(std::move(field));
      } else if (std::none_of(targets.begin(), targets.end(),
                              [&](const std::string* to) { return *to == field.name; })) {
        renamed.push_back(std::move(field));
      }
    }
    event.document = std::move(renamed);
    return event;
  };
}

Transform ParseRename(const YAML::Node& value, const std::string& path, const Section& where) {
  if (!value.IsMap() || value.size() == 0) {
    where.ErrorAt(value, path + ": expected a mapping of field names, like { old_name: new_name }");
    return {};
  }
  std::vector<FieldRename> renames;
  bool ok = true;
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string from = it->first.IsScalar() ? it->first.Scalar() : "";
    if (from.empty()) {
      where.ErrorAt(it->first, path + ": expected a field name as the key");
      ok = false;
      continue;
    }
    const std::string field_path = path + "." + from;
    if (!it->second.IsScalar() || it->second.Scalar().empty()) {
      where.ErrorAt(it->second, field_path + ": expected the new field name");
      ok = false;
      continue;
    }
    const std::string& to = it->second.Scalar();
    if (to == "id") {
      where.ErrorAt(it->second, field_path +
                                    ": cannot rename onto 'id': the document id comes "
                                    "from the source's key, and the sink ignores a "
                                    "field named id");
      ok = false;
      continue;
    }
    const auto same = std::find_if(renames.begin(), renames.end(), [&](const FieldRename& r) {
      return r.from == from || r.to == to;
    });
    if (same != renames.end()) {
      where.ErrorAt(it->first, same->from == from
                                   ? field_path + ": renamed twice"
                                   : field_path + ": both '" + same->from + "' and '" + from +
                                         "' are renamed to '" + to + "'");
      ok = false;
      continue;
    }
    renames.push_back({.from = from, .to = to});
  }
  if (!ok) return {};
  return MakeRename(std::move(renames));
}

}  // namespace searchsync
