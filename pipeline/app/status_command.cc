#include "pipeline/app/status_command.h"

#include <simdjson.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "pipeline/app/admin_client.h"
#include "pipeline/app/backup.h"
#include "pipeline/app/cli.h"
#include "pipeline/app/reindex_command.h"
#include "pipeline/json.h"
#include "pipeline/state_store.h"

namespace searchsync {
namespace {

// `searchsync status` while a daemon answers on admin.listen: its live /status (JSON with
// `json`, else a table with lag and reindex progress). nullopt when no daemon answers there
// (the caller then shows the state store); otherwise the exit code.
std::optional<int> PrintDaemonStatus(const Config& config, bool json) {
  if (config.admin.listen.empty()) return std::nullopt;
  const AdminClient client(config.admin);
  Result<AdminClient::Response> status = client.Get("/status");
  if (!status.ok()) return std::nullopt;
  if (status->status != 200) {
    std::fprintf(stderr, "GET /status on %s: %s\n", client.address().c_str(),
                 AdminErrorMessage(*status).c_str());
    return kExitRuntime;
  }
  if (json) {
    std::printf("%s\n", status->body.c_str());
    return kExitOk;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array pipelines;
  if (parser.parse(status->body).get(root) != simdjson::SUCCESS ||
      root["pipelines"].get_array().get(pipelines) != simdjson::SUCCESS) {
    std::fprintf(stderr, "GET /status on %s: not a status answer\n", client.address().c_str());
    return kExitRuntime;
  }
  std::printf("live status of the daemon at %s\n", client.address().c_str());
  std::printf("%-20s %-10s %8s %12s %12s %13s  %-26s %s\n", "PIPELINE", "STATE", "LAG", "READ",
              "ACKED", "DEAD-LETTERED", "REINDEX", "LAST ERROR");
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object row;
    if (item.get_object().get(row) != simdjson::SUCCESS) continue;
    double lag = 0;
    if (row["lag_seconds"].get_double().get(lag) != simdjson::SUCCESS) lag = 0;
    const std::string name = StringField(row, "name");
    std::string reindex = "-";
    if (const std::optional<ReindexProgress> progress = ReindexFromStatus(status->body, name)) {
      reindex = progress->state;
      if (progress->state == "running") {
        reindex += " " + progress->phase + " " + Grouped(progress->rows_written);
        if (progress->rows_expected > 0) reindex += "/" + Grouped(progress->rows_expected);
      }
    }
    char lag_text[32];
    std::snprintf(lag_text, sizeof(lag_text), "%.1fs", lag);
    std::printf("%-20s %-10s %8s %12llu %12llu %13llu  %-26s %s\n", name.c_str(),
                StringField(row, "state").c_str(), lag_text,
                static_cast<unsigned long long>(UintField(row, "events_read")),
                static_cast<unsigned long long>(UintField(row, "events_acked")),
                static_cast<unsigned long long>(UintField(row, "dead_lettered")), reindex.c_str(),
                StringField(row, "last_error").c_str());
  }
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object row;
    if (item.get_object().get(row) != simdjson::SUCCESS) continue;
    const std::string checkpoint = StringField(row, "checkpoint");
    if (!checkpoint.empty()) {
      std::printf("%s checkpoint: %s\n", StringField(row, "name").c_str(), checkpoint.c_str());
    }
    // Lowered from sink.concurrency while Typesense refuses writes or lags.
    if (const uint64_t limit = UintField(row, "in_flight_limit"); limit > 0) {
      std::printf("%s writes in flight allowed: %llu\n", StringField(row, "name").c_str(),
                  static_cast<unsigned long long>(limit));
    }
  }
  return kExitOk;
}

// The complete backups in each pipeline's backup.to (S3: one request per 1,000 keys).
void PrintBackups(const Config& config) {
  for (const PipelineConfig& pipeline : config.pipelines) {
    if (pipeline.backup.to.empty()) continue;
    Result<std::vector<std::string>> names = ListBackups(config, pipeline, pipeline.backup.to);
    if (!names.ok()) {
      std::printf("%s backups: cannot list %s: %s\n", pipeline.name.c_str(),
                  pipeline.backup.to.c_str(), names.status().message().c_str());
    } else {
      std::printf("%s backups: %zu in %s%s\n", pipeline.name.c_str(), names->size(),
                  pipeline.backup.to.c_str(),
                  names->empty() ? "" : (", newest " + names->back()).c_str());
    }
  }
}

}  // namespace

int RunStatusCommand(const Config& config, bool json) {
  // A running daemon knows more (lag, reindex progress) and is more current than the store.
  if (std::optional<int> live = PrintDaemonStatus(config, json)) {
    if (!json) PrintBackups(config);
    return *live;
  }
  // Only reads: creates no directory or file, and changes nothing a daemon may be writing.
  Result<std::unique_ptr<StateStore>> state = StateStore::OpenReadOnly(config.state.path);
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().message().c_str());
    return kExitRuntime;
  }
  std::vector<PipelineState> rows;
  for (const PipelineConfig& pipeline : config.pipelines) {
    Result<PipelineState> row =
        *state ? (*state)->Load(pipeline.name) : PipelineState{.pipeline = pipeline.name};
    if (!row.ok()) {
      std::fprintf(stderr, "%s\n", row.status().message().c_str());
      return kExitRuntime;
    }
    rows.push_back(std::move(*row));
  }
  if (json) {
    nlohmann::ordered_json pipelines = nlohmann::ordered_json::array();
    for (const PipelineState& row : rows) {
      pipelines.push_back({{"name", row.pipeline},
                           {"state", RunStateName(row.state)},
                           {"checkpoint", row.checkpoint.token},
                           {"events_read", row.counters.events_read},
                           {"events_acked", row.counters.events_acked},
                           {"dead_lettered", row.counters.dead_lettered},
                           {"last_error", row.last_error},
                           {"updated_at", row.updated_at}});
    }
    std::printf("%s\n", DumpJson({{"pipelines", std::move(pipelines)}}).c_str());
    return kExitOk;
  }
  std::printf("%-20s %-10s %12s %12s %13s  %-20s %s\n", "PIPELINE", "STATE", "READ", "ACKED",
              "DEAD-LETTERED", "UPDATED", "LAST ERROR");
  for (const PipelineState& row : rows) {
    std::printf("%-20s %-10s %12llu %12llu %13llu  %-20s %s\n", row.pipeline.c_str(),
                std::string(RunStateName(row.state)).c_str(),
                static_cast<unsigned long long>(row.counters.events_read),
                static_cast<unsigned long long>(row.counters.events_acked),
                static_cast<unsigned long long>(row.counters.dead_lettered), row.updated_at.c_str(),
                row.last_error.c_str());
  }
  for (const PipelineState& row : rows) {
    if (!row.checkpoint.empty()) {
      std::printf("%s checkpoint: %s\n", row.pipeline.c_str(), row.checkpoint.token.c_str());
    }
  }
  PrintBackups(config);
  return kExitOk;
}

}  // namespace searchsync
