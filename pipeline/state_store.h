#pragma once
// StateStore: the embedded SQLite database under `state.path` that holds each pipeline's
// checkpoint, its counters and its dead letters.
//
// A checkpoint row is written in one transaction with the counters it accounts for, so a crash
// (kill -9) leaves either the old or the new state, never a mix. The database runs in WAL mode
// with synchronous=NORMAL: durable across process crashes; a power loss may roll back the last
// few checkpoints, which only means re-sending acknowledged events (at least once).
//
// Thread safety: all methods may be called from any thread (internal mutex).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/event.h"
#include "pipeline/run_state.h"
#include "pipeline/status.h"

struct sqlite3;

namespace searchsync {

struct PipelineCounters {
  uint64_t events_read = 0;
  uint64_t events_acked = 0;
  uint64_t dead_lettered = 0;
};

struct PipelineState {
  std::string pipeline;
  Checkpoint checkpoint;
  PipelineCounters counters;             // cumulative over every run
  RunState state = RunState::kNeverRun;  // of the last run, as it last saved it
  std::string last_error;
  std::string updated_at;  // UTC, ISO 8601
};

struct DeadLetter {
  int64_t seq = 0;  // set by the store: the order letters were stored in
  std::string pipeline;
  std::string document_id;
  std::string document;   // the document as JSON ({"id":...,...}); empty for deletes
  std::string operation;  // "upsert" | "delete"
  std::string error;
  std::string position;    // the source position of the event
  std::string created_at;  // UTC, ISO 8601
};

// A collection a job (reindex, restore) builds beside the live one. It is recorded before the
// collection is created and forgotten once the job swapped it in or dropped it, so a record
// whose builder died (kill -9, a crash, a power loss) names a half-built leftover to drop.
struct BuildRecord {
  std::string collection;
  std::string alias;
  std::string job;  // "reindex" | "restore"
  // The builder: host name, pid and the pid's start time (clock ticks after boot, from
  // /proc/<pid>/stat), so a pid reused by another process does not pass for the builder.
  std::string host;
  int64_t pid = 0;
  int64_t pid_started = 0;
  std::string started_at;  // UTC, ISO 8601
};

// A record for `collection` built by this process.
BuildRecord BuildByThisProcess(std::string collection, std::string alias, std::string job);
// Whether the record's builder may still be running: its process on this host, or any record
// from another host (a state directory shared between machines: nothing here can tell).
bool BuilderMayBeAlive(const BuildRecord& record);

class StateStore {
 public:
  // Opens (creating if needed) `<dir>/state.db`. kInvalidArgument when the directory cannot be
  // created or the file is not a searchsync state database.
  static Result<std::unique_ptr<StateStore>> Open(const std::string& dir);
  // Opens `<dir>/state.db` only to read it (`status`): creates and changes nothing. nullptr
  // when there is no state.db (nothing ever ran); kInvalidArgument when it cannot be read as
  // a state database ("file is not a database", "malformed", unreadable).
  static Result<std::unique_ptr<StateStore>> OpenReadOnly(const std::string& dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Takes an exclusive lock on the directory for a `run` process; kFailedPrecondition when
  // another process holds it. Released when the store is destroyed.
  Status LockForRun();

  // OK while state.db (and run.lock, once locked) are still the files this store opened.
  // kFailedPrecondition when one was deleted or replaced (`rm -r state.path` under a running
  // daemon): what is written now would be lost, and the lock no longer keeps a second daemon
  // out. Every write checks it first; an idle pipeline calls it between polls.
  Status CheckIntact();

  // The pipeline's state; a pipeline never seen has an empty checkpoint and zero counters.
  Result<PipelineState> Load(const std::string& pipeline);
  Result<std::vector<PipelineState>> LoadAll();
  Status Save(const PipelineState& state);

  // Small per-pipeline facts that outlive a run, e.g. "backfill" -> "running" | "done".
  // An unknown key reads as "".
  Result<std::string> LoadMarker(const std::string& pipeline, const std::string& key);
  Status SaveMarker(const std::string& pipeline, const std::string& key, const std::string& value);

  // Collections being built (see BuildRecord). RecordBuild replaces a record of the same name.
  Status RecordBuild(const BuildRecord& record);
  Status ForgetBuild(const std::string& collection);
  Result<std::vector<BuildRecord>> ListBuilds();

  Status AddDeadLetters(const std::vector<DeadLetter>& letters);
  // Up to `limit` of the pipeline's dead letters stored after the one numbered `after_seq`,
  // oldest first: pass the last one's seq to read the next page.
  Result<std::vector<DeadLetter>> ListDeadLetters(const std::string& pipeline, int limit,
                                                  int64_t after_seq = 0);
  Result<uint64_t> CountDeadLetters(const std::string& pipeline);

 private:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  Status Exec(const char* sql);
  Status CheckIntactLocked();  // REQUIRES: mutex_ held

  struct FileIdentity {
    dev_t device = 0;
    ino_t inode = 0;
  };
  std::string dir_;
  std::optional<FileIdentity> database_;  // unset for a read-only store
  std::optional<FileIdentity> lock_;
  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
};

}  // namespace searchsync
