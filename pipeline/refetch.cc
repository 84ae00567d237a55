#include "pipeline/refetch.h"

#include <unordered_map>
#include <utility>

namespace searchsync {

Status ResolveRefetches(const DocumentReader& read, std::vector<Event>& events, size_t chunk_size,
                        std::vector<bool>& superseded, RefetchTotals& totals) {
  // The last kRefetch event of each id; earlier ones are superseded by it.
  std::unordered_map<std::string_view, size_t> last_of;
  for (size_t event_idx = 0; event_idx < events.size(); ++event_idx) {
    if (events[event_idx].op == Op::kRefetch) last_of[events[event_idx].id] = event_idx;
  }
  if (last_of.empty()) return Status::Ok();
  std::vector<std::string> ids;
  ids.reserve(last_of.size());
  for (size_t event_idx = 0; event_idx < events.size(); ++event_idx) {
    const Event& event = events[event_idx];
    if (event.op == Op::kRefetch && last_of[event.id] == event_idx) ids.push_back(event.id);
  }
  // Read everything first, so a failure leaves `events` untouched.
  std::unordered_map<std::string, Document> found;
  uint64_t reads = 0;
  for (size_t start = 0; start < ids.size(); start += chunk_size) {
    const std::span<const std::string> chunk =
        std::span(ids).subspan(start, std::min(chunk_size, ids.size() - start));
    Result<std::vector<Event>> documents = read(chunk);
    ++reads;
    if (!documents.ok()) return documents.status();
    for (Event& document : *documents) found[document.id] = std::move(document.document);
  }
  superseded.assign(events.size(), false);
  totals.reads += reads;
  for (size_t event_idx = 0; event_idx < events.size(); ++event_idx) {
    Event& event = events[event_idx];
    if (event.op != Op::kRefetch) continue;
    ++totals.requested;
    if (last_of[event.id] != event_idx) {
      superseded[event_idx] = true;
      ++totals.duplicates;
      continue;
    }
    const auto it = found.find(event.id);
    if (it == found.end()) {
      event.op = Op::kDelete;
      ++totals.gone;
    } else {
      event.op = Op::kUpsert;
      event.document = std::move(it->second);
      ++totals.found;
    }
  }
  return Status::Ok();
}

}  // namespace searchsync
