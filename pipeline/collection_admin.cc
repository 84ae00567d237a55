#include "pipeline/collection_admin.h"

#include "pipeline/log.h"
#include "pipeline/state_store.h"

namespace searchsync {

Result<std::vector<std::string>> DropLeftoverBuilds(CollectionAdmin& admin, StateStore& state,
                                                    std::string_view component) {
  Result<std::vector<BuildRecord>> builds = state.ListBuilds();
  if (!builds.ok()) return builds.status();
  std::vector<std::string> dropped;
  for (const BuildRecord& build : *builds) {
    if (build.alias != admin.alias()) continue;
    const std::string builder = build.job + " (pid " + std::to_string(build.pid) + " on " +
                                build.host + ", started " + build.started_at + ")";
    if (BuilderMayBeAlive(build)) {
      Log(LogLevel::kInfo, component,
          "collection " + build.collection + " is being built by " + builder + "; left alone");
      continue;
    }
    Result<std::optional<std::string>> live = admin.LiveCollection();
    if (!live.ok()) return live.status();
    if (*live == build.collection) {
      Log(LogLevel::kInfo, component,
          "collection " + build.collection + " of " + builder + " is live: kept");
    } else {
      if (Status status = admin.Drop(build.collection); !status.ok()) return status;
      Log(LogLevel::kWarn, component,
          "dropped collection " + build.collection + ", left half-built by " + builder +
              ", which is gone");
      dropped.push_back(build.collection);
    }
    if (Status status = state.ForgetBuild(build.collection); !status.ok()) return status;
  }
  return dropped;
}

}  // namespace searchsync
