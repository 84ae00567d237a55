#include "transforms/rename.h"

#include <algorithm>

namespace searchsync {

Transform MakeRename(std::vector<FieldRename> renames) {
  return [renames = std::move(renames)](Event event) -> Result<Event> {
    if (event.op != Op::kUpsert) return event;
    // Renamed in place. `applied[r]`: rename r applies to a field of this document.
    thread_local std::vector<bool> applied;
    applied.assign(renames.size(), false);
    bool any = false;
    for (Field& field : event.document) {
      for (size_t r = 0; r < renames.size(); ++r) {
        if (renames[r].from != field.name) continue;
        applied[r] = true;
        any = true;
        break;
      }
    }
    if (!any) return event;
    // A field that is not renamed but already has the new name of an applied rename is
    // replaced by the renamed field. Decided on the old names, before any is changed.
    const auto replaced = [&](const Field& field) {
      for (size_t r = 0; r < renames.size(); ++r) {
        if (renames[r].from == field.name) return false;  // renamed itself
      }
      for (size_t r = 0; r < renames.size(); ++r) {
        if (applied[r] && renames[r].to == field.name) return true;
      }
      return false;
    };
    std::erase_if(event.document, replaced);
    for (Field& field : event.document) {
      for (const FieldRename& rename : renames) {
        if (rename.from != field.name) continue;
        field.name = rename.to;
        break;
      }
    }
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
