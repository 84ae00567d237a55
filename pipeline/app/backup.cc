#include "pipeline/app/backup.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <thread>
#include <type_traits>

#include "pipeline/app/registry.h"
#include "pipeline/app/s3_client.h"
#include "pipeline/collection_admin.h"
#include "pipeline/log.h"
#include "pipeline/metrics.h"
#include "pipeline/retry.h"
#include "pipeline/state_store.h"
#include "pipeline/version.h"
#include "sinks/typesense_client.h"
#include "sinks/typesense_encode.h"
#include "sinks/typesense_http_result.h"

namespace searchsync {
namespace {

namespace fs = std::filesystem;

// One import call of a restore carries at most this much; small enough for any server's body
// limit and to keep memory flat, large enough that call overhead does not dominate.
constexpr size_t kRestoreBatchDocuments = 10'000;
constexpr size_t kRestoreBatchBytes = 8 * 1024 * 1024;
// A command has to end: transient Typesense failures are retried this long when
// typesense.retry.max_elapsed is unset (the daemon's sink retries forever instead).
constexpr std::chrono::minutes kDefaultGiveUpAfter{10};
// "20261121T031500.123Z"
constexpr size_t kBackupNameSize = 20;

std::string Component(const PipelineConfig& pipeline, const char* what) {
  return "pipeline=" + pipeline.name + " " + what;
}

bool IsBackupName(std::string_view name) {
  if (name.size() != kBackupNameSize) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = i == 8    ? c == 'T'
                    : i == 15 ? c == '.'
                    : i == 19 ? c == 'Z'
                              : std::isdigit(static_cast<unsigned char>(c));
    if (!ok) return false;
  }
  return true;
}

std::string BackupName(std::chrono::system_clock::time_point now) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const time_t seconds = static_cast<time_t>(millis / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%04d%02d%02dT%02d%02d%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis % 1000));
  return text;
}

std::string IsoTime(std::chrono::system_clock::time_point now) {
  const time_t seconds = std::chrono::system_clock::to_time_t(now);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

// A directory removed with its contents on destruction: downloads and S3 staging.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "searchsync-backup-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- Locations -----------------------------------------------------------------------------

// A backup location seen as files under relative paths ("products/<name>/manifest.json").
class Location {
 public:
  virtual ~Location() = default;
  // The full location of `relative`, for messages and results.
  virtual std::string Describe(const std::string& relative) const = 0;
  // Every file under `relative`, as paths relative to it; empty when there is nothing.
  virtual Result<std::vector<std::string>> ListFiles(const std::string& relative) = 0;
  // A small file whole; nullopt when it does not exist.
  virtual Result<std::optional<std::string>> ReadSmall(const std::string& relative) = 0;
  // A local path to write `relative` to; CommitFile then puts it in place.
  virtual Result<std::string> StagePath(const std::string& relative,
                                        const std::string& scratch) = 0;
  virtual Status CommitFile(const std::string& relative, const std::string& staged) = 0;
  // Writes a small file so that it appears whole or not at all.
  virtual Status WriteSmall(const std::string& relative, const std::string& bytes) = 0;
  // A local copy of `relative` (a directory location needs none).
  virtual Result<std::string> Fetch(const std::string& relative, const std::string& scratch) = 0;
  // Removes `relative` and everything under it.
  virtual Status Remove(const std::string& relative) = 0;
};

class DirLocation final : public Location {
 public:
  explicit DirLocation(std::string root) : root_(std::move(root)) {}

  std::string Describe(const std::string& relative) const override { return Join(root_, relative); }

  Result<std::vector<std::string>> ListFiles(const std::string& relative) override {
    std::vector<std::string> files;
    const fs::path base = Describe(relative);
    std::error_code ec;
    if (!fs::is_directory(base, ec)) return files;
    for (auto it = fs::recursive_directory_iterator(base, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec)) files.push_back(fs::relative(it->path(), base, ec).string());
    }
    if (ec) return InvalidArgument("cannot list " + base.string() + ": " + ec.message());
    return files;
  }

  Result<std::optional<std::string>> ReadSmall(const std::string& relative) override {
    const std::string path = Describe(relative);
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::optional<std::string>();
    std::ifstream in(path, std::ios::binary);
    if (!in) return InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return std::optional<std::string>(std::move(text));
  }

  Result<std::string> StagePath(const std::string& relative, const std::string&) override {
    const fs::path path = Describe(relative);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return InvalidArgument("cannot create " + path.parent_path().string() + ": " + ec.message());
    }
    return path.string();
  }

  Status CommitFile(const std::string&, const std::string&) override { return Status::Ok(); }

  Status WriteSmall(const std::string& relative, const std::string& bytes) override {
    // Write aside, fsync, rename, fsync the directory: the file is whole or absent, even
    // after a crash.
    const fs::path path = Describe(relative);
    const std::string temp = path.string() + ".tmp";
    const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return FailedPrecondition("cannot create " + temp + ": " + std::strerror(errno));
    bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ok = fsync(fd) == 0 && ok;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(temp.c_str(), path.c_str()) != 0) {
      const std::string error = std::strerror(errno);
      unlink(temp.c_str());
      return FailedPrecondition("cannot write " + path.string() + ": " + error);
    }
    const int dir = open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      fsync(dir);
      close(dir);
    }
    return Status::Ok();
  }

  Result<std::string> Fetch(const std::string& relative, const std::string&) override {
    const std::string path = Describe(relative);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return InvalidArgument(path + ": missing");
    return path;
  }

  Status Remove(const std::string& relative) override {
    std::error_code ec;
    fs::remove_all(Describe(relative), ec);
    if (ec) return FailedPrecondition("cannot remove " + Describe(relative) + ": " + ec.message());
    return Status::Ok();
  }

 private:
  std::string root_;
};

class S3Location final : public Location {
 public:
  S3Location(S3Client client, S3Url url) : client_(std::move(client)), url_(std::move(url)) {}

  std::string Describe(const std::string& relative) const override {
    return "s3://" + url_.bucket + "/" + Key(relative);
  }

  Result<std::vector<std::string>> ListFiles(const std::string& relative) override {
    const std::string prefix = Key(relative) + "/";
    Result<std::vector<std::string>> keys = client_.List(url_.bucket, prefix == "/" ? "" : prefix);
    if (!keys.ok()) return keys.status();
    std::vector<std::string> files;
    for (const std::string& key : *keys) {
      if (prefix == "/") {
        files.push_back(key);
      } else if (key.starts_with(prefix)) {
        files.push_back(key.substr(prefix.size()));
      }
    }
    return files;
  }

  Result<std::optional<std::string>> ReadSmall(const std::string& relative) override {
    Result<std::string> bytes = client_.GetBytes(url_.bucket, Key(relative));
    if (bytes.ok()) return std::optional<std::string>(std::move(*bytes));
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return bytes.status();
  }

  Result<std::string> StagePath(const std::string& relative, const std::string& scratch) override {
    return scratch + "/" + fs::path(relative).filename().string();
  }

  Status CommitFile(const std::string& relative, const std::string& staged) override {
    return client_.PutFile(url_.bucket, Key(relative), staged);
  }

  Status WriteSmall(const std::string& relative, const std::string& bytes) override {
    return client_.PutBytes(url_.bucket, Key(relative), bytes);  // S3 PUTs are atomic
  }

  Result<std::string> Fetch(const std::string& relative, const std::string& scratch) override {
    const std::string path = scratch + "/" + fs::path(relative).filename().string();
    Status status = client_.GetToFile(url_.bucket, Key(relative), path);
    if (status.code() == StatusCode::kNotFound) {
      return InvalidArgument(Describe(relative) + ": missing");
    }
    if (!status.ok()) return status;
    return path;
  }

  Status Remove(const std::string& relative) override {
    Result<std::vector<std::string>> files = ListFiles(relative);
    if (!files.ok()) return files.status();
    for (const std::string& file : *files) {
      if (Status status = client_.Delete(url_.bucket, Key(Join(relative, file))); !status.ok()) {
        return status;
      }
    }
    return Status::Ok();
  }

 private:
  std::string Key(const std::string& relative) const { return Join(url_.prefix, relative); }

  S3Client client_;
  S3Url url_;
};

Result<std::unique_ptr<Location>> OpenLocation(const Config& config, const std::string& where) {
  if (where.empty()) return InvalidArgument("no backup location given");
  if (!where.starts_with("s3://")) {
    std::string root = where;
    while (root.size() > 1 && root.ends_with('/')) root.pop_back();
    return std::unique_ptr<Location>(std::make_unique<DirLocation>(root));
  }
  Result<S3Url> url = ParseS3Url(where);
  if (!url.ok()) return url.status();
  if (config.s3.access_key_id.empty() || config.s3.secret_access_key.empty()) {
    return InvalidArgument(config.file + ": " + where +
                           " is an S3 location, but s3.access_key_id and s3.secret_access_key "
                           "are not set");
  }
  S3Client client({.endpoint = config.s3.endpoint,
                   .region = config.s3.region,
                   .access_key_id = config.s3.access_key_id,
                   .secret_access_key = config.s3.secret_access_key});
  return std::unique_ptr<Location>(std::make_unique<S3Location>(std::move(client), *url));
}

struct BackupEntry {
  std::string name;
  bool complete = false;  // has its manifest
};

// The backups of `pipeline` in `location`, oldest first. Entries whose name is not a backup
// timestamp are not ours and are never listed (so never deleted).
Result<std::vector<BackupEntry>> ScanBackups(Location& location, const std::string& pipeline) {
  Result<std::vector<std::string>> files = location.ListFiles(pipeline);
  if (!files.ok()) return files.status();
  std::map<std::string, bool> entries;
  for (const std::string& file : *files) {
    const size_t slash = file.find('/');
    if (slash == std::string::npos) continue;
    const std::string name = file.substr(0, slash);
    if (!IsBackupName(name)) continue;
    entries[name] = entries[name] || file.substr(slash + 1) == kBackupManifestFile;
  }
  std::vector<BackupEntry> out;
  for (const auto& [name, complete] : entries) out.push_back({name, complete});
  return out;
}

// ---- Typesense -----------------------------------------------------------------------------
// A backup's documents are Typesense's export lines, a restore imports them back as they are,
// and a snapshot is the server's own operation: these speak Typesense, so they use its client.
// The collections a restore builds, makes live, drops and retires go through CollectionAdmin
// (pipeline/collection_admin.h), as a reindex's do.

TypesenseClient MakeClient(const Config& config, const std::string& component) {
  return TypesenseClient(ClientOptionsOf(config.typesense), component);
}

// Runs `call` again while it fails with kUnavailable, with backoff, until typesense.retry's
// max_elapsed (or kDefaultGiveUpAfter) has passed.
template <class Call>
auto Retrying(const Config& config, const std::string& component, const std::string& what,
              Call call) -> decltype(call()) {
  RetryOptions retry = config.typesense.retry;
  if (!retry.max_elapsed) {
    retry.max_elapsed = std::chrono::duration_cast<Millis>(kDefaultGiveUpAfter);
  }
  Retrier retrier(retry, {.component = component, .what = what});
  while (true) {
    auto result = call();
    Status status;
    if constexpr (std::is_same_v<decltype(result), Status>) {
      status = result;
    } else {
      if (!result.ok()) status = result.status();
    }
    if (status.ok() || !IsRetryable(status)) return result;
    if (std::optional<Status> end = retrier.Failed(status)) return *end;
  }
}

// The schema part of GET /collections/{name}: without name, num_documents and created_at,
// which describe one collection rather than its shape.
Result<std::string> SchemaOf(const CollectionInfo& info) {
  nlohmann::json schema = nlohmann::json::parse(info.schema_json, nullptr, false);
  if (!schema.is_object()) return Unavailable("collection " + info.name + ": schema is not JSON");
  schema.erase("name");
  schema.erase("num_documents");
  schema.erase("created_at");
  return schema.dump();
}

// The collection searches reach through `alias`: the alias's target, or a real collection of
// that name (a setup without aliases).
Result<std::string> LiveCollection(TypesenseClient& client, const std::string& alias) {
  Result<std::optional<std::string>> target = client.GetAlias(alias);
  if (!target.ok()) return target.status();
  if (target->has_value()) return **target;
  Result<bool> exists = client.CollectionExists(alias);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    return FailedPrecondition("typesense has no alias or collection '" + alias +
                              "'; nothing to back up");
  }
  return alias;
}

Status ImportBatch(const Config& config, TypesenseClient& client, const std::string& component,
                   const std::string& collection, const std::string& body, size_t documents,
                   uint64_t first_line, const std::string& file) {
  std::vector<size_t> line_events(documents);
  std::iota(line_events.begin(), line_events.end(), size_t{0});
  Result<WriteReport> report = Retrying(config, component, "import", [&]() -> Result<WriteReport> {
    Result<std::string> answer = client.Import(collection, body, "upsert");
    if (!answer.ok()) return answer.status();
    Result<WriteReport> parsed = ParseImportResponse(*answer, line_events);
    if (parsed.ok() && !parsed->retryable.empty()) {
      // The server failed on these lines, not the documents: the whole import is retried.
      const Rejection& first = parsed->retryable.front();
      return Unavailable("typesense import: line " +
                         std::to_string(first_line + first.event_index) + ": " + first.Reason());
    }
    return parsed;
  });
  if (!report.ok()) return report.status();
  if (!report->rejected.empty()) {
    const Rejection& first = report->rejected.front();
    return InvalidArgument(file + ": line " + std::to_string(first_line + first.event_index) +
                           ": typesense refused the document: " + first.error + " (" +
                           std::to_string(report->rejected.size()) + " refused in this batch)");
  }
  return Status::Ok();
}

}  // namespace

// ---- Backup --------------------------------------------------------------------------------

Result<BackupResult> RunBackup(const Config& config, const PipelineConfig& pipeline,
                               const std::string& destination) {
  const std::string component = Component(pipeline, "backup");
  Result<std::unique_ptr<Location>> location = OpenLocation(config, destination);
  if (!location.ok()) return location.status();

  // The checkpoint is read BEFORE the export starts. Every change the export may have missed
  // (written while it ran, or after it read that part of the collection) was checkpointed
  // after this point, so replaying from this checkpoint after a restore covers all of them.
  // Reading it afterwards could name a position past changes the export never saw.
  Result<std::unique_ptr<StateStore>> state = StateStore::Open(config.state.path);
  if (!state.ok()) return state.status();
  Result<PipelineState> pipeline_state = (*state)->Load(pipeline.name);
  if (!pipeline_state.ok()) return pipeline_state.status();
  state->reset();

  TypesenseClient client = MakeClient(config, component);
  Result<std::string> collection = Retrying(config, component, "alias lookup", [&] {
    return LiveCollection(client, pipeline.sink.collection);
  });
  if (!collection.ok()) return collection.status();
  Result<std::optional<CollectionInfo>> info = Retrying(
      config, component, "collection lookup", [&] { return client.GetCollection(*collection); });
  if (!info.ok()) return info.status();
  if (!info->has_value()) return FailedPrecondition("collection " + *collection + " vanished");
  Result<std::string> schema = SchemaOf(**info);
  if (!schema.ok()) return schema.status();

  const auto now = std::chrono::system_clock::now();
  const std::string name = BackupName(now);
  const std::string relative = Join(pipeline.name, name);
  const std::string documents_relative = Join(relative, kBackupDocumentsFile);
  ScratchDir scratch;
  if (scratch.path().empty()) return FailedPrecondition("cannot create a temporary directory");
  Result<std::string> staged = (*location)->StagePath(documents_relative, scratch.path());
  if (!staged.ok()) return staged.status();

  Log(LogLevel::kInfo, component,
      "backup started collection=" + *collection + " to=" + (*location)->Describe(relative));
  std::unique_ptr<GzipFileWriter> writer;
  Status status = Retrying(config, component, "export", [&]() -> Status {
    // A failed export starts over in a fresh file.
    Result<std::unique_ptr<GzipFileWriter>> created = GzipFileWriter::Create(*staged);
    if (!created.ok()) return created.status();
    writer = std::move(*created);
    if (Status exported = client.Export(
            *collection, [&](std::string_view document) { return writer->WriteLine(document); });
        !exported.ok()) {
      return exported;
    }
    return writer->Finish();
  });
  if (status.ok()) status = (*location)->CommitFile(documents_relative, *staged);

  BackupResult result;
  result.location = (*location)->Describe(relative);
  if (status.ok()) {
    BackupManifest& manifest = result.manifest;
    manifest.pipeline = pipeline.name;
    manifest.source_type = pipeline.source_type;
    manifest.alias = pipeline.sink.collection;
    manifest.collection = *collection;
    manifest.schema_json = *schema;
    manifest.documents = writer->lines();
    manifest.compressed_bytes = writer->compressed_bytes();
    manifest.sha256 = writer->sha256_hex();
    manifest.checkpoint = pipeline_state->checkpoint.token;
    manifest.searchsync_version = SEARCHSYNC_VERSION;
    manifest.created_at = IsoTime(now);
    // Last: only a backup whose documents are all in place gets a manifest.
    status = (*location)->WriteSmall(Join(relative, kBackupManifestFile), ManifestToJson(manifest));
  }
  if (!status.ok()) {
    (void)(*location)->Remove(relative);  // best effort; retention removes leftovers anyway
    return Status(status.code(), "backup of pipeline " + pipeline.name + " to " + result.location +
                                     " failed: " + status.message());
  }
  Log(LogLevel::kInfo, component,
      "backup done documents=" + std::to_string(result.manifest.documents) +
          " bytes=" + std::to_string(result.manifest.compressed_bytes) + " to=" + result.location);

  if (destination == pipeline.backup.to && pipeline.backup.keep > 0) {
    Result<std::vector<std::string>> deleted = ApplyBackupRetention(
        config, pipeline, destination, static_cast<size_t>(pipeline.backup.keep));
    if (!deleted.ok()) {
      // The backup itself is complete; a retention failure is retried after the next one.
      Log(LogLevel::kWarn, component, "retention failed: " + deleted.status().message());
    } else {
      result.deleted = std::move(*deleted);
    }
  }
  return result;
}

Result<std::vector<std::string>> ListBackups(const Config& config, const PipelineConfig& pipeline,
                                             const std::string& where) {
  Result<std::unique_ptr<Location>> location = OpenLocation(config, where);
  if (!location.ok()) return location.status();
  Result<std::vector<BackupEntry>> entries = ScanBackups(**location, pipeline.name);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> names;
  for (const BackupEntry& entry : *entries) {
    if (entry.complete) names.push_back(entry.name);
  }
  return names;
}

Result<std::vector<std::string>> ApplyBackupRetention(const Config& config,
                                                      const PipelineConfig& pipeline,
                                                      const std::string& where, size_t keep) {
  Result<std::unique_ptr<Location>> location = OpenLocation(config, where);
  if (!location.ok()) return location.status();
  Result<std::vector<BackupEntry>> entries = ScanBackups(**location, pipeline.name);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> complete;
  for (const BackupEntry& entry : *entries) {
    if (entry.complete) complete.push_back(entry.name);
  }
  std::vector<std::string> deleted;
  if (keep == 0 || complete.empty()) return deleted;
  // Everything older than the oldest backup kept goes, finished or not: an unfinished backup
  // older than a finished one was interrupted, not in progress.
  const std::string& oldest_kept = complete[complete.size() - std::min(keep, complete.size())];
  for (const BackupEntry& entry : *entries) {
    if (entry.name >= oldest_kept) break;
    const std::string relative = Join(pipeline.name, entry.name);
    if (Status status = (*location)->Remove(relative); !status.ok()) return status;
    deleted.push_back((*location)->Describe(relative));
    Log(LogLevel::kInfo, Component(pipeline, "backup"),
        "retention deleted " + deleted.back() + (entry.complete ? "" : " (unfinished)"));
  }
  return deleted;
}

// ---- Restore -------------------------------------------------------------------------------

Result<RestoreResult> RunRestore(const Config& config, const PipelineConfig& pipeline,
                                 const std::string& source, const RestoreOptions& options) {
  const std::string component = Component(pipeline, "restore");
  Result<std::unique_ptr<Location>> opened = OpenLocation(config, source);
  if (!opened.ok()) return opened.status();
  Location& location = **opened;

  // `source` is one backup, or a location holding backups: take the newest complete one.
  std::string relative;
  Result<std::optional<std::string>> manifest_text = location.ReadSmall(kBackupManifestFile);
  if (!manifest_text.ok()) return manifest_text.status();
  if (!manifest_text->has_value()) {
    Result<std::vector<BackupEntry>> entries = ScanBackups(location, pipeline.name);
    if (!entries.ok()) return entries.status();
    for (const BackupEntry& entry : *entries) {
      if (entry.complete) relative = Join(pipeline.name, entry.name);
    }
    if (relative.empty()) {
      return NotFound("no complete backup of pipeline " + pipeline.name + " in " + source +
                      " (looked for " + location.Describe(Join(pipeline.name, "*/manifest.json")) +
                      " and " + location.Describe(kBackupManifestFile) + ")");
    }
    manifest_text = location.ReadSmall(Join(relative, kBackupManifestFile));
    if (!manifest_text.ok()) return manifest_text.status();
    if (!manifest_text->has_value()) {
      return NotFound(location.Describe(Join(relative, kBackupManifestFile)) + ": vanished");
    }
  }
  RestoreResult result;
  result.location = location.Describe(relative);
  const std::string manifest_path = location.Describe(Join(relative, kBackupManifestFile));
  Result<BackupManifest> manifest = ParseManifest(**manifest_text, manifest_path);
  if (!manifest.ok()) return manifest.status();
  result.manifest = *manifest;

  // The collection's life cycle goes through the sink's CollectionAdmin; the documents through
  // the client (see "Typesense" above).
  std::unique_ptr<CollectionAdmin> admin = MakeCollectionAdmin(config, pipeline, component);

  // The schema first: it needs no download.
  Result<std::vector<std::string>> differences = admin->SchemaDifferences(manifest->schema_json);
  if (!differences.ok()) {
    return InvalidArgument(manifest_path + ": schema: " + differences.status().message());
  }
  if (!differences->empty() && !options.use_backup_schema) {
    std::string text;
    for (const std::string& difference : *differences) text += "\n  " + difference;
    return InvalidArgument(manifest_path + ": the backup's schema differs from pipeline " +
                           pipeline.name + "'s configured schema:" + text +
                           "\nrestore with --use-backup-schema to create the collection from "
                           "the backup's schema, or pick a backup that matches");
  }

  std::unique_ptr<StateStore> state;
  std::optional<PipelineState> state_before;
  if (options.rewind_checkpoint) {
    if (manifest->pipeline != pipeline.name || manifest->source_type != pipeline.source_type) {
      return InvalidArgument(manifest_path + ": the backup was taken of pipeline " +
                             manifest->pipeline + " (" + manifest->source_type +
                             "); its checkpoint means nothing to pipeline " + pipeline.name + " (" +
                             pipeline.source_type + ")");
    }
    if (pipeline.source_type == "maxwell") {
      return InvalidArgument(
          "pipeline " + pipeline.name +
          " reads Kafka, where the consumer group's committed "
          "offsets are the checkpoint; rewind them with kafka-consumer-groups --reset-offsets "
          "(the backup's offsets were " +
          manifest->checkpoint +
          ") and restore without "
          "--rewind-checkpoint");
    }
    Result<std::unique_ptr<StateStore>> opened_state = StateStore::Open(config.state.path);
    if (!opened_state.ok()) return opened_state.status();
    state = std::move(*opened_state);
    if (Status locked = state->LockForRun(); !locked.ok()) {
      return FailedPrecondition("cannot rewind the checkpoint while searchsync run holds " +
                                config.state.path + " (" + locked.message() +
                                "); stop it first, or restore without --rewind-checkpoint");
    }
  }

  ScratchDir scratch;
  if (scratch.path().empty()) return FailedPrecondition("cannot create a temporary directory");
  const std::string documents_relative = Join(relative, manifest->file);
  const std::string documents_path = location.Describe(documents_relative);
  Result<std::string> local = location.Fetch(documents_relative, scratch.path());
  if (!local.ok()) return local.status();
  Result<FileDigest> digest = DigestFile(*local);
  if (!digest.ok()) return digest.status();
  if (digest->bytes != manifest->compressed_bytes) {
    return InvalidArgument(documents_path + ": " + std::to_string(digest->bytes) +
                           " bytes, but the manifest says " +
                           std::to_string(manifest->compressed_bytes) +
                           (digest->bytes < manifest->compressed_bytes ? " (truncated)" : ""));
  }
  if (digest->sha256 != manifest->sha256) {
    return InvalidArgument(documents_path + ": SHA-256 " + digest->sha256 +
                           " does not match the manifest's " + manifest->sha256 + " (corrupt)");
  }

  TypesenseClient client = MakeClient(config, component);
  const std::string& alias = pipeline.sink.collection;
  const std::string& schema =
      differences->empty() ? pipeline.sink.schema_json : manifest->schema_json;
  // The new collection is recorded in the state store before it is created: a restore killed
  // before it swapped or dropped it leaves a record that the next start (run, reindex,
  // restore) acts on once this process is gone. Leftovers of earlier ones go first.
  Result<std::unique_ptr<StateStore>> builds = StateStore::Open(config.state.path);
  if (!builds.ok()) return builds.status();
  if (Result<std::vector<std::string>> dropped = DropLeftoverBuilds(*admin, **builds, component);
      !dropped.ok()) {
    Log(LogLevel::kWarn, component, "leftover collections: " + dropped.status().message());
  }
  auto forget_build = [&](const std::string& name) {
    if (Status status = (*builds)->ForgetBuild(name); !status.ok()) {
      Log(LogLevel::kWarn, component, status.message());
    }
  };
  Result<std::string> collection = Retrying(config, component, "create collection", [&] {
    return admin->CreateBeside(schema, [&](const std::string& name) {
      return (*builds)->RecordBuild(BuildByThisProcess(name, alias, "restore"));
    });
  });
  if (!collection.ok()) return collection.status();
  result.collection = *collection;
  Log(LogLevel::kInfo, component,
      "restore started from=" + result.location + " collection=" + *collection +
          " documents=" + std::to_string(manifest->documents));

  // Import, verify, (rewind,) swap. Any failure drops the new collection; the alias has not
  // moved yet.
  auto import_and_swap = [&]() -> Status {
    std::string body;
    size_t batch_documents = 0;
    uint64_t lines = 0;
    auto flush = [&]() -> Status {
      if (batch_documents == 0) return Status::Ok();
      Status status = ImportBatch(config, client, component, *collection, body, batch_documents,
                                  lines - batch_documents + 1, documents_path);
      body.clear();
      batch_documents = 0;
      return status;
    };
    Status read = ReadGzipLines(*local, [&](std::string_view line) -> Status {
      if (line.empty()) return Status::Ok();
      body.append(line);
      body.push_back('\n');
      ++batch_documents;
      ++lines;
      if (batch_documents >= kRestoreBatchDocuments || body.size() >= kRestoreBatchBytes) {
        return flush();
      }
      return Status::Ok();
    });
    if (!read.ok()) return read;
    if (Status flushed = flush(); !flushed.ok()) return flushed;
    if (lines != manifest->documents) {
      return InvalidArgument(documents_path + ": holds " + std::to_string(lines) +
                             " documents, but the manifest says " +
                             std::to_string(manifest->documents));
    }
    Result<std::optional<CollectionFacts>> facts =
        Retrying(config, component, "count", [&] { return admin->Describe(*collection); });
    if (!facts.ok()) return facts.status();
    const uint64_t stored = facts->has_value() ? (*facts)->documents : 0;
    if (stored != manifest->documents) {
      return FailedPrecondition("collection " + *collection + " holds " + std::to_string(stored) +
                                " documents after the import, but the backup has " +
                                std::to_string(manifest->documents) +
                                " (duplicate ids in the backup?)");
    }
    if (state) {
      // Rewound before the alias moves: if the swap then fails, the old index merely sees
      // changes again (harmless, writes are idempotent); the other order could leave a
      // restored index whose later changes are never replayed.
      Result<PipelineState> loaded = state->Load(pipeline.name);
      if (!loaded.ok()) return loaded.status();
      state_before = *loaded;
      PipelineState rewound = *loaded;
      rewound.checkpoint.token = manifest->checkpoint;
      if (Status saved = state->Save(rewound); !saved.ok()) return saved;
    }
    return Retrying(config, component, "alias swap", [&] { return admin->MakeLive(*collection); })
        .status();
  };
  if (Status status = import_and_swap(); !status.ok()) {
    if (Status dropped = admin->Drop(*collection); !dropped.ok()) {
      Log(LogLevel::kError, component,
          "could not drop the unfinished collection " + *collection + ": " + dropped.message() +
              " (the next start drops it)");
    } else {
      forget_build(*collection);
    }
    if (state && state_before) (void)state->Save(*state_before);
    return Status(status.code(), "restore of pipeline " + pipeline.name + " from " +
                                     result.location + " refused; alias " + alias +
                                     " unchanged: " + status.message());
  }
  forget_build(*collection);
  result.checkpoint_rewound = state != nullptr;
  Log(LogLevel::kInfo, component,
      "restore done alias=" + alias + " collection=" + *collection +
          " documents=" + std::to_string(manifest->documents) +
          (result.checkpoint_rewound ? " checkpoint rewound" : ""));

  Result<std::vector<std::string>> retired =
      admin->RetireOld(static_cast<size_t>(pipeline.reindex.keep));
  if (!retired.ok()) {
    Log(LogLevel::kWarn, component,
        "could not retire old collections: " + retired.status().message());
  } else {
    result.retired = std::move(*retired);
  }
  return result;
}

// ---- Snapshot ------------------------------------------------------------------------------

Status TakeSnapshot(const Config& config, const std::string& directory) {
  TypesenseClient client = MakeClient(config, "snapshot");
  const std::string target = "/operations/snapshot?snapshot_path=" + PercentEncode(directory);
  Result<HttpResponse> response =
      client.Call("POST", target, "", "application/json", TypesenseClient::Timeout::kBulk);
  if (!response.ok()) return response.status();
  const nlohmann::json answer = nlohmann::json::parse(response->body, nullptr, false);
  if (!answer.is_object() || answer.value("success", false) != true) {
    return Unavailable("typesense POST /operations/snapshot: answered " +
                       std::to_string(response->status) + " " + ServerMessage(response->body));
  }
  return Status::Ok();
}

// ---- Schedules -----------------------------------------------------------------------------

struct BackupSchedules::Job {
  std::string name;  // a pipeline's name, or "snapshot"
  std::function<Status()> run;
  std::thread thread;
  std::atomic<bool> running{false};
};

Result<std::unique_ptr<BackupSchedules>> BackupSchedules::Start(
    const Config& config, const std::vector<const PipelineConfig*>& pipelines) {
  std::unique_ptr<BackupSchedules> schedules(new BackupSchedules());
  std::vector<ScheduledJob> scheduled;
  auto add = [&](const std::string& name, const std::string& expression, const std::string& key,
                 std::function<Status()> run) -> Status {
    Result<CronSchedule> cron = CronSchedule::Parse(expression);
    if (!cron.ok()) return InvalidArgument(key + ": " + cron.status().message());
    auto job = std::make_unique<Job>();
    job->name = name;
    job->run = std::move(run);
    ScheduledBackups().Register(name);
    Job* raw = job.get();
    BackupSchedules* self = schedules.get();
    scheduled.push_back({.name = (name == "snapshot" ? "snapshot" : "backup pipeline=" + name),
                         .schedule = std::move(*cron),
                         .fire = [self, raw] { return self->Fire(*raw); }});
    schedules->jobs_.push_back(std::move(job));
    return Status::Ok();
  };
  for (const PipelineConfig* pipeline : pipelines) {
    if (pipeline->backup.schedule.empty()) continue;
    if (Status status = add(pipeline->name, pipeline->backup.schedule,
                            "pipelines." + pipeline->name + ".backup.schedule",
                            [&config, pipeline] {
                              return RunBackup(config, *pipeline, pipeline->backup.to).status();
                            });
        !status.ok()) {
      return status;
    }
  }
  if (!config.snapshot.schedule.empty()) {
    if (Status status = add("snapshot", config.snapshot.schedule, "snapshot.schedule",
                            [&config] { return TakeSnapshot(config, config.snapshot.path); });
        !status.ok()) {
      return status;
    }
  }
  if (!scheduled.empty()) {
    schedules->scheduler_ = std::make_unique<Scheduler>(std::move(scheduled));
    schedules->scheduler_->Start();
  }
  return schedules;
}

Status BackupSchedules::Fire(Job& job) {
  if (job.running.exchange(true)) {
    return FailedPrecondition("the previous " + job.name + " backup still runs");
  }
  if (job.thread.joinable()) job.thread.join();  // the previous run, finished
  job.thread = std::thread([&job] {
    const Status status = job.run();
    ScheduledBackups().Record(job.name, status.ok(),
                              std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    if (!status.ok()) {
      // The previous backups are still there; the next due time tries again.
      Log(LogLevel::kError,
          job.name == "snapshot" ? "snapshot" : "pipeline=" + job.name + " backup",
          "scheduled run failed: " + status.message());
    }
    job.running = false;
  });
  return Status::Ok();
}

void BackupSchedules::Stop() {
  if (scheduler_) scheduler_->Stop();
}

BackupSchedules::~BackupSchedules() {
  Stop();
  for (auto& job : jobs_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

}  // namespace searchsync
