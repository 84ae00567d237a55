#pragma once
// Reindex: rebuild a pipeline's collection from the source of truth into a new collection while
// the live stream keeps flowing, then move the alias. (Contract shared by the admin API, the
// scheduler and the CLI; the implementation lives in reindex.cc.)
//
//   1. create  <alias>_<UTC timestamp>  from the configured schema (so a reindex ships a schema
//      change)
//   2. shadow  the live runner writes every batch to the live collection and then to the new
//      one, before acknowledging it (PipelineRunner::AttachShadow)
//   3. full read  Source::OpenFullRead into the new collection, create-only, beside the stream
//      (PipelineRunner::FullRead: where the two meet, the live change wins)
//   4. catch up   wait for an empty poll after the full read, with everything acknowledged
//   5. verify     document counts (see VerifyCounts in reindex.cc for what is exact)
//   6. swap       move the alias (CollectionAdmin::MakeLive), then the runner writes to the new
//                 collection alone
//   7. retire     drop old collections beyond reindex.keep, by their real names
// Any failure or cancel before the swap: the shadow is detached, the new collection dropped,
// the alias left where it was; the live pipeline never stops for a reindex.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/collection_admin.h"
#include "pipeline/config.h"
#include "pipeline/reindex_progress.h"
#include "pipeline/status.h"

namespace searchsync {

class PipelineRunner;
class StateStore;

struct ReindexLimits {
  // The full read, or writes to the new collection, unavailable this long: the reindex fails.
  Millis give_up_after{5 * 60 * 1000};
  // The live pipeline not caught up this long after the full read: the reindex fails.
  Millis catch_up_timeout{30 * 60 * 1000};
};

// One per `run` process; knows every pipeline's live runner.
// Thread safety: every method may be called from any thread.
class ReindexCoordinator {
 public:
  // `runners`: pipeline name -> its live runner; each must outlive the coordinator, and its
  // PipelineConfig must be in `config`. `admins` gives each reindex the collections of its
  // pipeline; by default the sink's own (MakeCollectionAdmin in registry.h).
  ReindexCoordinator(const Config& config, std::map<std::string, PipelineRunner*> runners,
                     ReindexLimits limits = {}, CollectionAdminFactory admins = {});
  ~ReindexCoordinator();  // CancelAll
  ReindexCoordinator(const ReindexCoordinator&) = delete;
  ReindexCoordinator& operator=(const ReindexCoordinator&) = delete;

  // Starts a reindex of `pipeline` in the background and returns its id.
  // kNotFound: no such pipeline (HTTP 404); kFailedPrecondition: one is already running for it
  // (HTTP 409), or the coordinator is shutting down.
  Result<std::string> Start(const std::string& pipeline);
  // The latest reindex of `pipeline` (running or finished), nullopt if none since start.
  std::optional<ReindexProgress> Progress(const std::string& pipeline) const;
  // SIGTERM/SIGINT: cancels running reindexes (new collections dropped, alias untouched) and
  // waits for them. Start refuses afterwards.
  void CancelAll();
  // Blocks until no reindex of `pipeline` is running.
  void Wait(const std::string& pipeline);

 private:
  struct Job;
  void RunJob(Job& job);
  Status Reindex(Job& job);

  const Config& config_;
  const std::map<std::string, PipelineRunner*> runners_;
  const ReindexLimits limits_;
  CollectionAdminFactory admins_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // the latest per pipeline
  std::vector<std::unique_ptr<Job>> finished_;        // replaced jobs, joined on destruction
  bool shutting_down_ = false;
};

// For `searchsync reindex` when no daemon is reachable: runs the pipeline's live stream itself
// (it takes the state lock like `run`), reindexes, stops. on_progress is called periodically
// and once at the end. kNotFound for an unknown pipeline.
Status RunStandaloneReindex(const Config& config, const std::string& pipeline,
                            const std::function<void(const ReindexProgress&)>& on_progress);

// At `run` and standalone `reindex` start: drops, for every pipeline, the collections a reindex
// or restore recorded in `state` and left half-built when its process died (see
// DropLeftoverBuilds in pipeline/collection_admin.h). Failures are logged, never fatal.
void DropLeftoverCollections(const Config& config, StateStore& state);

// At `run` start: logs, for each pipeline whose live collection's schema differs from the
// configured one, that imports use the live schema until `searchsync reindex` applies the new
// one. Never fails the start (an unreachable server is logged and skipped).
void WarnAboutSchemaChanges(const Config& config, const std::string& config_file);

}  // namespace searchsync
