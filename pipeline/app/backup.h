#pragma once
// Backups and restores of a pipeline's collection, and Typesense's server-side snapshots.
//
// A backup is the export of the collection behind the pipeline's alias, gzip-compressed, plus a
// manifest (pipeline/app/backup_archive.h), in its own directory or S3 prefix:
//
//   <location>/<pipeline>/20261121T031500.123Z/documents.jsonl.gz
//   <location>/<pipeline>/20261121T031500.123Z/manifest.json      <- written last
//
// `location` is a local directory or s3://bucket/prefix. A backup without a manifest is
// unfinished (or was interrupted) and is never restored; retention deletes it once newer
// complete backups exist.
//
// A restore checks everything it can before the alias moves: the manifest, the file's size and
// SHA-256, the schema against the configured one, the gzip stream to its end, and the document
// count, both read and as Typesense reports it after the import into a fresh
// `<alias>_<timestamp>` collection. Only then does the alias move (atomic for readers); on any
// failure the new collection is dropped and the alias stays where it was.
//
// Thread safety: each call is independent; run them from any thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/app/backup_archive.h"
#include "pipeline/config.h"
#include "pipeline/scheduler.h"
#include "pipeline/status.h"

namespace searchsync {

struct BackupResult {
  std::string location;  // where the backup is, e.g. /backups/products/20261121T031500.123Z
  BackupManifest manifest;
  std::vector<std::string> deleted;  // older backups removed by retention
};

// Exports the collection behind `pipeline`'s alias to `destination` (a directory or
// s3://bucket/prefix). When `destination` is the pipeline's `backup.to`, retention then keeps
// the `backup.keep` newest complete backups there.
Result<BackupResult> RunBackup(const Config& config, const PipelineConfig& pipeline,
                               const std::string& destination);

struct RestoreOptions {
  // Create the new collection from the backup's schema instead of refusing a backup whose
  // schema differs from the configured one.
  bool use_backup_schema = false;
  // After the alias moved, set the pipeline's checkpoint to the backup's, so the next `run`
  // replays every change since the backup. Takes the state lock: refused while `run` holds it.
  bool rewind_checkpoint = false;
};

struct RestoreResult {
  std::string location;    // the backup restored
  std::string collection;  // the new collection the alias points at
  BackupManifest manifest;
  std::vector<std::string> retired;  // old collections dropped per reindex.keep
  bool checkpoint_rewound = false;
};

// Restores from `source`: one backup (a directory or prefix holding manifest.json), or a
// backup location, from which the newest complete backup of `pipeline` is taken.
// kInvalidArgument names the file and the problem for a corrupt, truncated or mismatched
// backup; kFailedPrecondition when `run` holds the state lock and a rewind was asked for.
Result<RestoreResult> RunRestore(const Config& config, const PipelineConfig& pipeline,
                                 const std::string& source, const RestoreOptions& options);

// Deletes all but the `keep` newest complete backups of `pipeline` in `location`, and any
// unfinished backup older than the oldest one kept. Returns the locations deleted.
Result<std::vector<std::string>> ApplyBackupRetention(const Config& config,
                                                      const PipelineConfig& pipeline,
                                                      const std::string& location, size_t keep);

// The complete backups of `pipeline` in `location`, oldest first (their names).
Result<std::vector<std::string>> ListBackups(const Config& config, const PipelineConfig& pipeline,
                                             const std::string& location);

// POST /operations/snapshot?snapshot_path=`directory` on the first Typesense node that answers.
// `directory` is on the server's machine and must be absolute.
Status TakeSnapshot(const Config& config, const std::string& directory);

// The backup and snapshot schedules of `run`: each pipeline's backup.schedule (a backup to
// backup.to, then retention) and the top-level snapshot.schedule. Each run goes on a thread of
// its own, so a slow upload delays neither the pipelines nor other schedules; a run still going
// when the next is due makes the scheduler skip that one (logged as missed).
//
// Thread safety: Start, Stop and the destructor from the owning thread.
class BackupSchedules {
 public:
  // kInvalidArgument when a schedule does not parse. Starts nothing when no schedule is set.
  static Result<std::unique_ptr<BackupSchedules>> Start(
      const Config& config, const std::vector<const PipelineConfig*>& pipelines);
  ~BackupSchedules();  // Stop(), then waits for runs in progress

  void Stop();  // no new run starts; each run's outcome is counted in ScheduledBackups()

 private:
  struct Job;
  BackupSchedules() = default;
  Status Fire(Job& job);

  std::vector<std::unique_ptr<Job>> jobs_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace searchsync
