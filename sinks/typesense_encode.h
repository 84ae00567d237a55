#pragma once
// Pure functions between a Batch and Typesense's HTTP API: the JSONL import body, the per-line
// import results, delete requests by id, percent-encoding, collection names and schemas
// (HTTP results become a Status in sinks/typesense_http_result.h).
// No I/O, no clock, no globals; every function is safe to call from any thread.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/event.h"
#include "pipeline/status.h"
#include "pipeline/url.h"  // PercentEncode

namespace searchsync {

// ---- Import (POST /collections/{c}/documents/import?action=upsert) -------------------------

// The JSONL body of one import call. Line `line` (0-based) holds the document of
// `batch.events[line_events[line]]`; lines are separated by '\n', with no trailing newline.
struct ImportBody {
  std::string jsonl;
  std::vector<size_t> line_events;
  bool empty() const { return line_events.empty(); }
};

// Encodes every kUpsert event of `batch` as one line `{"id":"<id>",<fields...>}`, in batch
// order. A document field named "id" is skipped: Event::id wins. Field values are copied as
// they are (already JSON); a raw CR or LF in them (JSON whitespace) becomes a space so that
// one document stays one line.
ImportBody EncodeUpserts(const Batch& batch);

// Reads the import response: one result line per line sent, in order; blank lines are skipped.
// Success: `rejected` lists each failure line `{"code":400,"error":"...","success":false}` as
// a Rejection of the event its line came from (`line_events`, see ImportBody); a failure line
// with no error text gets a reason that quotes it. Failure lines with code 429 or >= 500 (the
// server, not necessarily the document, failed) go to `retryable` instead.
// kUnavailable (retry the whole batch; upserts are idempotent) when the number of result lines
// differs from `line_events.size()` or when a line is not a result object.
Result<WriteReport> ParseImportResponse(std::string_view body, std::span<const size_t> line_events);

// ---- Deletes by id -------------------------------------------------------------------------

// Limits of one DELETE /collections/{c}/documents?filter_by=id:[...] request, which keep its
// request URI under 8 KiB: Typesense itself takes far longer ones, but 8 KiB is the default
// limit of common reverse proxies (nginx's large_client_header_buffers) and of cpp-httplib,
// and a 414 there would fail the deletes.
inline constexpr size_t kMaxIdsPerDeleteFilter = 250;
inline constexpr size_t kMaxDeleteFilterBytes = 7 * 1024;  // of the percent-encoded value

// True when `filter_by=id:[`id`]` matches exactly this id. Typesense's filter syntax cannot
// express an id that is empty, contains a backtick, ends with a backslash, begins or ends with
// a space, or is exactly "*" (which would match every document).
bool IdFitsDeleteFilter(std::string_view id);

// How to delete a set of ids.
struct DeletePlan {
  // Values for the `filter_by` query parameter, already percent-encoded: `id:[`a`,`b`]`, each
  // with at most kMaxIdsPerDeleteFilter ids and about kMaxDeleteFilterBytes (a single longer
  // id gets a request of its own).
  std::vector<std::string> encoded_filters;
  // Ids to delete one by one with DocumentDeleteTarget, in input order.
  std::vector<std::string> single_ids;
};

// Plans the deletion of `ids` (each id once; order kept within each kind).
DeletePlan PlanDeletes(std::span<const std::string_view> ids);
// The same for every kDelete event of `batch`.
DeletePlan PlanDeletes(const Batch& batch);

// The filter value for `ids` before percent-encoding, e.g. id:[`a,b`,`x y`].
// REQUIRES: IdFitsDeleteFilter(id) for each id.
std::string IdListFilter(std::span<const std::string_view> ids);

// `/collections/{c}/documents?filter_by=<encoded_filter>` (request target for DELETE).
std::string FilterDeleteTarget(std::string_view collection, std::string_view encoded_filter);
// `/collections/{c}/documents/import?action=<action>` (request target for POST).
std::string ImportTarget(std::string_view collection, std::string_view action);
// `/collections/{c}/documents/{id}?ignore_not_found=true` (request target for DELETE).
std::string DocumentDeleteTarget(std::string_view collection, std::string_view id);

// ---- Names and URLs ------------------------------------------------------------------------

// The concrete collection behind an alias: "<alias>_<UTC time as 20261121T051500Z>".
std::string TimestampedCollectionName(std::string_view alias,
                                      std::chrono::system_clock::time_point now);
// The collection a first start creates for an alias that does not exist yet: the timestamped
// name of the Unix epoch, "<alias>_19700101T000000Z", the same on every machine.
std::string FirstCollectionName(std::string_view alias);

// The create-collection body: `schema_json` (a JSON object without "name") with
// `"name":"<name>"` inserted as its first key. kInvalidArgument when `schema_json` is empty,
// not a JSON object, or already has a "name".
Result<std::string> SchemaWithName(std::string_view schema_json, std::string_view name);

}  // namespace searchsync
