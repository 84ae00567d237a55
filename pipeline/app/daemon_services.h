#pragma once
// DaemonServices: what `searchsync run` offers beside its pipelines: the admin API on
// admin.listen (health, status, metrics, reindex on demand) and the reindex schedules.
//
//   auto services = DaemonServices::Start(config, runners, &coordinator, state, !once);
//   ... runners run ...
//   services->StopSchedules();   // on SIGTERM: no reindex starts any more
//   coordinator.CancelAll();
//
// Thread safety: Start and StopSchedules from the owning thread; the services run on their own
// threads and only call thread-safe members of the runners and the coordinator.

#include <memory>
#include <vector>

#include "pipeline/admin_server.h"
#include "pipeline/app/reindex.h"
#include "pipeline/config.h"
#include "pipeline/runner.h"
#include "pipeline/scheduler.h"
#include "pipeline/state_store.h"

namespace searchsync {

class DaemonServices {
 public:
  // `runners` and `reindex` must outlive the services; `reindex` may be null (no reindex on
  // demand: 409). With `schedules`, each runner's pipeline with reindex.schedule is reindexed
  // at its times; the last due time is kept in `state` so runs missed while the daemon was
  // down are logged at the next start. Fails like AdminServer::Start.
  static Result<std::unique_ptr<DaemonServices>> Start(const Config& config,
                                                       std::vector<PipelineRunner*> runners,
                                                       ReindexCoordinator* reindex,
                                                       StateStore& state, bool schedules);
  ~DaemonServices();  // stops the schedules, then the admin API

  void StopSchedules();
  int admin_port() const { return admin_ ? admin_->port() : 0; }

 private:
  DaemonServices() = default;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<AdminServer> admin_;
};

// The scheduler job name of a pipeline's reindex schedule, e.g. "reindex pipeline=products".
std::string ReindexJobName(const std::string& pipeline);

}  // namespace searchsync
