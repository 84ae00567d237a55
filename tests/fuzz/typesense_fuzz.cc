// Typesense answers: an import's per-line results and the error bodies of any call. Rejections
// point at events that were sent; error messages stay short.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "sinks/typesense_encode.h"
#include "sinks/typesense_http_result.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void FuzzTypesense(std::string_view input) {
  // As many documents sent as the body has lines, and one fewer: both counts get exercised.
  const size_t lines = static_cast<size_t>(std::count(input.begin(), input.end(), '\n')) + 1;
  for (const size_t sent : {lines, lines - 1}) {
    std::vector<size_t> line_events(sent);
    std::iota(line_events.begin(), line_events.end(), size_t{100});  // event index = line + 100
    Result<WriteReport> report = ParseImportResponse(input, line_events);
    if (!report.ok()) {
      Check(report.status().code() == StatusCode::kUnavailable, "a bad import answer is retried");
      continue;
    }
    Check(report->rejected.size() <= sent, "no more rejections than documents");
    for (const Rejection& rejection : report->rejected) {
      Check(rejection.event_index >= 100 && rejection.event_index < 100 + sent,
            "a rejection names an event that was sent");
    }
  }

  Check(ServerMessage(input).size() <= 303, "a server message is cut to 300 bytes and ...");
  for (const long status : {200L, 400L, 401L, 404L, 409L, 422L, 503L}) {
    const Status result = ClassifyHttpResult("typesense POST /x", "", status, input);
    Check(result.ok() == (status == 200), "only 2xx is success");
  }
}

}  // namespace searchsync::fuzz
