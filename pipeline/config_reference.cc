#include "pipeline/config_reference.h"

#include <span>
#include <string_view>
#include <vector>

#include "pipeline/config_section.h"

namespace searchsync {
namespace {

void AppendTable(std::string& out, std::string_view title, std::span<const KeySpec> keys) {
  auto cell = [](std::string_view text) {
    std::string escaped;
    for (const char c : text) {
      if (c == '|') escaped += '\\';
      escaped += c;
    }
    return escaped;
  };
  out += "### ";
  out += title;
  out += "\n\n| key | type | default | required | description |\n|---|---|---|---|---|\n";
  for (const KeySpec& spec : keys) {
    out += "| `" + std::string(spec.name) + "` | " + KeyTypeName(spec.type) + " | ";
    if (!spec.default_value.empty()) out += "`" + cell(spec.default_value) + "`";
    out += spec.required ? " | yes | " : " | | ";
    out += cell(spec.help);
    out += " |\n";
  }
  out += "\n";
}

}  // namespace

std::string ConfigReferenceMarkdown(const ConnectorParsers& connectors) {
  std::string out =
      "Durations carry units: `250ms`, `5s`, `30m`, `24h` (`1h30m` adds up). Sizes are `512KiB`, "
      "`8MiB`, `1GiB` (binary), `KB`/`MB`/`GB` (decimal) or a plain byte count. `${VAR}` and "
      "`${VAR:-default}` are replaced from the environment in every value (a default may hold "
      "references itself: `${A:-${B}}`); `$${` is a literal `${`. YAML anchors, aliases and "
      "merge keys (`<<: *defaults`) work. Unknown keys are errors.\n\n";
  for (const TitledKeys& table : FileKeyTables()) AppendTable(out, table.title, table.keys);
  for (const SourceRegistration& registration : connectors.sources) {
    AppendTable(out, "`pipelines[].source` with `type: " + std::string(registration.type) + "`",
                SourceKeys(registration));
  }
  out += "### `pipelines[].transforms[]`\n\n| transform | description |\n|---|---|\n";
  for (const TransformRegistration& registration : connectors.transforms) {
    out +=
        "| `" + std::string(registration.name) + "` | " + std::string(registration.help) + " |\n";
  }
  out += "\n";
  for (const TitledKeys& table : PipelineKeyTables()) AppendTable(out, table.title, table.keys);
  return out;
}

}  // namespace searchsync
