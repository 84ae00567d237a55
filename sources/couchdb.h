#pragma once
// The `couchdb` source: a CouchDB (or PouchDB Server) database read through its `_changes` feed.
//
// Reading:
//   - Catch-up: `_changes?feed=normal&include_docs=true&since=<checkpoint>&limit=<page_size>`,
//     one page per Poll, until a page comes back empty. An empty checkpoint reads from `since=0`,
//     which is a full read: the feed holds the latest revision of every document.
//   - Caught up, `feed: continuous` (the default): a streamed
//     `_changes?feed=continuous&include_docs=true&heartbeat=<ms>&since=<position>` read one line
//     at a time by a reader thread into a buffer of at most page_size changes that Poll drains.
//     Heartbeats (empty lines) keep the connection alive; when nothing, not even a heartbeat,
//     arrives for `timeout`, the connection is dropped. A dropped or failed stream is reported
//     to the pipeline as kUnavailable (it backs off) and the next Poll catches up again with
//     normal pages from the last position handed out.
//   - Caught up, `feed: longpoll`: each Poll is one `feed=longpoll` request that the server holds
//     until a change arrives or `heartbeat` passes.
//   - `run --once` stops at the first empty page, i.e. once `last_seq` is reached.
//   - `selector` (a Mango selector) is POSTed with `filter=_selector`.
//   - OpenFullRead(), for reindex: `_all_docs?include_docs=true` in pages by `startkey`, upserts
//     only (with a selector: `_changes` from since=0 without the deletes). A first start needs
//     no full read beside the feed (BackfillOnFirstStart() is false): `_changes` from since=0
//     already gives every document.
//
// Events: a change with `deleted: true` is a kDelete of its `_id`; a change of a `_design/`
// document is skipped; any other change is a kUpsert whose Event::id is `_id` and whose document
// holds every other top-level key of the document as its raw JSON (nested objects and arrays
// included), except CouchDB's metadata: `_rev`, `_attachments`, `_deleted`, `_conflicts`,
// `_deleted_conflicts`, `_revisions`, `_revs_info` and `_local_seq`. `keep_metadata` keeps `_rev`
// and `_attachments` (the attachment stubs) so that transforms can map them.
//
// The checkpoint is the change's `seq` exactly as the server sent it, as JSON text: a string
// (`"13-g1AAAA..."`, CouchDB 2 and later) or a number (`42`, PouchDB and CouchDB 1). It is never
// compared or computed with; it is sent back as `since` (a string's value, anything else as its
// JSON text). Changes the server replays after a failover are harmless: upserts are idempotent.
//
// Credentials come from username/password (basic auth) or from the URL's user info; neither
// appears in logs or errors (RedactUrl,
// RedactSecrets in pipeline/url.h).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/event.h"
#include "pipeline/source.h"
#include "pipeline/status.h"

namespace searchsync {

// The source's key table, for the registry and its section (its defaults rendered on first
// use; callable from any static initialiser).
std::span<const KeySpec> CouchdbKeys();

// Reads CouchdbOptions from `section`; nullptr when they had errors.
SourceFactory ParseCouchdbSource(const Section& section, std::string_view pipeline);

enum class CouchdbFeed { kContinuous, kLongpoll };

struct CouchdbOptions {
  std::string url;  // http(s)://[user:password@]host:port, without the database
  std::string database;
  std::string username;  // empty: none (or the URL's user info)
  Secret password;
  CouchdbFeed feed = CouchdbFeed::kContinuous;
  Millis heartbeat{10'000};
  Millis timeout{30'000};     // a connection silent this long is dropped
  std::string selector_json;  // a Mango selector as a JSON object; empty: every document
  size_t page_size = 1'000;   // changes per catch-up request; buffered changes when streaming
  std::string ca_file;        // PEM bundle for https; empty: the system's
  // Metadata kept in documents (of "_rev", "_attachments"); the rest of it is always dropped.
  std::vector<std::string> keep_metadata;
  std::string log_component = "source=couchdb";
};

// A live source for `options`; connects on first use. Source thread only.
// REQUIRES: options are valid (as ParseCouchdbSource checks them).
std::unique_ptr<Source> MakeCouchdbSource(CouchdbOptions options);

// ---- Pure helpers, exposed for tests ------------------------------------------------------

// One line of a continuous feed.
struct CouchdbLine {
  enum class Kind {
    kHeartbeat,  // an empty (or whitespace) line
    kChange,     // `event` holds the change
    kSkipped,    // a change that makes no event (a design document, a change without its doc)
    kEnd,        // the closing {"last_seq":...,"pending":N}; `last_seq` holds it
  };
  Kind kind = Kind::kHeartbeat;
  Event event;
  std::string last_seq;
};
// kUnavailable when the line is not a change row or the closing line.
// `keep` names metadata kept in documents (see CouchdbOptions::keep_metadata).
Result<CouchdbLine> ParseCouchdbLine(std::string_view line, std::span<const std::string> keep = {});

// One answer of a normal or longpoll feed: {"results":[...],"last_seq":...,"pending":N}.
struct CouchdbPage {
  std::vector<Event> events;  // the rows that make events, in feed order
  size_t rows = 0;            // every row, skipped ones included
  std::string last_seq;       // raw JSON; empty when absent
  std::optional<int64_t> pending;
};
Result<CouchdbPage> ParseCouchdbPage(std::string_view body, std::span<const std::string> keep = {});

// One answer of `_all_docs?include_docs=true`: {"total_rows":N,"offset":K,"rows":[...]}.
struct CouchdbAllDocsPage {
  // An upsert per document row, design documents left out, in server order; each position is
  // the row's `key` as sent (raw JSON).
  std::vector<Event> events;
  size_t rows = 0;       // every row, design documents included
  std::string last_key;  // raw JSON of the last row's key; empty when there were no rows
  std::optional<int64_t> total_rows;
};
Result<CouchdbAllDocsPage> ParseCouchdbAllDocsPage(std::string_view body,
                                                   std::span<const std::string> keep = {});

// The `since` query value for a checkpoint token, percent-encoded: "0" for the empty token, a
// JSON string's value, or any other JSON value's text.
std::string CouchdbSinceParam(std::string_view token);

}  // namespace searchsync
