#include "sinks/typesense_encode.h"

#include <simdjson.h>

#include <ctime>
#include <unordered_set>

#include "pipeline/json.h"
#include "sinks/typesense_http_result.h"

namespace searchsync {
namespace {

// One import result line, read. `error` is set only for failures.
struct ImportLineResult {
  bool success = false;
  int64_t code = 0;
  std::string error;
};

Result<ImportLineResult> ParseImportLine(simdjson::dom::parser& parser, std::string_view line) {
  simdjson::dom::element element;
  if (parser.parse(line.data(), line.size()).get(element) != simdjson::SUCCESS) {
    return Unavailable("result line is not JSON");
  }
  simdjson::dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) {
    return Unavailable("result line is not a JSON object");
  }
  ImportLineResult result;
  if (object["success"].get_bool().get(result.success) != simdjson::SUCCESS) {
    return Unavailable("result line has no boolean \"success\"");
  }
  if (result.success) return result;
  int64_t code = 0;
  if (object["code"].get_int64().get(code) == simdjson::SUCCESS) result.code = code;
  std::string_view error;
  if (object["error"].get_string().get(error) == simdjson::SUCCESS) result.error = error;
  if (TrimBlank(result.error).empty()) {
    // Real servers always say why; a proxy or an unusual version may not. The line itself is
    // the only evidence there is.
    std::string shown(line.substr(0, kMaxServerMessageBytes));
    if (line.size() > shown.size()) shown += "...";
    result.error =
        "typesense refused the document without giving a reason (result line: " + shown + ")";
  }
  return result;
}

void AppendIdList(std::string& out, std::span<const std::string_view> ids) {
  out += "id:[";
  for (size_t id_idx = 0; id_idx < ids.size(); ++id_idx) {
    if (id_idx > 0) out.push_back(',');
    out.push_back('`');
    out += ids[id_idx];
    out.push_back('`');
  }
  out.push_back(']');
}

}  // namespace

// ---- Import --------------------------------------------------------------------------------

ImportBody EncodeUpserts(const Batch& batch) {
  ImportBody body;
  body.jsonl.reserve(batch.byte_size);
  for (size_t event_idx = 0; event_idx < batch.events.size(); ++event_idx) {
    const Event& event = batch.events[event_idx];
    if (event.op != Op::kUpsert) continue;
    if (!body.line_events.empty()) body.jsonl.push_back('\n');
    AppendDocumentJson(body.jsonl, event);
    body.line_events.push_back(event_idx);
  }
  return body;
}

Result<WriteReport> ParseImportResponse(std::string_view body,
                                        std::span<const size_t> line_events) {
  simdjson::dom::parser parser;
  WriteReport report;
  size_t line_idx = 0;
  while (!body.empty()) {
    const size_t end = body.find('\n');
    const std::string_view line = TrimBlank(body.substr(0, end));
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (line.empty()) continue;
    if (line_idx >= line_events.size()) {
      return Unavailable("import answered more result lines than the " +
                         std::to_string(line_events.size()) + " documents sent");
    }
    Result<ImportLineResult> result = ParseImportLine(parser, line);
    if (!result.ok()) {
      return Unavailable("import result line " + std::to_string(line_idx + 1) + ": " +
                         result.status().message());
    }
    if (!result->success) {
      const bool server_failed = result->code == 429 || result->code >= 500;
      (server_failed ? report.retryable : report.rejected)
          .push_back(Rejection{.event_index = line_events[line_idx],
                               .code = static_cast<int>(result->code),
                               .error = std::move(result->error)});
    }
    ++line_idx;
  }
  if (line_idx != line_events.size()) {
    return Unavailable("import answered " + std::to_string(line_idx) + " result lines for " +
                       std::to_string(line_events.size()) + " documents sent");
  }
  return report;
}

// ---- Deletes -------------------------------------------------------------------------------

bool IdFitsDeleteFilter(std::string_view id) {
  if (id.empty() || id == "*") return false;
  if (id.find('`') != std::string_view::npos) return false;
  if (id.back() == '\\') return false;
  if (id.front() == ' ' || id.back() == ' ') return false;
  return true;
}

std::string IdListFilter(std::span<const std::string_view> ids) {
  std::string filter;
  AppendIdList(filter, ids);
  return filter;
}

DeletePlan PlanDeletes(std::span<const std::string_view> ids) {
  // Encoded sizes of the fixed parts: "id:[" + "]" and, per id, two backticks and a comma.
  static const size_t kFrameBytes = PercentEncodedSize("id:[]");
  static const size_t kPerIdBytes = PercentEncodedSize("``,");

  DeletePlan plan;
  std::unordered_set<std::string_view> seen;
  std::vector<std::string_view> chunk;
  size_t chunk_bytes = kFrameBytes;
  const auto flush = [&] {
    if (chunk.empty()) return;
    plan.encoded_filters.push_back(PercentEncode(IdListFilter(chunk)));
    chunk.clear();
    chunk_bytes = kFrameBytes;
  };
  for (const std::string_view id : ids) {
    if (!seen.insert(id).second) continue;
    if (!IdFitsDeleteFilter(id)) {
      plan.single_ids.emplace_back(id);
      continue;
    }
    const size_t id_bytes = PercentEncodedSize(id) + kPerIdBytes;
    if (!chunk.empty() && (chunk.size() >= kMaxIdsPerDeleteFilter ||
                           chunk_bytes + id_bytes > kMaxDeleteFilterBytes)) {
      flush();
    }
    chunk.push_back(id);
    chunk_bytes += id_bytes;
  }
  flush();
  return plan;
}

DeletePlan PlanDeletes(const Batch& batch) {
  std::vector<std::string_view> ids;
  for (const Event& event : batch.events) {
    if (event.op == Op::kDelete) ids.push_back(event.id);
  }
  return PlanDeletes(ids);
}

std::string FilterDeleteTarget(std::string_view collection, std::string_view encoded_filter) {
  std::string target = "/collections/";
  AppendPercentEncoded(target, collection);
  target += "/documents?filter_by=";
  target += encoded_filter;
  return target;
}

std::string ImportTarget(std::string_view collection, std::string_view action) {
  std::string target = "/collections/";
  AppendPercentEncoded(target, collection);
  target += "/documents/import?action=";
  AppendPercentEncoded(target, action);
  return target;
}

std::string DocumentDeleteTarget(std::string_view collection, std::string_view id) {
  std::string target = "/collections/";
  AppendPercentEncoded(target, collection);
  target += "/documents/";
  AppendPercentEncoded(target, id);
  target += "?ignore_not_found=true";
  return target;
}

// ---- Names and URLs ------------------------------------------------------------------------

std::string TimestampedCollectionName(std::string_view alias,
                                      std::chrono::system_clock::time_point now) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  const size_t size = std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
  return std::string(alias) + "_" + std::string(stamp, size);
}

std::string FirstCollectionName(std::string_view alias) {
  return TimestampedCollectionName(alias, std::chrono::system_clock::time_point{});
}

Result<std::string> SchemaWithName(std::string_view schema_json, std::string_view name) {
  const std::string_view schema = TrimBlank(schema_json);
  if (schema.empty()) {
    return InvalidArgument("sink.schema is required to create collection '" + std::string(name) +
                           "'");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  if (parser.parse(schema.data(), schema.size()).get(element) != simdjson::SUCCESS) {
    return InvalidArgument("sink.schema is not valid JSON");
  }
  simdjson::dom::object object;
  if (element.get_object().get(object) != simdjson::SUCCESS) {
    return InvalidArgument("sink.schema must be a JSON object");
  }
  if (object["name"].error() == simdjson::SUCCESS) {
    return InvalidArgument(
        "sink.schema must not contain \"name\": the collection name comes from sink.collection");
  }
  std::string body = "{\"name\":";
  AppendJsonString(body, name);
  // `schema` is an object: drop its '{'; add a comma unless it is empty.
  const std::string_view rest = TrimBlank(schema.substr(1));
  if (rest != "}") body.push_back(',');
  body += rest;
  return body;
}

}  // namespace searchsync
