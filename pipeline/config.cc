#include "pipeline/config.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include "pipeline/admin_server.h"
#include "pipeline/cron.h"
#include "pipeline/schema_check.h"
#include "pipeline/url.h"
#include "pipeline/yaml_json.h"

namespace searchsync {
namespace {

// ---- Key tables ----------------------------------------------------------------------------
// Each key fills its field of the options struct; its default is that field's in-class
// initialiser in config.h (or batcher.h), which the reference shows.

constexpr Key<Config> kTopKeyList[] = {
    {"typesense", KeyType::kMapping, kReadByHand, true,
     "The Typesense cluster the collections live in."},
    {"state", KeyType::kMapping, kReadByHand, false,
     "Where checkpoints and dead letters are kept."},
    {"admin", KeyType::kMapping, kReadByHand, false,
     "The admin HTTP API: health, status, metrics, reindex."},
    {"s3", KeyType::kMapping, kReadByHand, false,
     "The S3-compatible service for `s3://bucket/prefix` backup locations."},
    {"snapshot", KeyType::kMapping, kReadByHand, false,
     "Typesense's own server-side snapshots, taken on a schedule by `run`."},
    {"pipelines", KeyType::kSequence, kReadByHand, true,
     "One entry per source-to-collection pipeline; at least one."},
};
constinit const KeyTable<Config> kTopKeys(kTopKeyList);

constexpr Key<S3Options> kS3KeyList[] = {
    {"endpoint", KeyType::kString, &S3Options::endpoint, false,
     "`http(s)://host:port` of the service, addressed path-style; unset: AWS "
     "(`https://s3.<region>.amazonaws.com`)."},
    {"region", KeyType::kString, &S3Options::region, false, "Region the requests are signed for."},
    {"access_key_id", KeyType::kSecret, &S3Options::access_key_id, false,
     "e.g. `${AWS_ACCESS_KEY_ID}`."},
    {"secret_access_key", KeyType::kSecret, &S3Options::secret_access_key, false,
     "e.g. `${AWS_SECRET_ACCESS_KEY}`."},
};
constinit const KeyTable<S3Options> kS3Keys(kS3KeyList);

constexpr Key<SnapshotOptions> kSnapshotKeyList[] = {
    {"path", KeyType::kString, &SnapshotOptions::path, false,
     "Absolute directory on the Typesense server's machine the snapshot is copied to."},
    {"schedule", KeyType::kString, &SnapshotOptions::schedule, false,
     "5-field cron expression in the daemon's local time; unset: only `searchsync snapshot`."},
};
constinit const KeyTable<SnapshotOptions> kSnapshotKeys(kSnapshotKeyList);

constexpr Key<TypesenseOptions> kTypesenseKeyList[] = {
    {"nodes", KeyType::kStringList, &TypesenseOptions::nodes, true,
     "Node URLs, `http(s)://host:port`; with several nodes, requests fail over between them."},
    {"api_key", KeyType::kSecret, &TypesenseOptions::api_key, true,
     "Admin API key, e.g. `${TYPESENSE_API_KEY}`."},
    {"timeout", KeyType::kDuration, &TypesenseOptions::timeout, false,
     "Client-side timeout of one import call."},
    {"retry", KeyType::kMapping, kReadByHand, false,
     "Backoff for 429, 503, other 5xx and connection errors."},
};
constinit const KeyTable<TypesenseOptions> kTypesenseKeys(kTypesenseKeyList);

constexpr Key<RetryOptions> kRetryKeyList[] = {
    {"initial_backoff", KeyType::kDuration, &RetryOptions::initial_backoff, false,
     "Longest wait before the first retry; the bound doubles with each attempt (full jitter)."},
    {"max_backoff", KeyType::kDuration, &RetryOptions::max_backoff, false,
     "Upper bound of the wait between attempts."},
    {"max_elapsed", KeyType::kDuration, &RetryOptions::max_elapsed, false,
     "Give up on a request after this long; unset: retry forever."},
};
constinit const KeyTable<RetryOptions> kRetryKeys(kRetryKeyList);

constexpr Key<StateOptions> kStateKeyList[] = {
    {"path", KeyType::kString, &StateOptions::path, false,
     "Directory of the embedded checkpoint and dead-letter store."},
};
constinit const KeyTable<StateOptions> kStateKeys(kStateKeyList);

constexpr Key<AdminOptions> kAdminKeyList[] = {
    {"listen", KeyType::kString, &AdminOptions::listen, false,
     "`host:port` of the admin API, e.g. `127.0.0.1:8090`; port `0` picks a free port, logged "
     "as `admin API listening on HOST:PORT` (for tests: `status` and `reindex` cannot find "
     "it); unset: no admin API."},
    {"token", KeyType::kSecret, &AdminOptions::token, false,
     "Bearer token every call must carry; required when `listen` is not a loopback address."},
};
constinit const KeyTable<AdminOptions> kAdminKeys(kAdminKeyList);

constexpr Key<PipelineConfig> kPipelineKeyList[] = {
    {"name", KeyType::kString, &PipelineConfig::name, true,
     "Unique name, `[a-z0-9_-]+`; used in logs, metrics, state and on the command line."},
    {"source", KeyType::kMapping, kReadByHand, true,
     "Where changes come from; `type` picks the connector (see the source tables)."},
    {"transforms", KeyType::kSequence, kReadByHand, false,
     "Applied in order to every upsert; each item is a one-key mapping, e.g. "
     "`- rename: { a: b }`."},
    {"sink", KeyType::kMapping, kReadByHand, true, "The Typesense collection written to."},
    {"queue", KeyType::kMapping, kReadByHand, false,
     "Bounds of the change queue between source and sink; when full, the source pauses."},
    {"reindex", KeyType::kMapping, kReadByHand, false,
     "Scheduled rebuilds, and how many old collections to keep."},
    {"backup", KeyType::kMapping, kReadByHand, false,
     "Scheduled backups of the collection, and how many to keep."},
};
constinit const KeyTable<PipelineConfig> kPipelineKeys(kPipelineKeyList);

constexpr KeySpec kSourceTypeKey = {"type", KeyType::kString, "", true,
                                    "Selects the connector, and with it the keys below."};

constexpr Key<SinkOptions> kSinkKeyList[] = {
    {"collection", KeyType::kString, &SinkOptions::collection, true,
     "The alias searches use; each reindex builds a new collection behind it."},
    {"schema", KeyType::kMapping, kReadByHand, false,
     "The collection schema, Typesense's JSON written as YAML, with `fields` and without "
     "`name`. Exactly one of `schema` and `schema_file`."},
    {"schema_file", KeyType::kString, kReadByHand, false,
     "A JSON file holding the schema, relative to this config file."},
    {"batch", KeyType::kMapping, kReadByHand, false, "When an import call is sent."},
    {"concurrency", KeyType::kInt, &SinkOptions::concurrency, false,
     "Import calls in flight, 1..64."},
};
constinit const KeyTable<SinkOptions> kSinkKeys(kSinkKeyList);

constexpr Key<BatchOptions> kBatchKeyList[] = {
    {"max_events", KeyType::kInt, &BatchOptions::max_events, false,
     "Send once this many documents wait."},
    {"max_bytes", KeyType::kSize, &BatchOptions::max_bytes, false,
     "Send once the waiting documents hold this much."},
    {"flush_interval", KeyType::kDuration, &BatchOptions::flush_interval, false,
     "Send whatever waits this long after its first change."},
};
constinit const KeyTable<BatchOptions> kBatchKeys(kBatchKeyList);

constexpr Key<QueueOptions> kQueueKeyList[] = {
    {"max_events", KeyType::kInt, &QueueOptions::max_events, false,
     "Changes held between source and sink; at least `sink.batch.max_events`."},
    {"max_bytes", KeyType::kSize, &QueueOptions::max_bytes, false,
     "Memory held between source and sink; at least `sink.batch.max_bytes`."},
};
constinit const KeyTable<QueueOptions> kQueueKeys(kQueueKeyList);

constexpr Key<ReindexOptions> kReindexKeyList[] = {
    {"schedule", KeyType::kString, &ReindexOptions::schedule, false,
     "5-field cron expression in the daemon's local time, e.g. `\"0 3 * * *\"`; unset: only "
     "on demand."},
    {"keep", KeyType::kInt, &ReindexOptions::keep, false, "Old collections kept for rollback."},
};
constinit const KeyTable<ReindexOptions> kReindexKeys(kReindexKeyList);

constexpr Key<BackupOptions> kBackupKeyList[] = {
    {"to", KeyType::kString, &BackupOptions::to, false,
     "Where backups go: a directory, or `s3://bucket/prefix` (see `s3`); each backup is "
     "`<to>/<pipeline>/<UTC timestamp>/`. Also the default of `backup --to` and "
     "`restore --from`."},
    {"schedule", KeyType::kString, &BackupOptions::schedule, false,
     "5-field cron expression in the daemon's local time, e.g. `\"30 2 * * *\"`; needs `to`; "
     "unset: only `searchsync backup`."},
    {"keep", KeyType::kInt, &BackupOptions::keep, false,
     "Complete backups kept in `to` after each backup there; older ones are deleted. 0 keeps "
     "all."},
};
constinit const KeyTable<BackupOptions> kBackupKeys(kBackupKeyList);

constexpr int kMaxConcurrency = 64;

// ---- The parts of the config ---------------------------------------------------------------

// "" when `url` is a usable node URL (a trailing '/' is removed from it), else what is wrong.
std::string CheckNodeUrl(std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return "the scheme must be http:// or https://";
  }
  if (FindUrlUserInfo(url)) {
    return "a node URL holds no user:password@; Typesense authenticates with typesense.api_key";
  }
  if (rest.ends_with('/')) {
    rest.remove_suffix(1);
    url.pop_back();
  }
  if (rest.find('/') != std::string_view::npos) return "a node URL has no path";
  if (rest.empty()) return "the host is missing";
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos ||
      (rest.front() == '[' && (colon == 0 || rest[colon - 1] != ']'))) {
    return "the port is missing";
  }
  if (colon == 0) return "the host is missing";
  const std::string_view port_text = rest.substr(colon + 1);
  const std::optional<int64_t> port = ParseInt(port_text);
  if (port_text.starts_with('+') || !port || *port < 1 || *port > 65535) return "bad port";
  return "";
}

TypesenseOptions ParseTypesense(const Section& section) {
  TypesenseOptions options = kTypesenseKeys.Read(section);
  const YAML::Node nodes = section.Node("nodes");
  if (section.Has("nodes") && options.nodes.empty()) {
    section.Error("nodes", "needs at least one node URL, like http://127.0.0.1:8108");
  }
  for (size_t index = 0; index < options.nodes.size(); ++index) {
    std::string& url = options.nodes[index];
    const std::string problem = CheckNodeUrl(url);
    if (problem.empty()) continue;
    const YAML::Node at = nodes.IsSequence() ? Element(nodes, index) : nodes;
    section.ErrorAt(at, Indexed(section.PathOf("nodes"), index) +
                            ": expected a URL like http://127.0.0.1:8108, got " +
                            ShownValue(RedactUrl(url)) + " (" + problem + ")");
  }
  if (section.Has("api_key") && section.Node("api_key").IsScalar() && options.api_key.empty()) {
    section.Error("api_key", "is empty; set it, e.g. api_key: ${TYPESENSE_API_KEY}");
  }
  if (options.timeout <= Millis::zero()) section.Error("timeout", "must be longer than 0");

  const Section retry = section.Child("retry", kRetryKeys.specs());
  options.retry = kRetryKeys.Read(retry);
  if (options.retry.initial_backoff <= Millis::zero()) {
    retry.Error("initial_backoff", "must be longer than 0");
  }
  if (options.retry.max_backoff < options.retry.initial_backoff) {
    retry.Error(retry.Has("max_backoff") ? "max_backoff" : "initial_backoff",
                "max_backoff must be at least initial_backoff");
  }
  return options;
}

AdminOptions ParseAdmin(const Section& section) {
  AdminOptions options = kAdminKeys.Read(section);
  if (options.listen.empty()) return options;
  const size_t colon = options.listen.rfind(':');
  const std::optional<int64_t> port =
      colon == std::string::npos ? std::nullopt : ParseInt(options.listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {  // 0: a free port, logged at start
    section.Error("listen",
                  "expected host:port like 127.0.0.1:8090, got " + ShownValue(options.listen));
    return options;
  }
  if (options.token.empty() && !IsLoopbackHost(options.listen.substr(0, colon))) {
    section.Error("listen", options.listen +
                                " is not a loopback address, so admin.token is required "
                                "(e.g. token: ${SEARCHSYNC_ADMIN_TOKEN}); or listen on "
                                "127.0.0.1");
  }
  return options;
}

bool IsPipelineName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void ParseSource(const Section& pipeline, std::span<const SourceRegistration> sources,
                 PipelineConfig& out) {
  if (!pipeline.Has("source") || !pipeline.Node("source").IsMap()) return;  // already reported
  const YAML::Node source = pipeline.Node("source");
  const YAML::Node type = Lookup(source, "type");
  std::string registered;
  for (const SourceRegistration& registration : sources) {
    if (!registered.empty()) registered += ", ";
    registered += registration.type;
  }
  if (!Present(type) || !type.IsScalar()) {
    pipeline.Error("source", "needs `type`, one of: " + registered);
    return;
  }
  const std::string& name = type.Scalar();
  const auto registration = std::find_if(
      sources.begin(), sources.end(), [&](const SourceRegistration& r) { return r.type == name; });
  if (registration == sources.end()) {
    std::vector<std::string_view> types;
    for (const SourceRegistration& r : sources) types.push_back(r.type);
    const std::string near = Nearest(name, types);
    pipeline.ErrorAt(
        type,
        pipeline.PathOf("source") + ".type: unknown source type " + ShownValue(name) +
            (near.empty() ? "; known types: " + registered : " (did you mean '" + near + "'?)"));
    return;
  }
  const std::vector<KeySpec> keys = SourceKeys(*registration);
  const Section section = pipeline.Child("source", keys);
  out.source_type = name;
  // A null factory means the connector recorded its errors through `section`.
  out.make_source = registration->parse(section, out.name);
}

void ParseTransforms(const Section& pipeline, std::span<const TransformRegistration> registered,
                     PipelineConfig& out) {
  const YAML::Node transforms = pipeline.Node("transforms");
  if (!transforms.IsSequence()) return;
  const std::string path = pipeline.PathOf("transforms");
  size_t index = 0;
  for (auto it = transforms.begin(); it != transforms.end(); ++it, ++index) {
    const YAML::Node item = *it;
    if (!item.IsMap()) continue;  // reported by the sequence check
    const std::string item_path = Indexed(path, index);
    if (item.size() != 1) {
      pipeline.ErrorAt(item, item_path +
                                 ": expected one transform per item, like "
                                 "`- rename: { from: to }`, got " +
                                 std::to_string(item.size()) + " keys");
      continue;
    }
    const auto entry = item.begin();
    const std::string name = entry->first.IsScalar() ? entry->first.Scalar() : "";
    const auto registration =
        std::find_if(registered.begin(), registered.end(),
                     [&](const TransformRegistration& r) { return r.name == name; });
    if (registration == registered.end()) {
      std::vector<std::string_view> names;
      std::string known;
      for (const TransformRegistration& r : registered) {
        names.push_back(r.name);
        known += (known.empty() ? "" : ", ") + std::string(r.name);
      }
      const std::string near = Nearest(name, names);
      pipeline.ErrorAt(entry->first, item_path + ": unknown transform " + ShownValue(name) +
                                         (near.empty() ? "; known transforms: " + known
                                                       : " (did you mean '" + near + "'?)"));
      continue;
    }
    Transform transform = registration->parse(entry->second, item_path + "." + name, pipeline);
    if (transform) out.transforms.push_back(std::move(transform));
  }
}

// Records each CheckSchema problem: for an inline schema at its YAML node, for a schema file at
// the schema_file key.
void ReportSchemaProblems(const Section& sink, const std::string& schema_json,
                          const std::string& schema_file) {
  const YAML::Node schema = sink.Node("schema");
  const YAML::Node fields = Lookup(schema, "fields");
  for (const SchemaProblem& problem : CheckSchema(schema_json)) {
    std::string where = problem.field ? Indexed("fields", *problem.field) : "";
    if (!problem.key.empty()) where = where.empty() ? problem.key : where + "." + problem.key;
    if (!schema_file.empty()) {
      sink.Error("schema_file", schema_file + ": " + where + ": " + problem.message);
      continue;
    }
    // (Never assign one YAML::Node to another: that rebinds the node inside the document.)
    const YAML::Node base = problem.field ? Element(fields, *problem.field) : schema;
    const YAML::Node value = Lookup(base, problem.key);
    sink.ErrorAt(value.IsDefined() ? value : base,
                 sink.PathOf("schema") + "." + where + ": " + problem.message);
  }
}

SinkOptions ParseSink(const Section& sink, const Section& batch, bool present,
                      const std::string& config_dir) {
  SinkOptions options = kSinkKeys.Read(sink);
  if (sink.Has("collection") && options.collection.empty()) sink.Error("collection", "is empty");
  const bool has_schema = sink.Has("schema");
  const bool has_schema_file = sink.Has("schema_file");
  if (has_schema && has_schema_file) {
    sink.Error("schema_file", "set either schema or schema_file, not both");
  } else if (!has_schema && !has_schema_file) {
    if (present) {
      sink.Error("schema",
                 "missing; set `schema` (a mapping with fields) or `schema_file` (a "
                 "JSON file)");
    }
  } else if (has_schema) {
    const YAML::Node schema = sink.Node("schema");
    if (schema.IsMap()) {
      const YAML::Node fields = Lookup(schema, "fields");
      bool usable = true;
      if (!Present(fields) || !fields.IsSequence()) {
        sink.Error("schema", "needs `fields`, a sequence like [{ name: title, type: string }]");
        usable = false;
      }
      if (const YAML::Node name = KeyNode(schema, "name"); name.IsDefined()) {
        sink.ErrorAt(name, sink.PathOf("schema") +
                               ".name: remove it; the engine names collections itself and "
                               "points the alias `collection` at them");
        usable = false;
      }
      if (usable) {
        options.schema_json = YamlToJson(schema);
        ReportSchemaProblems(sink, options.schema_json, "");
      }
    }
  } else {
    std::filesystem::path path = sink.String("schema_file");
    if (path.is_relative()) path = std::filesystem::path(config_dir) / path;
    const std::string problem = ReadSchemaFile(path, options.schema_json);
    if (!problem.empty()) {
      sink.Error("schema_file", problem);
    } else {
      ReportSchemaProblems(sink, options.schema_json, path.string());
    }
  }

  options.batch = kBatchKeys.Read(batch);
  if (options.batch.max_events < 1) {
    batch.Error("max_events", "must be at least 1");
    options.batch.max_events = 1;
  }
  if (options.batch.max_bytes < 1) batch.Error("max_bytes", "must be at least 1 byte");
  if (options.batch.flush_interval <= Millis::zero()) {
    batch.Error("flush_interval", "must be longer than 0");
  }

  if (options.concurrency < 1 || options.concurrency > kMaxConcurrency) {
    sink.Error("concurrency", "must be between 1 and " + std::to_string(kMaxConcurrency) +
                                  ", got " + std::to_string(options.concurrency));
    options.concurrency = std::clamp(options.concurrency, 1, kMaxConcurrency);
  }
  return options;
}

QueueOptions ParseQueue(const Section& queue, const Section& batch,
                        const BatchOptions& batch_options) {
  const QueueOptions options = kQueueKeys.Read(queue);
  const size_t batch_events = batch_options.max_events;
  const size_t batch_bytes = batch_options.max_bytes;
  // Blame the key the user wrote: the queue's when set, else the batch's.
  if (options.max_events < batch_events) {
    if (queue.Has("max_events")) {
      queue.Error("max_events", "must be at least sink.batch.max_events (" +
                                    std::to_string(batch_events) + "), got " +
                                    std::to_string(options.max_events));
    } else {
      batch.Error("max_events", "must be at most queue.max_events (" +
                                    std::to_string(options.max_events) +
                                    "); raise queue.max_events");
    }
  }
  if (options.max_bytes < batch_bytes) {
    if (queue.Has("max_bytes")) {
      queue.Error("max_bytes", "must be at least sink.batch.max_bytes (" +
                                   std::to_string(batch_bytes) + " bytes), got " +
                                   std::to_string(options.max_bytes));
    } else {
      batch.Error("max_bytes", "must be at most queue.max_bytes (" +
                                   std::to_string(options.max_bytes) +
                                   " bytes); raise queue.max_bytes");
    }
  }
  return options;
}

// Records an error unless `schedule` (when present) is a 5-field cron expression.
void CheckSchedule(const Section& section, const std::string& schedule) {
  if (!section.Has("schedule")) return;
  std::istringstream fields(schedule);
  std::string field;
  int count = 0;
  while (fields >> field) ++count;
  if (count != 5 && !schedule.starts_with('@')) {
    section.Error("schedule", "expected a 5-field cron expression like \"0 3 * * *\", got " +
                                  ShownValue(schedule));
  } else if (Result<CronSchedule> cron = CronSchedule::Parse(schedule); !cron.ok()) {
    section.Error("schedule",
                  "cron expression " + ShownValue(schedule) + ": " + cron.status().message());
  }
}

// Records an error when `keep` (how many old collections or backups to keep) is negative, and
// makes it 0.
void CheckKeep(const Section& section, int& keep) {
  if (keep >= 0) return;
  section.Error("keep", "must be 0 or more");
  keep = 0;
}

ReindexOptions ParseReindex(const Section& section) {
  ReindexOptions options = kReindexKeys.Read(section);
  CheckSchedule(section, options.schedule);
  CheckKeep(section, options.keep);
  return options;
}

BackupOptions ParseBackup(const Section& section, const S3Options& s3, bool s3_configured) {
  BackupOptions options = kBackupKeys.Read(section);
  CheckSchedule(section, options.schedule);
  if (section.Has("schedule") && options.to.empty()) {
    section.Error("schedule", "needs backup.to: where the scheduled backups go");
  }
  if (options.to.starts_with("s3://")) {
    if (options.to.size() == 5 || options.to[5] == '/') {
      section.Error("to", "expected s3://BUCKET/PREFIX, got " + ShownValue(options.to));
    } else if (!s3_configured || s3.access_key_id.empty() || s3.secret_access_key.empty()) {
      section.Error("to",
                    "is an s3:// location, so the top-level s3 section needs "
                    "access_key_id and secret_access_key");
    }
  }
  CheckKeep(section, options.keep);
  return options;
}

S3Options ParseS3(const Section& section) {
  S3Options options = kS3Keys.Read(section);
  if (!options.endpoint.empty() && !options.endpoint.starts_with("http://") &&
      !options.endpoint.starts_with("https://")) {
    section.Error("endpoint", "expected a URL like https://s3.example.com:9000, got " +
                                  ShownValue(options.endpoint));
  }
  if (options.region.empty()) section.Error("region", "is empty");
  if (options.endpoint.empty()) {
    options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  }
  return options;
}

void ParseDocument(const YAML::Node& root, const std::string& file,
                   const ConnectorParsers& connectors, Config& config, ConfigErrors& errors) {
  const Section top(file, root, "", kTopKeys.specs(), errors);
  config.typesense = ParseTypesense(top.Child("typesense", kTypesenseKeys.specs()));
  const Section state = top.Child("state", kStateKeys.specs());
  config.state = kStateKeys.Read(state);
  if (config.state.path.empty()) state.Error("path", "is empty");
  config.admin = ParseAdmin(top.Child("admin", kAdminKeys.specs()));
  config.s3 = ParseS3(top.Child("s3", kS3Keys.specs()));
  const Section snapshot = top.Child("snapshot", kSnapshotKeys.specs());
  config.snapshot = kSnapshotKeys.Read(snapshot);
  CheckSchedule(snapshot, config.snapshot.schedule);
  if (snapshot.Has("schedule") && config.snapshot.path.empty()) {
    snapshot.Error("schedule", "needs snapshot.path: where the server copies the snapshot");
  }

  const YAML::Node pipelines = top.Node("pipelines");
  if (!pipelines.IsSequence()) return;
  if (pipelines.size() == 0) top.Error("pipelines", "needs at least one pipeline");
  const std::string config_dir = std::filesystem::path(file).parent_path().string();
  std::map<std::string, int> names;  // name -> 1-based line
  for (size_t index = 0; index < pipelines.size(); ++index) {
    if (!Element(pipelines, index).IsMap()) continue;  // reported by the sequence check
    const Section pipeline = top.Item("pipelines", index, kPipelineKeys.specs());
    PipelineConfig out = kPipelineKeys.Read(pipeline);
    if (pipeline.Has("name")) {
      if (!IsPipelineName(out.name)) {
        pipeline.Error(
            "name", "expected lowercase letters, digits, '_' and '-', got " + ShownValue(out.name));
      } else if (const auto [first, inserted] =
                     names.emplace(out.name, MarkOf(pipeline.Node("name")).line + 1);
                 !inserted) {
        pipeline.Error("name", "duplicate pipeline name '" + out.name + "' (first used on line " +
                                   std::to_string(first->second) + ")");
      }
    }
    ParseSource(pipeline, connectors.sources, out);
    ParseTransforms(pipeline, connectors.transforms, out);
    const Section sink = pipeline.Child("sink", kSinkKeys.specs());
    const Section batch = sink.Child("batch", kBatchKeys.specs());
    out.sink = ParseSink(sink, batch, pipeline.Has("sink"), config_dir);
    out.queue = ParseQueue(pipeline.Child("queue", kQueueKeys.specs()), batch, out.sink.batch);
    out.reindex = ParseReindex(pipeline.Child("reindex", kReindexKeys.specs()));
    out.backup =
        ParseBackup(pipeline.Child("backup", kBackupKeys.specs()), config.s3, top.Has("s3"));
    config.pipelines.push_back(std::move(out));
  }
}

Result<Config> Failed(ConfigErrors& errors) {
  std::vector<ConfigError> sorted = errors.all();
  std::stable_sort(sorted.begin(), sorted.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  ConfigErrors out;
  for (ConfigError& error : sorted) out.Add(std::move(error));
  return InvalidArgument(out.ToString());
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& file,
                           const ConnectorParsers& connectors) {
  ConfigErrors errors;
  Config config;
  config.file = file;
  if (std::optional<YAML::Node> root = LoadYamlDocument(text, file, errors)) {
    try {
      ParseDocument(*root, file, connectors, config, errors);
    } catch (const YAML::Exception& e) {
      Record(errors, file, e.mark, "YAML error: " + e.msg);
    }
  }
  if (!errors.empty()) return Failed(errors);
  return config;
}

Result<Config> LoadConfig(const std::string& path, const ConnectorParsers& connectors) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return InvalidArgument(
        ConfigError{.file = path, .message = text.status().message()}.ToString());
  }
  return ParseConfig(*text, path, connectors);
}

std::vector<TitledKeys> FileKeyTables() {
  return {
      {"Top level", kTopKeys.specs()},           {"`typesense`", kTypesenseKeys.specs()},
      {"`typesense.retry`", kRetryKeys.specs()}, {"`state`", kStateKeys.specs()},
      {"`admin`", kAdminKeys.specs()},           {"`s3`", kS3Keys.specs()},
      {"`snapshot`", kSnapshotKeys.specs()},     {"`pipelines[]`", kPipelineKeys.specs()},
  };
}

std::vector<TitledKeys> PipelineKeyTables() {
  return {
      {"`pipelines[].sink`", kSinkKeys.specs()},
      {"`pipelines[].sink.batch`", kBatchKeys.specs()},
      {"`pipelines[].queue`", kQueueKeys.specs()},
      {"`pipelines[].reindex`", kReindexKeys.specs()},
      {"`pipelines[].backup`", kBackupKeys.specs()},
  };
}

std::vector<KeySpec> SourceKeys(const SourceRegistration& registration) {
  std::vector<KeySpec> keys{kSourceTypeKey};
  keys.insert(keys.end(), registration.keys.begin(), registration.keys.end());
  return keys;
}

}  // namespace searchsync
