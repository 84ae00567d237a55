#include "pipeline/state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace searchsync {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS pipelines (
  pipeline      TEXT PRIMARY KEY,
  checkpoint    TEXT NOT NULL DEFAULT '',
  events_read   INTEGER NOT NULL DEFAULT 0,
  events_acked  INTEGER NOT NULL DEFAULT 0,
  dead_lettered INTEGER NOT NULL DEFAULT 0,
  state         TEXT NOT NULL DEFAULT '',
  last_error    TEXT NOT NULL DEFAULT '',
  updated_at    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dead_letters (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline    TEXT NOT NULL,
  document_id TEXT NOT NULL,
  operation   TEXT NOT NULL,
  document    TEXT NOT NULL,
  error       TEXT NOT NULL,
  position    TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_pipeline ON dead_letters(pipeline, seq);
CREATE TABLE IF NOT EXISTS markers (
  pipeline   TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (pipeline, key)
);
CREATE TABLE IF NOT EXISTS builds (
  collection  TEXT PRIMARY KEY,
  alias       TEXT NOT NULL,
  job         TEXT NOT NULL,
  host        TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  pid_started INTEGER NOT NULL,
  started_at  TEXT NOT NULL
);
)sql";

std::string NowUtc() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  void Bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void Bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int column) const {
    const auto* text = sqlite3_column_text(stmt_, column);
    return text ? std::string(reinterpret_cast<const char*>(text),
                              static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
                : std::string();
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

PipelineState ReadState(const Statement& row) {
  return {.pipeline = row.Text(0),
          .checkpoint = {row.Text(1)},
          .counters = {.events_read = static_cast<uint64_t>(row.Int(2)),
                       .events_acked = static_cast<uint64_t>(row.Int(3)),
                       .dead_lettered = static_cast<uint64_t>(row.Int(4))},
          // A name this version does not know (a newer one wrote it) was a run that ended.
          .state = row.Text(5).empty() ? RunState::kNeverRun
                                       : ParseRunState(row.Text(5)).value_or(RunState::kStopped),
          .last_error = row.Text(6),
          .updated_at = row.Text(7)};
}

// A failure reading the database, named so the operator knows what to fix.
Status ReadError(sqlite3* db, const std::string& file) {
  return InvalidArgument("state.path " + file + ": " + sqlite3_errmsg(db) +
                         " (restore it from a backup, or move it away to start over)");
}

constexpr const char* kSelectState =
    "SELECT pipeline, checkpoint, events_read, events_acked, dead_lettered, state, last_error, "
    "updated_at FROM pipelines";

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

// Field 22 of /proc/<pid>/stat (starttime, clock ticks after boot); 0 when there is no such
// process. The command name (field 2) may hold spaces and parentheses: fields are counted
// after its last ')'.
int64_t ProcessStartTime(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) return 0;
  std::istringstream fields(stat.substr(name_end + 1));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

}  // namespace

BuildRecord BuildByThisProcess(std::string collection, std::string alias, std::string job) {
  const int64_t pid = getpid();
  return {.collection = std::move(collection),
          .alias = std::move(alias),
          .job = std::move(job),
          .host = HostName(),
          .pid = pid,
          .pid_started = ProcessStartTime(pid),
          .started_at = NowUtc()};
}

bool BuilderMayBeAlive(const BuildRecord& record) {
  if (record.host != HostName()) return true;
  const int64_t started = ProcessStartTime(record.pid);
  return started != 0 && started == record.pid_started;
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return InvalidArgument("state.path " + dir + ": cannot create directory: " + ec.message());
  std::unique_ptr<StateStore> store(new StateStore(dir));
  const std::string file = dir + "/state.db";
  if (sqlite3_open(file.c_str(), &store->db_) != SQLITE_OK) {
    return InvalidArgument("state.path " + file + ": " + sqlite3_errmsg(store->db_));
  }
  sqlite3_busy_timeout(store->db_, 10'000);
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchema}) {
    if (Status status = store->Exec(sql); !status.ok()) {
      return InvalidArgument("state.path " + file + ": " + status.message());
    }
  }
  struct stat opened {};
  if (stat(file.c_str(), &opened) != 0) {
    return InvalidArgument("state.path " + file + ": vanished while being opened");
  }
  store->database_ = {.device = opened.st_dev, .inode = opened.st_ino};
  return store;
}

Result<std::unique_ptr<StateStore>> StateStore::OpenReadOnly(const std::string& dir) {
  const std::string file = dir + "/state.db";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (ec) return InvalidArgument("state.path " + file + ": " + ec.message());
    return std::unique_ptr<StateStore>();
  }
  std::unique_ptr<StateStore> store(new StateStore(dir));
  if (sqlite3_open_v2(file.c_str(), &store->db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return ReadError(store->db_, file);
  }
  sqlite3_busy_timeout(store->db_, 10'000);
  // Reads the schema: a file that is not a database fails here, not with an empty answer.
  Statement tables(store->db_, "SELECT count(*) FROM sqlite_master WHERE name = 'pipelines'");
  if (!tables.ok() || tables.Step() != SQLITE_ROW) return ReadError(store->db_, file);
  if (tables.Int(0) != 1) {
    return InvalidArgument("state.path " + file +
                           ": not a searchsync state database (no "
                           "pipelines table)");
  }
  return store;
}

StateStore::~StateStore() {
  sqlite3_close(db_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

Status StateStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown sqlite error";
    sqlite3_free(error);
    return Internal("state store: " + message);
  }
  return Status::Ok();
}

Status StateStore::LockForRun() {
  const std::string file = dir_ + "/run.lock";
  lock_fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return InvalidArgument("state.path: cannot open " + file);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return FailedPrecondition("another `searchsync run` is using the state directory " + dir_ +
                              "; stop it, or give this one its own state.path");
  }
  struct stat locked {};
  if (fstat(lock_fd_, &locked) != 0) return InvalidArgument("state.path: cannot stat " + file);
  std::lock_guard lock(mutex_);
  lock_ = FileIdentity{.device = locked.st_dev, .inode = locked.st_ino};
  return Status::Ok();
}

Status StateStore::CheckIntact() {
  std::lock_guard lock(mutex_);
  return CheckIntactLocked();
}

Status StateStore::CheckIntactLocked() {
  const auto same = [](const std::string& path, const FileIdentity& identity) {
    struct stat now {};
    return stat(path.c_str(), &now) == 0 && now.st_dev == identity.device &&
           now.st_ino == identity.inode;
  };
  for (const auto& [name, identity] :
       {std::pair<const char*, std::optional<FileIdentity>>{"state.db", database_},
        {"run.lock", lock_}}) {
    if (!identity || same(dir_ + "/" + name, *identity)) continue;
    return FailedPrecondition(
        "state.path " + dir_ + ": " + name +
        " was deleted or replaced while running; stopping, since checkpoints and dead letters "
        "written now would be lost and the lock no longer keeps a second `searchsync run` "
        "out (restore the directory, or start again to resume from what it holds)");
  }
  return Status::Ok();
}

Result<PipelineState> StateStore::Load(const std::string& pipeline) {
  std::lock_guard lock(mutex_);
  Statement select(db_, (std::string(kSelectState) + " WHERE pipeline = ?").c_str());
  if (!select.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  select.Bind(1, pipeline);
  switch (select.Step()) {
    case SQLITE_ROW:
      return ReadState(select);
    case SQLITE_DONE:
      return PipelineState{.pipeline = pipeline};
    default:
      return ReadError(db_, dir_ + "/state.db");
  }
}

Result<std::vector<PipelineState>> StateStore::LoadAll() {
  std::lock_guard lock(mutex_);
  Statement select(db_, (std::string(kSelectState) + " ORDER BY pipeline").c_str());
  if (!select.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  std::vector<PipelineState> states;
  int step = SQLITE_ROW;
  while ((step = select.Step()) == SQLITE_ROW) states.push_back(ReadState(select));
  if (step != SQLITE_DONE) return ReadError(db_, dir_ + "/state.db");
  return states;
}

Status StateStore::Save(const PipelineState& state) {
  std::lock_guard lock(mutex_);
  if (Status intact = CheckIntactLocked(); !intact.ok()) return intact;
  Statement upsert(db_,
                   "INSERT INTO pipelines(pipeline, checkpoint, events_read, events_acked, "
                   "dead_lettered, state, last_error, updated_at) VALUES (?,?,?,?,?,?,?,?) "
                   "ON CONFLICT(pipeline) DO UPDATE SET checkpoint=excluded.checkpoint, "
                   "events_read=excluded.events_read, events_acked=excluded.events_acked, "
                   "dead_lettered=excluded.dead_lettered, state=excluded.state, "
                   "last_error=excluded.last_error, updated_at=excluded.updated_at");
  if (!upsert.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  upsert.Bind(1, state.pipeline);
  upsert.Bind(2, state.checkpoint.token);
  upsert.Bind(3, static_cast<int64_t>(state.counters.events_read));
  upsert.Bind(4, static_cast<int64_t>(state.counters.events_acked));
  upsert.Bind(5, static_cast<int64_t>(state.counters.dead_lettered));
  upsert.Bind(6, std::string(RunStateName(state.state)));
  upsert.Bind(7, state.last_error);
  upsert.Bind(8, NowUtc());
  if (upsert.Step() != SQLITE_DONE) {
    return Unavailable(std::string("state store: saving checkpoint: ") + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Result<std::string> StateStore::LoadMarker(const std::string& pipeline, const std::string& key) {
  std::lock_guard lock(mutex_);
  Statement select(db_, "SELECT value FROM markers WHERE pipeline = ? AND key = ?");
  if (!select.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  select.Bind(1, pipeline);
  select.Bind(2, key);
  switch (select.Step()) {
    case SQLITE_ROW:
      return select.Text(0);
    case SQLITE_DONE:
      return std::string();
    default:
      return ReadError(db_, dir_ + "/state.db");
  }
}

Status StateStore::SaveMarker(const std::string& pipeline, const std::string& key,
                              const std::string& value) {
  std::lock_guard lock(mutex_);
  if (Status intact = CheckIntactLocked(); !intact.ok()) return intact;
  Statement upsert(db_,
                   "INSERT INTO markers(pipeline, key, value, updated_at) VALUES (?,?,?,?) "
                   "ON CONFLICT(pipeline, key) DO UPDATE SET value=excluded.value, "
                   "updated_at=excluded.updated_at");
  if (!upsert.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  upsert.Bind(1, pipeline);
  upsert.Bind(2, key);
  upsert.Bind(3, value);
  upsert.Bind(4, NowUtc());
  if (upsert.Step() != SQLITE_DONE) {
    return Unavailable("state store: saving " + key + ": " + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Status StateStore::RecordBuild(const BuildRecord& record) {
  std::lock_guard lock(mutex_);
  if (Status intact = CheckIntactLocked(); !intact.ok()) return intact;
  Statement upsert(db_,
                   "INSERT OR REPLACE INTO builds(collection, alias, job, host, pid, pid_started, "
                   "started_at) VALUES (?,?,?,?,?,?,?)");
  if (!upsert.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  upsert.Bind(1, record.collection);
  upsert.Bind(2, record.alias);
  upsert.Bind(3, record.job);
  upsert.Bind(4, record.host);
  upsert.Bind(5, record.pid);
  upsert.Bind(6, record.pid_started);
  upsert.Bind(7, record.started_at);
  if (upsert.Step() != SQLITE_DONE) {
    return Unavailable("state store: recording the build of " + record.collection + ": " +
                       sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Status StateStore::ForgetBuild(const std::string& collection) {
  std::lock_guard lock(mutex_);
  if (Status intact = CheckIntactLocked(); !intact.ok()) return intact;
  Statement erase(db_, "DELETE FROM builds WHERE collection = ?");
  if (!erase.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  erase.Bind(1, collection);
  if (erase.Step() != SQLITE_DONE) {
    return Unavailable("state store: forgetting the build of " + collection + ": " +
                       sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Result<std::vector<BuildRecord>> StateStore::ListBuilds() {
  std::lock_guard lock(mutex_);
  Statement select(db_,
                   "SELECT collection, alias, job, host, pid, pid_started, started_at FROM builds "
                   "ORDER BY collection");
  if (!select.ok()) return ReadError(db_, dir_ + "/state.db");
  std::vector<BuildRecord> records;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    records.push_back({.collection = select.Text(0),
                       .alias = select.Text(1),
                       .job = select.Text(2),
                       .host = select.Text(3),
                       .pid = select.Int(4),
                       .pid_started = select.Int(5),
                       .started_at = select.Text(6)});
  }
  if (rc != SQLITE_DONE) return ReadError(db_, dir_ + "/state.db");
  return records;
}

Status StateStore::AddDeadLetters(const std::vector<DeadLetter>& letters) {
  if (letters.empty()) return Status::Ok();
  std::lock_guard lock(mutex_);
  if (Status intact = CheckIntactLocked(); !intact.ok()) return intact;
  if (Status status = Exec("BEGIN IMMEDIATE"); !status.ok()) return status;
  const std::string now = NowUtc();
  for (const DeadLetter& letter : letters) {
    Statement row(db_,
                  "INSERT INTO dead_letters(pipeline, document_id, operation, document, error, "
                  "position, created_at) VALUES (?,?,?,?,?,?,?)");
    row.Bind(1, letter.pipeline);
    row.Bind(2, letter.document_id);
    row.Bind(3, letter.operation);
    row.Bind(4, letter.document);
    row.Bind(5, letter.error);
    row.Bind(6, letter.position);
    row.Bind(7, now);
    if (row.Step() != SQLITE_DONE) {
      const std::string message = sqlite3_errmsg(db_);
      (void)Exec("ROLLBACK");
      return Unavailable("state store: storing dead letters: " + message);
    }
  }
  return Exec("COMMIT");
}

Result<std::vector<DeadLetter>> StateStore::ListDeadLetters(const std::string& pipeline, int limit,
                                                            int64_t after_seq) {
  std::lock_guard lock(mutex_);
  Statement select(db_,
                   "SELECT pipeline, document_id, document, operation, error, position, "
                   "created_at, seq FROM dead_letters WHERE pipeline = ? AND seq > ? "
                   "ORDER BY seq LIMIT ?");
  if (!select.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  select.Bind(1, pipeline);
  select.Bind(2, after_seq);
  select.Bind(3, static_cast<int64_t>(limit));
  std::vector<DeadLetter> letters;
  int step = SQLITE_ROW;
  while ((step = select.Step()) == SQLITE_ROW) {
    letters.push_back({.seq = select.Int(7),
                       .pipeline = select.Text(0),
                       .document_id = select.Text(1),
                       .document = select.Text(2),
                       .operation = select.Text(3),
                       .error = select.Text(4),
                       .position = select.Text(5),
                       .created_at = select.Text(6)});
  }
  if (step != SQLITE_DONE) return ReadError(db_, dir_ + "/state.db");
  return letters;
}

Result<uint64_t> StateStore::CountDeadLetters(const std::string& pipeline) {
  std::lock_guard lock(mutex_);
  Statement count(db_, "SELECT count(*) FROM dead_letters WHERE pipeline = ?");
  if (!count.ok()) return Internal(std::string("state store: ") + sqlite3_errmsg(db_));
  count.Bind(1, pipeline);
  if (count.Step() != SQLITE_ROW) return Internal("state store: count failed");
  return static_cast<uint64_t>(count.Int(0));
}

}  // namespace searchsync
