#pragma once
// Re-reading documents whose content changed without their own row changing.
//
// A document built from several tables changes when a related row does (a renamed category
// changes every product document that shows it), yet nothing in the document's own row says
// so. A source reports such documents as kRefetch events: an id and a position, no content.
// The pipeline then asks the source of truth for their current content, in chunks:
//
//   Poll -> [R a@p1] [U b@p2] [R c@p3] [R a@p4] ...       (R = kRefetch, U = kUpsert)
//   ResolveRefetches: ReadDocuments({a, c}) -> {a}        (distinct ids, `chunk_size` at a time)
//        -> [-] [U b@p2] [D c@p3] [U a'@p4]               (an earlier duplicate of a later id
//                                                         is superseded: acked, never written)
//
// Found -> kUpsert with the document read now; not found (deleted, or no longer matched by
// the query) -> kDelete. Every re-read happens after the change that caused it was committed,
// so the document written is at least as new as that change. Positions are kept, so a source
// position is checkpointed only once the re-read documents before it are acknowledged: killed
// in the middle of a fan-out, the pipeline resumes from the last acknowledged position and
// re-reads the rest. Memory stays bounded by the poll page: ids are never collected beyond it.
//
// Nothing here names a connector: any source whose changes can only say "this id changed"
// (a related table's row, a log message holding one table's row) uses it as is.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "pipeline/event.h"
#include "pipeline/status.h"

namespace searchsync {

// Reads the current documents of distinct ids: Source::ReadDocuments.
using DocumentReader = std::function<Result<std::vector<Event>>(std::span<const std::string> ids)>;

struct RefetchTotals {
  uint64_t requested = 0;   // kRefetch events seen
  uint64_t found = 0;       // resolved to an upsert
  uint64_t gone = 0;        // resolved to a delete
  uint64_t duplicates = 0;  // superseded by a later kRefetch of the same id in the same page
  uint64_t reads = 0;       // ReadDocuments calls
};

// Resolves every kRefetch event of `events` in place: kUpsert with the document read, or
// kDelete. Of several kRefetch events with one id, only the last is read; the earlier ones
// are marked in `superseded` (same indexes as `events`): the caller acks their positions
// without writing them.
// On error nothing is changed (events stay kRefetch) and the caller retries the whole page.
// REQUIRES: chunk_size > 0.
Status ResolveRefetches(const DocumentReader& read, std::vector<Event>& events, size_t chunk_size,
                        std::vector<bool>& superseded, RefetchTotals& totals);

}  // namespace searchsync
