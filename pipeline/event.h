#pragma once
// The unit of work that flows from a source, through transforms, to a sink.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace searchsync {

// One top-level field of a document. `json` is the field's value already encoded as JSON text
// (`42`, `"text"`, `[1,2]`, `{"a":null}`), so transforms rename and drop without re-encoding and
// the sink writes the document by concatenation.
struct Field {
  std::string name;
  std::string json;
};
using Document = std::vector<Field>;

// A source position, opaque to everything but the source that made it (Postgres: the
// (updated_at, primary key) cursor; Kafka: offsets; CouchDB: the server's `seq`, byte for byte).
// Empty means "from the beginning".
struct Checkpoint {
  std::string token;
  bool empty() const { return token.empty(); }
  bool operator==(const Checkpoint&) const = default;
};

// kRefetch: "the document with this id may have changed" (e.g. a row of a related table did),
// without its content. The pipeline re-reads such ids from the source of truth in chunks
// (Source::ReadDocuments, see pipeline/refetch.h) and turns each into kUpsert (found) or
// kDelete (gone) before anything else sees it: transforms, batcher and sinks never get one.
enum class Op : uint8_t { kUpsert, kDelete, kRefetch };

struct Event {
  Op op = Op::kUpsert;
  // The Typesense document id. Never empty. The sink writes it as the document's "id"; a field
  // named "id" in `document` is ignored.
  std::string id;
  Document document;  // upserts only: the complete document (Typesense upsert replaces it whole)
  // The source position just after this event: once this event and every event before it are
  // acknowledged, the pipeline may checkpoint `position`.
  Checkpoint position;
  // Set by a source for input it cannot turn into a change (e.g. a malformed message): the
  // pipeline stores the event in the dead-letter store with this reason, counts it as handled
  // and never sends it to the sink. `id` and `document` then describe the input (where it came
  // from, its raw text) for whoever reads the dead letter.
  std::string dead_letter_reason;

  // Approximate memory held by this event; what queue and batch byte limits count.
  size_t ByteSize() const {
    size_t bytes = sizeof(Event) + id.size() + position.token.size();
    for (const Field& field : document)
      bytes += sizeof(Field) + field.name.size() + field.json.size();
    return bytes;
  }
};

// What one Sink::Write call sends: at most one event per id (the batcher keeps the last change).
struct Batch {
  std::vector<Event> events;
  size_t byte_size = 0;
  // Upserts only, written by a full read (reindex, backfill) beside the live stream: each
  // document is created only where the id is not there yet (Typesense action=create), and an
  // id that is there already counts as stored (WriteReport::already_present). So where a full
  // read and a live change meet, the live change wins, whichever arrives first.
  bool create_only = false;
  size_t size() const { return events.size(); }
  bool empty() const { return events.empty(); }
};

// A document the sink refused for good (e.g. a schema mismatch); it goes to the dead-letter store.
struct Rejection {
  size_t event_index = 0;  // into Batch::events
  int code = 0;            // Typesense's per-line or HTTP code, e.g. 400; 0 when none was given
  std::string error;

  // What the dead-letter store keeps: "HTTP 400: <error>", or the error alone without a code.
  std::string Reason() const {
    return code > 0 ? "HTTP " + std::to_string(code) + ": " + error : error;
  }
};

// The outcome of a Write that reached the sink: everything not listed in `rejected` or
// `retryable` is stored.
struct WriteReport {
  std::vector<Rejection> rejected;
  // Documents the sink could not store this time for a reason that may pass (Typesense: a
  // per-line 429 or 5xx). The pipeline writes them again; see PipelineRunner::WriteWithRetry.
  std::vector<Rejection> retryable;
  size_t already_present = 0;  // create_only batches: documents left as they were
};

}  // namespace searchsync
