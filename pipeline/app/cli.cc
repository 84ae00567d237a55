#include "pipeline/app/cli.h"

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "pipeline/app/backup.h"
#include "pipeline/app/daemon_services.h"
#include "pipeline/app/registry.h"
#include "pipeline/app/reindex.h"
#include "pipeline/app/reindex_command.h"
#include "pipeline/app/status_command.h"
#include "pipeline/config.h"
#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/runner.h"
#include "pipeline/state_store.h"
#include "pipeline/version.h"

namespace searchsync {
namespace {

struct CommonFlags {
  std::string config_file;
  std::string log_format = "text";
  std::string log_level = "info";
};

void ApplyLogFlags(const CommonFlags& flags) {
  SetLogFormat(flags.log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  if (flags.log_level == "debug") SetLogLevel(LogLevel::kDebug);
  if (flags.log_level == "warn") SetLogLevel(LogLevel::kWarn);
  if (flags.log_level == "error") SetLogLevel(LogLevel::kError);
}

// Loads the config; prints every error and returns nullopt on failure.
std::optional<Config> LoadOrReport(const std::string& file) {
  Result<Config> config = LoadConfig(file);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return std::nullopt;
  }
  return std::move(*config);
}

// The signals that stop `run`. SIGHUP too: a closed terminal or a supervisor's reload must not
// kill the daemon without a flush, and there are no log files to reopen (logs go to stderr).
sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  return signals;
}

// Blocks the stop signals in every thread and handles them on a watcher thread: the first
// calls `on_stop` (graceful), any later one `on_stop_now` (ends the shutdown grace period).
class SignalWatcher {
 public:
  SignalWatcher(std::function<void()> on_stop, std::function<void()> on_stop_now)
      : signals_(StopSignals()) {
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this, on_stop = std::move(on_stop),
                           on_stop_now = std::move(on_stop_now)] {
      const timespec tick{0, 100'000'000};
      bool stopping = false;
      while (!done_) {
        const int signal = sigtimedwait(&signals_, nullptr, &tick);
        if (signal <= 0) continue;
        const std::string name = signal == SIGINT   ? "SIGINT"
                                 : signal == SIGHUP ? "SIGHUP"
                                                    : "SIGTERM";
        if (!stopping) {
          Log(LogLevel::kInfo, "searchsync",
              "received " + name +
                  ": flushing and checkpointing before exit (send it again to stop without "
                  "waiting)");
          stopping = true;
          on_stop();
        } else {
          Log(LogLevel::kWarn, "searchsync",
              "received " + name + " again: stopping without waiting for unacknowledged events");
          on_stop_now();
        }
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
  }

 private:
  sigset_t signals_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int Run(const CommonFlags& flags, const std::vector<std::string>& selected, bool once) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  std::vector<const PipelineConfig*> pipelines;
  for (const PipelineConfig& pipeline : config->pipelines) {
    if (selected.empty() ||
        std::find(selected.begin(), selected.end(), pipeline.name) != selected.end()) {
      pipelines.push_back(&pipeline);
    }
  }
  for (const std::string& name : selected) {
    const bool known = std::any_of(config->pipelines.begin(), config->pipelines.end(),
                                   [&](const PipelineConfig& p) { return p.name == name; });
    if (!known) {
      std::fprintf(stderr, "%s: no pipeline named '%s'\n", flags.config_file.c_str(), name.c_str());
      return kExitUsage;
    }
  }
  Result<std::unique_ptr<StateStore>> state = StateStore::Open(config->state.path);
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().message().c_str());
    return kExitRuntime;
  }
  if (Status status = (*state)->LockForRun(); !status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return kExitRuntime;
  }
  // Every thread started from here on (admin API, schedules, pipelines) inherits the blocked
  // stop signals, so only the SignalWatcher takes them; one arriving before it exists waits.
  const sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // A changed schema is applied by a reindex, not by failing imports: say so at start.
  WarnAboutSchemaChanges(*config, flags.config_file);
  // What a reindex or restore killed mid-way left behind.
  DropLeftoverCollections(*config, **state);

  std::vector<std::unique_ptr<PipelineRunner>> runners;
  for (const PipelineConfig* pipeline : pipelines) {
    runners.push_back(std::make_unique<PipelineRunner>(
        *pipeline, config->typesense.retry, pipeline->make_source(), MakeSink(*config, *pipeline),
        **state, RunOptions{.once = once}));
  }
  std::map<std::string, PipelineRunner*> runner_of;
  std::vector<PipelineRunner*> runner_list;
  for (auto& runner : runners) {
    runner_of[runner->Report().name] = runner.get();
    runner_list.push_back(runner.get());
  }
  ReindexCoordinator reindex(*config, runner_of);
  Result<std::unique_ptr<DaemonServices>> services = DaemonServices::Start(
      *config, runner_list, once ? nullptr : &reindex, **state, /*schedules=*/!once);
  if (!services.ok()) {
    std::fprintf(stderr, "%s\n", services.status().message().c_str());
    return services.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime;
  }
  std::unique_ptr<BackupSchedules> backups;
  SignalWatcher watcher(
      [&] {
        if (backups) backups->Stop();
        (*services)->StopSchedules();
        reindex.CancelAll();  // drops the new collections; aliases stay where they are
        for (auto& runner : runners) runner->Stop();
      },
      [&] {
        for (auto& runner : runners) runner->StopNow();
      });
  // Backups and snapshots on their schedules (not in a one-shot pass). Started after the
  // watcher, so their threads inherit its blocked stop signals.
  if (!once) {
    Result<std::unique_ptr<BackupSchedules>> started = BackupSchedules::Start(*config, pipelines);
    if (!started.ok()) {
      std::fprintf(stderr, "%s: %s\n", flags.config_file.c_str(),
                   started.status().message().c_str());
      for (auto& runner : runners) runner->Stop();
      return kExitUsage;
    }
    backups = std::move(*started);
  }
  Log(LogLevel::kInfo, "searchsync",
      std::string("searchsync ") + SEARCHSYNC_VERSION + " running " +
          std::to_string(runners.size()) + " pipeline(s)" + (once ? " once" : ""));

  std::vector<Status> results(runners.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < runners.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = runners[i]->Run(); });
  }
  for (auto& thread : threads) thread.join();

  // The outcome, in the log format asked for. Anything read but not acknowledged, and a --once
  // pass that did not get to the end, is a failure of this run even though nothing is lost.
  int exit_code = kExitOk;
  for (size_t i = 0; i < runners.size(); ++i) {
    const PipelineReport report = runners[i]->Report();
    const std::string component = "pipeline=" + report.name;
    if (!results[i].ok()) {
      Log(LogLevel::kError, component, "pipeline failed: " + results[i].message());
      // A configuration the source or sink refused (kInvalidArgument) is the user's to fix.
      exit_code = std::max(
          exit_code, results[i].code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime);
      continue;
    }
    const uint64_t unacknowledged = report.counters.events_read - report.counters.events_acked;
    if (unacknowledged > 0) {
      Log(LogLevel::kError, component,
          "stopped with " + std::to_string(unacknowledged) +
              " events read but not acknowledged by Typesense; they are read again on the next "
              "start");
      exit_code = std::max(exit_code, kExitRuntime);
    } else if (once && report.state != RunState::kCaughtUp) {
      Log(LogLevel::kError, component,
          "stopped before catching up; the next run goes on from checkpoint " +
              JsonString(report.checkpoint));
      exit_code = std::max(exit_code, kExitRuntime);
    }
    if (once && report.dead_lettered_this_run > 0) {
      Log(LogLevel::kError, component,
          std::to_string(report.dead_lettered_this_run) +
              " document(s) were rejected and stored in the dead-letter store; see `searchsync "
              "dead-letters -c " +
              flags.config_file + " " + report.name + "`");
      exit_code = std::max(exit_code, kExitRuntime);
    }
  }
  return exit_code;
}

int Check(const CommonFlags& flags, bool reference) {
  if (reference) {
    std::fputs(ConfigReferenceMarkdown().c_str(), stdout);
    return kExitOk;
  }
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  int exit_code = kExitOk;
  for (const PipelineConfig& pipeline : config->pipelines) {
    const Status source = pipeline.make_source()->HealthCheck();
    const Status sink = MakeSink(*config, pipeline)->HealthCheck();
    for (const auto& [what, status] : {std::pair{"source", source}, std::pair{"sink", sink}}) {
      if (status.ok()) {
        std::printf("pipeline %s: %s ok\n", pipeline.name.c_str(), what);
      } else {
        std::printf("pipeline %s: %s: %s\n", pipeline.name.c_str(), what, status.message().c_str());
        exit_code = std::max(
            exit_code, status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitRuntime);
      }
    }
  }
  std::printf(exit_code == kExitOk      ? "configuration ok\n"
              : exit_code == kExitUsage ? "configuration invalid\n"
                                        : "configuration valid; checks failed\n");
  return exit_code;
}

int PrintStatus(const CommonFlags& flags, bool json) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  return RunStatusCommand(*config, json);
}

const PipelineConfig* FindPipeline(const Config& config, const std::string& name) {
  for (const PipelineConfig& pipeline : config.pipelines) {
    if (pipeline.name == name) return &pipeline;
  }
  std::fprintf(stderr, "%s: no pipeline named '%s'\n", config.file.c_str(), name.c_str());
  return nullptr;
}

// `text` on one line: line breaks and other control characters escaped as in JSON (`\n`),
// everything else as it is (a document stays readable JSON).
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", byte);
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Every dead letter of one pipeline, oldest first, read from the store a page at a time so
// memory stays bounded however many there are. Text: one block per letter; --json: one object.
int PrintDeadLetters(const CommonFlags& flags, const std::string& pipeline_name, bool json) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  if (FindPipeline(*config, pipeline_name) == nullptr) return kExitUsage;
  // Only reads, like `status`: safe beside a running daemon.
  Result<std::unique_ptr<StateStore>> state = StateStore::OpenReadOnly(config->state.path);
  if (!state.ok()) {
    std::fprintf(stderr, "%s\n", state.status().message().c_str());
    return kExitRuntime;
  }
  constexpr int kPage = 1000;
  uint64_t count = 0;
  if (json) std::printf("{\"pipeline\":%s,\"dead_letters\":[", DumpJson(pipeline_name).c_str());
  for (int64_t after_seq = 0; *state != nullptr;) {
    Result<std::vector<DeadLetter>> page =
        (*state)->ListDeadLetters(pipeline_name, kPage, after_seq);
    if (!page.ok()) {
      if (json) std::printf("\n");
      std::fprintf(stderr, "%s\n", page.status().message().c_str());
      return kExitRuntime;
    }
    for (const DeadLetter& letter : *page) {
      if (json) {
        // The input as it was stored: a JSON document (null for a delete), or its text when
        // it does not parse.
        nlohmann::ordered_json input = nullptr;
        if (!letter.document.empty()) {
          input =
              nlohmann::ordered_json::parse(letter.document, nullptr, /*allow_exceptions=*/false);
          if (input.is_discarded()) input = letter.document;
        }
        std::printf("%s%s", count == 0 ? "" : ",",
                    DumpJson({{"id", letter.document_id},
                              {"operation", letter.operation},
                              {"error", letter.error},
                              {"time", letter.created_at},
                              {"position", letter.position},
                              {"input", std::move(input)}})
                        .c_str());
      } else {
        std::printf("%s  %s  id=%s  position=%s\n  error: %s\n", letter.created_at.c_str(),
                    letter.operation.c_str(), JsonString(letter.document_id).c_str(),
                    OneLine(letter.position).c_str(), OneLine(letter.error).c_str());
        if (!letter.document.empty()) {
          std::printf("  input: %s\n", OneLine(letter.document).c_str());
        }
      }
      ++count;
    }
    if (page->size() < static_cast<size_t>(kPage)) break;
    after_seq = page->back().seq;
  }
  if (json) {
    std::printf("],\"count\":%llu}\n", static_cast<unsigned long long>(count));
  } else {
    std::printf("%llu dead letter(s) in pipeline %s\n", static_cast<unsigned long long>(count),
                pipeline_name.c_str());
  }
  return kExitOk;
}

// A backup location from the command line, or else the pipeline's backup.to; empty (after
// printing why) when there is neither or it cannot be used with this config.
std::string BackupLocation(const Config& config, const PipelineConfig& pipeline,
                           const std::string& given, const char* flag) {
  const std::string location = given.empty() ? pipeline.backup.to : given;
  if (location.empty()) {
    std::fprintf(stderr, "%s is required: pipeline %s has no backup.to in %s\n", flag,
                 pipeline.name.c_str(), config.file.c_str());
  } else if (location.starts_with("s3://") &&
             (config.s3.access_key_id.empty() || config.s3.secret_access_key.empty())) {
    std::fprintf(stderr,
                 "%s %s is an S3 location: set s3.access_key_id and s3.secret_access_key in "
                 "%s\n",
                 flag, location.c_str(), config.file.c_str());
    return "";
  }
  return location;
}

int Snapshot(const CommonFlags& flags, const std::string& path) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  if (!path.starts_with('/')) {
    std::fprintf(stderr,
                 "--path %s: must be absolute (a directory on the Typesense server's machine, "
                 "not resolved against this one's working directory)\n",
                 path.c_str());
    return kExitUsage;
  }
  const Status status = TakeSnapshot(*config, path);
  if (!status.ok()) {
    std::fprintf(stderr, "snapshot failed: %s\n", status.message().c_str());
    return kExitRuntime;
  }
  std::printf("snapshot written to %s on the Typesense server\n", path.c_str());
  return kExitOk;
}

int Backup(const CommonFlags& flags, const std::string& pipeline_name, const std::string& to) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  const PipelineConfig* pipeline = FindPipeline(*config, pipeline_name);
  if (pipeline == nullptr) return kExitUsage;
  const std::string destination = BackupLocation(*config, *pipeline, to, "--to");
  if (destination.empty()) return kExitUsage;
  Result<BackupResult> result = RunBackup(*config, *pipeline, destination);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().message().c_str());
    return kExitRuntime;
  }
  std::printf("backup of %s: %llu documents, %llu bytes, in %s\n", pipeline->name.c_str(),
              static_cast<unsigned long long>(result->manifest.documents),
              static_cast<unsigned long long>(result->manifest.compressed_bytes),
              result->location.c_str());
  for (const std::string& deleted : result->deleted) {
    std::printf("deleted old backup %s\n", deleted.c_str());
  }
  return kExitOk;
}

int Restore(const CommonFlags& flags, const std::string& pipeline_name, const std::string& from,
            const RestoreOptions& options) {
  std::optional<Config> config = LoadOrReport(flags.config_file);
  if (!config) return kExitUsage;
  const PipelineConfig* pipeline = FindPipeline(*config, pipeline_name);
  if (pipeline == nullptr) return kExitUsage;
  const std::string source = BackupLocation(*config, *pipeline, from, "--from");
  if (source.empty()) return kExitUsage;
  Result<RestoreResult> result = RunRestore(*config, *pipeline, source, options);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.status().message().c_str());
    return kExitRuntime;
  }
  std::printf("restored %llu documents of %s from %s into %s; alias %s points at it\n",
              static_cast<unsigned long long>(result->manifest.documents), pipeline->name.c_str(),
              result->location.c_str(), result->collection.c_str(),
              pipeline->sink.collection.c_str());
  if (result->checkpoint_rewound) {
    std::printf("checkpoint of %s set back to the backup's: %s\n", pipeline->name.c_str(),
                result->manifest.checkpoint.empty() ? "(the beginning)"
                                                    : result->manifest.checkpoint.c_str());
  }
  for (const std::string& retired : result->retired) {
    std::printf("dropped old collection %s\n", retired.c_str());
  }
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  // A closed stdout or stderr (`searchsync run 2>&1 | head`) must fail writes, not kill the
  // process before it flushes and checkpoints.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"searchsync keeps a Typesense search index in step with a primary database."};
  app.set_version_flag("--version", std::string("searchsync ") + SEARCHSYNC_VERSION);
  app.require_subcommand(1);
  CommonFlags flags;
  auto add_common = [&](CLI::App* command) {
    command->add_option("-c,--config", flags.config_file, "pipelines YAML file")->required();
    command->add_option("--log-format", flags.log_format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    command->add_option("--log-level", flags.log_level, "debug, info, warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  };

  std::vector<std::string> selected;
  bool once = false;
  CLI::App* run = app.add_subcommand("run", "run the pipelines until SIGTERM, SIGINT or SIGHUP");
  add_common(run);
  run->add_option("--pipeline", selected, "run only this pipeline (repeatable)");
  run->add_flag("--once", once,
                "one catch-up pass: exit 0 when every source is caught up and acknowledged");

  bool reference = false;
  CLI::App* check = app.add_subcommand("check", "validate the config and reach every server");
  add_common(check);
  check->add_flag("--reference", reference, "print the configuration key reference (markdown)");
  // --reference needs no config file.
  check->get_option("--config")->required(false);

  bool json = false;
  CLI::App* status = app.add_subcommand("status", "show each pipeline's state and checkpoint");
  add_common(status);
  status->add_flag("--json", json, "machine-readable output");

  std::string reindex_pipeline;
  bool reindex_wait = false;
  CLI::App* reindex = app.add_subcommand(
      "reindex", "rebuild a pipeline's collection from the source and move the alias");
  add_common(reindex);
  reindex->add_option("pipeline", reindex_pipeline, "pipeline name")->required();
  reindex->add_flag("--wait", reindex_wait,
                    "follow the reindex to its end (a progress bar on a terminal); exit 0 "
                    "when the alias moved");

  std::string dead_letters_pipeline;
  CLI::App* dead_letters = app.add_subcommand(
      "dead-letters", "list what Typesense or a transform refused, and why (oldest first)");
  add_common(dead_letters);
  dead_letters->add_option("pipeline", dead_letters_pipeline, "pipeline name")->required();
  dead_letters->add_flag("--json", json, "machine-readable output");

  std::string snapshot_path;
  CLI::App* snapshot = app.add_subcommand("snapshot", "take a Typesense server-side snapshot");
  add_common(snapshot);
  snapshot
      ->add_option("--path", snapshot_path, "absolute directory on the Typesense server's machine")
      ->required();

  std::string backup_pipeline;
  std::string backup_to;
  CLI::App* backup = app.add_subcommand("backup", "export a pipeline's live collection");
  add_common(backup);
  backup->add_option("pipeline", backup_pipeline, "pipeline name")->required();
  backup->add_option("--to", backup_to,
                     "directory or s3://bucket/prefix (default: the pipeline's backup.to)");

  std::string restore_pipeline;
  std::string restore_from;
  RestoreOptions restore_options;
  CLI::App* restore =
      app.add_subcommand("restore", "import a backup into a new collection, then swap the alias");
  add_common(restore);
  restore->add_option("pipeline", restore_pipeline, "pipeline name")->required();
  restore->add_option("--from", restore_from,
                      "one backup, or a location whose newest backup is taken (default: the "
                      "pipeline's backup.to)");
  restore->add_flag("--rewind-checkpoint", restore_options.rewind_checkpoint,
                    "set the pipeline's checkpoint back to the backup's, so the next run "
                    "replays every change since (not while `run` is running)");
  restore->add_flag("--use-backup-schema", restore_options.use_backup_schema,
                    "create the collection from the backup's schema when it differs from the "
                    "configured one (refused otherwise)");

  // CLI11 would answer an unknown command with "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    const std::vector<CLI::App*> commands = app.get_subcommands([](CLI::App*) { return true; });
    std::string names;
    bool known = false;
    for (const CLI::App* command : commands) {
      known |= command->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + command->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "searchsync: unknown command '%s'; the commands are: %s (see --help)\n",
                   argv[1], names.c_str());
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  ApplyLogFlags(flags);
  if (run->parsed()) return Run(flags, selected, once);
  if (check->parsed()) {
    if (!reference && flags.config_file.empty()) {
      std::fprintf(stderr, "check: --config is required\n");
      return kExitUsage;
    }
    return Check(flags, reference);
  }
  if (status->parsed()) return PrintStatus(flags, json);
  if (dead_letters->parsed()) return PrintDeadLetters(flags, dead_letters_pipeline, json);
  if (snapshot->parsed()) return Snapshot(flags, snapshot_path);
  if (backup->parsed()) return Backup(flags, backup_pipeline, backup_to);
  if (restore->parsed()) return Restore(flags, restore_pipeline, restore_from, restore_options);
  if (reindex->parsed()) {
    std::optional<Config> config = LoadOrReport(flags.config_file);
    if (!config) return kExitUsage;
    return RunReindexCommand(*config, reindex_pipeline, reindex_wait);
  }
  return kExitUsage;
}

}  // namespace searchsync
