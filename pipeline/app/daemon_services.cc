#include "pipeline/app/daemon_services.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "pipeline/log.h"

namespace searchsync {
namespace {

// The state store marker holding the due time (Unix seconds) of the last scheduled reindex.
constexpr const char* kLastDueMarker = "reindex_schedule_last_due";

}  // namespace

std::string ReindexJobName(const std::string& pipeline) { return "reindex pipeline=" + pipeline; }

Result<std::unique_ptr<DaemonServices>> DaemonServices::Start(const Config& config,
                                                              std::vector<PipelineRunner*> runners,
                                                              ReindexCoordinator* reindex,
                                                              StateStore& state, bool schedules) {
  std::unique_ptr<DaemonServices> services(new DaemonServices());

  if (schedules && reindex != nullptr) {
    std::vector<ScheduledJob> jobs;
    std::map<std::string, std::string> pipeline_of_job;
    for (const PipelineRunner* runner : runners) {
      const std::string name = runner->Report().name;
      const auto config_it =
          std::find_if(config.pipelines.begin(), config.pipelines.end(),
                       [&](const PipelineConfig& pipeline) { return pipeline.name == name; });
      if (config_it == config.pipelines.end() || config_it->reindex.schedule.empty()) continue;
      Result<CronSchedule> cron = CronSchedule::Parse(config_it->reindex.schedule);
      if (!cron.ok()) return InvalidArgument("reindex.schedule: " + cron.status().message());
      pipeline_of_job[ReindexJobName(name)] = name;
      jobs.push_back({.name = ReindexJobName(name),
                      .schedule = std::move(*cron),
                      .fire = [reindex, name]() -> Status {
                        Result<std::string> id = reindex->Start(name);
                        return id.ok() ? Status::Ok() : id.status();
                      }});
    }
    if (!jobs.empty()) {
      SchedulerOptions options;
      options.last_fire = [&state,
                           pipeline_of_job](const std::string& job) -> std::optional<WallTime> {
        Result<std::string> marker = state.LoadMarker(pipeline_of_job.at(job), kLastDueMarker);
        int64_t seconds = 0;
        if (!marker.ok() || marker->empty()) return std::nullopt;
        const auto [end, error] =
            std::from_chars(marker->data(), marker->data() + marker->size(), seconds);
        if (error != std::errc()) return std::nullopt;
        return WallTime(std::chrono::seconds(seconds));
      };
      options.record_fire = [&state, pipeline_of_job](const std::string& job, WallTime due) {
        const auto seconds =
            std::chrono::duration_cast<std::chrono::seconds>(due.time_since_epoch()).count();
        if (Status status =
                state.SaveMarker(pipeline_of_job.at(job), kLastDueMarker, std::to_string(seconds));
            !status.ok()) {
          Log(LogLevel::kWarn, "scheduler",
              "could not record the run of " + job + ": " + status.message());
        }
      };
      services->scheduler_ = std::make_unique<Scheduler>(std::move(jobs), std::move(options));
    }
  }

  if (!config.admin.listen.empty()) {
    Scheduler* scheduler = services->scheduler_.get();
    AdminHandlers handlers{
        .pipelines =
            [runners] {
              std::vector<PipelineReport> reports;
              reports.reserve(runners.size());
              for (const PipelineRunner* runner : runners) reports.push_back(runner->Report());
              return reports;
            },
        .reindex_progress =
            [reindex](const std::string& pipeline) -> std::optional<ReindexProgress> {
          if (reindex == nullptr) return std::nullopt;
          return reindex->Progress(pipeline);
        },
        .start_reindex = [reindex](const std::string& pipeline) -> Result<std::string> {
          if (reindex == nullptr) {
            return FailedPrecondition("this process does not reindex (run --once)");
          }
          return reindex->Start(pipeline);
        },
        .next_reindex = [scheduler](const std::string& pipeline) -> std::optional<WallTime> {
          if (scheduler == nullptr) return std::nullopt;
          return scheduler->NextFire(ReindexJobName(pipeline));
        }};
    Result<std::unique_ptr<AdminServer>> admin = AdminServer::Start(
        {.listen = config.admin.listen, .token = config.admin.token}, std::move(handlers));
    if (!admin.ok()) return admin.status();
    services->admin_ = std::move(*admin);
  }
  if (services->scheduler_) services->scheduler_->Start();
  return services;
}

void DaemonServices::StopSchedules() {
  if (scheduler_) scheduler_->Stop();
}

DaemonServices::~DaemonServices() {
  StopSchedules();
  admin_.reset();
}

}  // namespace searchsync
