#include "pipeline/app/reindex.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "pipeline/app/registry.h"
#include "pipeline/collection_admin.h"
#include "pipeline/log.h"
#include "pipeline/retry.h"
#include "pipeline/runner.h"
#include "pipeline/state_store.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

// How long a failed reindex keeps trying to drop its unfinished collection.
constexpr Millis kDropPatience = 60s;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string UtcStamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &utc);
  return buffer;
}

// What verification compares, gathered after the live stream caught up.
struct Counts {
  uint64_t documents = 0;  // num_documents of the new collection
  FullReadStats full_read;
  ShadowStats shadow;
  std::optional<uint64_t> source;      // the source's own count, when it can give one
  uint64_t live_events_meanwhile = 0;  // live events read between the source count and `documents`
};

// Rows inserted while the full read runs are read too: the count taken before it grows with
// them, so progress never passes 100 %.
void SetRowsRead(ReindexProgress& progress, uint64_t read) {
  progress.rows_written = read;
  if (progress.rows_expected > 0) progress.rows_expected = std::max(progress.rows_expected, read);
}

// A build that ended (swapped or dropped); a record left behind only costs the next start a
// look at a collection that is already live or gone.
void ForgetBuild(StateStore& state, const std::string& collection, const std::string& component) {
  if (Status status = state.ForgetBuild(collection); !status.ok()) {
    Log(LogLevel::kWarn, component, status.message());
  }
}

// Never fails a start or a reindex: the server may be unreachable now, the records stay for the
// next attempt.
void DropLeftovers(CollectionAdmin& admin, StateStore& state, const std::string& component) {
  Result<std::vector<std::string>> dropped = DropLeftoverBuilds(admin, state, component);
  if (!dropped.ok()) {
    Log(LogLevel::kWarn, component,
        "collections left half-built by a process that died could not be dropped now (tried "
        "again on the next start or reindex): " +
            dropped.status().message());
  }
}

// What is exact while writes continue:
//  - Every document in the new collection was created by the full read or written by a live
//    upsert, and each live delete removes at most one, so
//        created - live deletes  <=  documents  <=  created + live upserts
//    always holds when nothing was lost (the live counts are taken before each write is sent
//    and read after `documents`, so they cover every write `documents` can reflect). With no
//    writes during the reindex both bounds are `created`: an exact check.
//  - The source's count C is taken before a catch-up and `documents` after it; each live event
//    read in between changes the document set by at most one, and documents the new collection
//    refused (dead-lettered) are in C but not in the collection, so
//        C - refused - meanwhile  <=  documents  <=  C + meanwhile
//    With no writes during the check, documents == C - refused exactly.
Status VerifyCounts(const Counts& counts) {
  const FullReadStats& read = counts.full_read;
  const int64_t documents = static_cast<int64_t>(counts.documents);
  const int64_t low =
      static_cast<int64_t>(read.created) - static_cast<int64_t>(counts.shadow.deletes);
  const int64_t high = static_cast<int64_t>(read.created + counts.shadow.upserts);
  if (documents < low || documents > high) {
    return Internal("verification failed: the new collection holds " + std::to_string(documents) +
                    " documents, but the full read created " + std::to_string(read.created) +
                    " and the live stream wrote " + std::to_string(counts.shadow.upserts) +
                    " upserts and " + std::to_string(counts.shadow.deletes) +
                    " deletes to it (expected " + std::to_string(low) + ".." +
                    std::to_string(high) + ")");
  }
  if (counts.source) {
    const int64_t source = static_cast<int64_t>(*counts.source);
    const int64_t refused = static_cast<int64_t>(read.rejected + counts.shadow.rejected);
    const int64_t meanwhile = static_cast<int64_t>(counts.live_events_meanwhile);
    if (documents < source - refused - meanwhile || documents > source + meanwhile) {
      return Internal("verification failed: the new collection holds " + std::to_string(documents) +
                      " documents, the source counts " + std::to_string(source) + " (" +
                      std::to_string(refused) + " refused and dead-lettered, " +
                      std::to_string(meanwhile) + " live changes during the check)");
    }
  }
  return Status::Ok();
}

}  // namespace

struct ReindexCoordinator::Job {
  const PipelineConfig* pipeline = nullptr;
  PipelineRunner* runner = nullptr;
  ReindexProgress progress;  // guarded by the coordinator's mutex_
  std::atomic<bool> cancel{false};
  std::thread thread;
};

ReindexCoordinator::ReindexCoordinator(const Config& config,
                                       std::map<std::string, PipelineRunner*> runners,
                                       ReindexLimits limits, CollectionAdminFactory admins)
    : config_(config), runners_(std::move(runners)), limits_(limits), admins_(std::move(admins)) {
  if (!admins_) {
    admins_ = [&config](const PipelineConfig& pipeline, const std::string& component) {
      return MakeCollectionAdmin(config, pipeline, component);
    };
  }
}

ReindexCoordinator::~ReindexCoordinator() {
  CancelAll();
  for (auto& job : finished_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

Result<std::string> ReindexCoordinator::Start(const std::string& pipeline) {
  const auto runner = runners_.find(pipeline);
  const PipelineConfig* pipeline_config = nullptr;
  for (const PipelineConfig& candidate : config_.pipelines) {
    if (candidate.name == pipeline) pipeline_config = &candidate;
  }
  if (runner == runners_.end() || pipeline_config == nullptr) {
    return Status(StatusCode::kNotFound, "no running pipeline named '" + pipeline + "'");
  }
  std::lock_guard lock(mutex_);
  if (shutting_down_) return FailedPrecondition("searchsync is stopping");
  std::unique_ptr<Job>& slot = jobs_[pipeline];
  std::string id = pipeline + "-" + UtcStamp();
  if (slot) {
    if (slot->progress.state == "running") {
      return FailedPrecondition("a reindex of " + pipeline + " is running: " + slot->progress.id);
    }
    if (slot->progress.id.starts_with(id)) id += "-" + std::to_string(NowUnixMs() % 1000);
    finished_.push_back(std::move(slot));
  }
  slot = std::make_unique<Job>();
  Job& job = *slot;
  job.pipeline = pipeline_config;
  job.runner = runner->second;
  job.progress = {.id = id,
                  .pipeline = pipeline,
                  .state = "running",
                  .phase = "full_read",
                  .started_unix_ms = NowUnixMs()};
  job.thread = std::thread([this, &job] { RunJob(job); });
  return id;
}

std::optional<ReindexProgress> ReindexCoordinator::Progress(const std::string& pipeline) const {
  std::lock_guard lock(mutex_);
  const auto found = jobs_.find(pipeline);
  if (found == jobs_.end() || !found->second) return std::nullopt;
  return found->second->progress;
}

void ReindexCoordinator::CancelAll() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    for (auto& [name, job] : jobs_) job->cancel = true;
  }
  // Jobs are only added under mutex_ before shutting_down_, so this set is complete.
  for (auto& [name, job] : jobs_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

void ReindexCoordinator::Wait(const std::string& pipeline) {
  for (;;) {
    const std::optional<ReindexProgress> progress = Progress(pipeline);
    if (!progress || progress->state != "running") return;
    std::this_thread::sleep_for(50ms);
  }
}

void ReindexCoordinator::RunJob(Job& job) {
  const std::string component = "pipeline=" + job.pipeline->name + " reindex";
  Log(LogLevel::kInfo, component, "started id=" + job.progress.id);
  const Status status = Reindex(job);
  std::lock_guard lock(mutex_);
  ReindexProgress& progress = job.progress;
  progress.finished_unix_ms = NowUnixMs();
  const double seconds =
      static_cast<double>(progress.finished_unix_ms - progress.started_unix_ms) / 1000.0;
  if (status.ok()) {
    progress.state = "succeeded";
    progress.phase = "done";
    Log(LogLevel::kInfo, component,
        "done id=" + progress.id + " collection=" + progress.collection + " rows=" +
            std::to_string(progress.rows_written) + " seconds=" + std::to_string(seconds));
  } else {
    // Cancelled means asked to stop; a live pipeline that stopped under the reindex is a failure.
    const bool cancelled = job.cancel && status.code() == StatusCode::kCancelled;
    progress.state = cancelled ? "cancelled" : "failed";
    progress.error = status.message();
    Log(cancelled ? LogLevel::kInfo : LogLevel::kError, component,
        "reindex " + progress.state + " id=" + progress.id + ": " + status.message() +
            " (the alias was left where it was)");
  }
}

Status ReindexCoordinator::Reindex(Job& job) {
  const PipelineConfig& pipeline = *job.pipeline;
  PipelineRunner& runner = *job.runner;
  const std::string component = "pipeline=" + pipeline.name + " reindex";
  const std::string& alias = pipeline.sink.collection;
  auto set_phase = [&](const char* phase) {
    std::lock_guard lock(mutex_);
    job.progress.phase = phase;
  };

  // The live runner prepares its sink first (on a first start that creates the alias).
  while (runner.Report().state == RunState::kStarting) {
    if (job.cancel) return Cancelled("cancelled");
    std::this_thread::sleep_for(20ms);
  }
  std::unique_ptr<CollectionAdmin> admin = admins_(pipeline, component);
  Result<std::optional<std::string>> live = admin->LiveCollection();
  if (!live.ok()) return live.status();
  if (!live->has_value()) {
    return FailedPrecondition("'" + alias +
                              "' is not an alias, so there is nothing to swap; point an alias "
                              "at the collection, or drop it and let `searchsync run` create one");
  }
  // What an earlier reindex or restore left half-built when its process died goes first. The
  // new collection is recorded before it is created, so a kill -9 from here on leaves a record
  // for the next start to find.
  StateStore& state = runner.state();
  DropLeftovers(*admin, state, component);
  Result<std::string> created =
      admin->CreateBeside(pipeline.sink.schema_json, [&](const std::string& name) {
        return state.RecordBuild(BuildByThisProcess(name, alias, "reindex"));
      });
  if (!created.ok()) return created.status();
  const std::string name = *created;
  {
    std::lock_guard lock(mutex_);
    job.progress.collection = name;
  }
  Log(LogLevel::kInfo, component, "building " + name + " beside " + live->value());

  // From here on, every way out before the swap drops the new collection.
  bool attached = false;
  auto abandon = [&](Status status) {
    if (attached) runner.DetachShadow();
    // The server may be what failed: keep trying for a while, then say what is left behind.
    Retrier retrier({.initial_backoff = 500ms, .max_backoff = 1s, .max_elapsed = kDropPatience},
                    {.component = component, .what = "drop " + name});
    for (;;) {
      const Status dropped = admin->Drop(name);
      if (dropped.ok()) {
        ForgetBuild(state, name, component);
        break;
      }
      if (std::optional<Status> end = retrier.Failed(dropped)) {
        Log(LogLevel::kError, component,
            "could not drop the unfinished collection " + name +
                " (drop it by hand): " + end->message());
        break;
      }
    }
    return status;
  };
  auto shadow_failure = [&] { return runner.ShadowState().failure; };
  auto stop = [&] { return job.cancel.load() || !shadow_failure().ok(); };
  // A stop that came from the shadow reports the shadow's error, not "cancelled".
  auto why_stopped = [&](const Status& status) {
    const Status failure = shadow_failure();
    return !job.cancel && !failure.ok()
               ? Status(failure.code(), "writing to " + name + ": " + failure.message())
               : status;
  };

  std::shared_ptr<Sink> shadow = admin->OpenSink(name, component + " collection=" + name);
  if (Status status = shadow->Prepare(); !status.ok()) return abandon(status);
  if (Status status = runner.AttachShadow(shadow, limits_.give_up_after); !status.ok()) {
    return abandon(status);
  }
  attached = true;

  // The full read starts after the shadow is attached: a change the live stream reads from now
  // on reaches the new collection through the shadow, and one it read before is in the
  // database by the time the full read reads it.
  std::unique_ptr<Source> source = pipeline.make_source();
  Result<std::unique_ptr<FullRead>> full_read = source->OpenFullRead();
  if (!full_read.ok()) return abandon(full_read.status());
  Result<std::optional<uint64_t>> expected = (*full_read)->CountAll();
  if (expected.ok() && expected->has_value()) {
    std::lock_guard lock(mutex_);
    job.progress.rows_expected = **expected;
  }
  Result<FullReadStats> read = runner.FullRead(**full_read, *shadow,
                                               {.on_progress =
                                                    [&](const FullReadStats& stats) {
                                                      std::lock_guard lock(mutex_);
                                                      SetRowsRead(job.progress, stats.read);
                                                    },
                                                .cancelled = stop,
                                                .give_up_after = limits_.give_up_after});
  if (!read.ok()) return abandon(why_stopped(read.status()));
  {
    std::lock_guard lock(mutex_);
    SetRowsRead(job.progress, read->read);
  }
  Log(LogLevel::kInfo, component,
      "full read done read=" + std::to_string(read->read) +
          " created=" + std::to_string(read->created) +
          " already_present=" + std::to_string(read->already_present) + " skipped_deleted=" +
          std::to_string(read->skipped_deleted) + " rejected=" + std::to_string(read->rejected));

  set_phase("catching_up");
  if (Status status = runner.WaitCaughtUp(stop, limits_.catch_up_timeout); !status.ok()) {
    return abandon(why_stopped(status));
  }

  set_phase("verifying");
  Counts counts{.full_read = *read};
  const uint64_t read_before_count = runner.events_read();
  Result<std::optional<uint64_t>> source_count = (*full_read)->CountAll();
  if (!source_count.ok()) return abandon(source_count.status());
  counts.source = *source_count;
  if (counts.source) {
    // Everything committed before the count is now in the new collection.
    if (Status status = runner.WaitCaughtUp(stop, limits_.catch_up_timeout); !status.ok()) {
      return abandon(why_stopped(status));
    }
  }
  Result<std::optional<CollectionFacts>> facts = admin->Describe(name);
  if (!facts.ok()) return abandon(facts.status());
  if (!facts->has_value()) return abandon(Internal("the new collection " + name + " is gone"));
  counts.documents = (*facts)->documents;
  counts.live_events_meanwhile = runner.events_read() - read_before_count;
  counts.shadow = runner.ShadowState();
  if (!counts.shadow.failure.ok()) return abandon(why_stopped(counts.shadow.failure));
  if (Status status = VerifyCounts(counts); !status.ok()) return abandon(status);
  Log(LogLevel::kInfo, component,
      "verified documents=" + std::to_string(counts.documents) +
          (counts.source ? " source_count=" + std::to_string(*counts.source) : ""));

  set_phase("swapping");
  if (job.cancel) return abandon(Cancelled("cancelled"));
  Result<std::optional<std::string>> before = admin->MakeLive(name);
  if (!before.ok()) return abandon(before.status());
  // Where the alias pointed just before the move (another process may have moved it since the
  // look above).
  const std::string was = before->value_or(live->value());
  if (Status status = runner.PromoteShadow(); !status.ok()) {
    // The new collection missed a write after verification: put the alias back.
    if (Result<std::optional<std::string>> back = admin->MakeLive(was); !back.ok()) {
      Log(LogLevel::kError, component,
          "alias " + alias + " could not be moved back to " + was + ": " + back.status().message());
      return status;
    }
    return abandon(why_stopped(status));
  }
  Log(LogLevel::kInfo, component, "alias " + alias + " -> " + name + " (was " + was + ")");
  ForgetBuild(state, name, component);

  Result<std::vector<std::string>> retired =
      admin->RetireOld(static_cast<size_t>(std::max(0, pipeline.reindex.keep)));
  if (!retired.ok()) {
    Log(LogLevel::kWarn, component, "dropping old collections: " + retired.status().message());
  } else {
    for (const std::string& old : *retired) Log(LogLevel::kInfo, component, "dropped " + old);
  }
  return Status::Ok();
}

void DropLeftoverCollections(const Config& config, StateStore& state) {
  for (const PipelineConfig& pipeline : config.pipelines) {
    const std::string component = "pipeline=" + pipeline.name;
    DropLeftovers(*MakeCollectionAdmin(config, pipeline, component), state, component);
  }
}

Status RunStandaloneReindex(const Config& config, const std::string& pipeline,
                            const std::function<void(const ReindexProgress&)>& on_progress) {
  const PipelineConfig* pipeline_config = nullptr;
  for (const PipelineConfig& candidate : config.pipelines) {
    if (candidate.name == pipeline) pipeline_config = &candidate;
  }
  if (pipeline_config == nullptr) {
    return Status(StatusCode::kNotFound, config.file + ": no pipeline named '" + pipeline + "'");
  }
  Result<std::unique_ptr<StateStore>> state = StateStore::Open(config.state.path);
  if (!state.ok()) return state.status();
  if (Status status = (*state)->LockForRun(); !status.ok()) return status;
  DropLeftoverCollections(config, **state);

  // The live stream runs beside the reindex, as it would in `run`, so changes made meanwhile
  // reach both collections.
  PipelineRunner runner(*pipeline_config, config.typesense.retry, pipeline_config->make_source(),
                        MakeSink(config, *pipeline_config), **state, RunOptions{});
  Status run_status;
  std::thread run([&] { run_status = runner.Run(); });
  Status result;
  {
    ReindexCoordinator coordinator(config, {{pipeline, &runner}});
    Result<std::string> id = coordinator.Start(pipeline);
    if (!id.ok()) {
      result = id.status();
    } else {
      for (;;) {
        const ReindexProgress progress = *coordinator.Progress(pipeline);
        if (on_progress) on_progress(progress);
        if (progress.state != "running") {
          if (progress.state != "succeeded") {
            result = Status(
                progress.state == "cancelled" ? StatusCode::kCancelled : StatusCode::kInternal,
                progress.error);
          }
          break;
        }
        if (runner.Report().state == RunState::kFailed) {
          coordinator.CancelAll();
          continue;
        }
        std::this_thread::sleep_for(500ms);
      }
    }
  }
  runner.Stop();
  run.join();
  // A live pipeline that failed is the cause of whatever happened to the reindex.
  if (!run_status.ok()) return run_status;
  return result;
}

void WarnAboutSchemaChanges(const Config& config, const std::string& config_file) {
  for (const PipelineConfig& pipeline : config.pipelines) {
    if (pipeline.sink.schema_json.empty()) continue;
    const std::string component = "pipeline=" + pipeline.name;
    std::unique_ptr<CollectionAdmin> admin =
        MakeCollectionAdmin(config, pipeline, component + " sink=typesense");
    Result<std::optional<CollectionFacts>> live = admin->Describe(pipeline.sink.collection);
    if (!live.ok()) {
      Log(LogLevel::kWarn, component, "could not compare the schema: " + live.status().message());
      continue;
    }
    if (!live->has_value()) continue;  // created from the configured schema on start
    Result<std::vector<std::string>> differences = admin->SchemaDifferences((*live)->schema_json);
    if (!differences.ok()) {
      Log(LogLevel::kWarn, component,
          "could not compare the schema: " + differences.status().message());
      continue;
    }
    if (differences->empty()) continue;
    std::string joined;
    for (const std::string& difference : *differences) {
      joined += (joined.empty() ? "" : "; ") + difference;
    }
    Log(LogLevel::kWarn, component,
        "the configured schema differs from the live collection " + (*live)->name + " (" + joined +
            "); imports keep using the live collection's schema until a reindex builds a new "
            "collection with the configured one: searchsync reindex -c " +
            config_file + " " + pipeline.name);
  }
}

}  // namespace searchsync
