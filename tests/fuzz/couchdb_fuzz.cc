// CouchDB answers: each input is read as a continuous-feed line, a `_changes` page and an
// `_all_docs` page. Whatever is accepted yields events with an id, and when the answer was valid
// JSON, documents of valid JSON values and a valid import line.
#include <string>

#include "sinks/typesense_encode.h"
#include "sources/couchdb.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {
namespace {

void CheckEvent(const Event& event, bool valid_input) {
  Check(!event.id.empty(), "a CouchDB event has an id");
  if (!valid_input || event.op != Op::kUpsert) return;
  for (const Field& field : event.document) {
    Check(IsJson(field.json), "a CouchDB document's fields are valid JSON");
  }
  Batch batch;
  batch.events.push_back(event);
  const ImportBody body = EncodeUpserts(batch);
  Check(IsJson(body.jsonl), "a CouchDB document's import line is valid JSON");
}

}  // namespace

void FuzzCouchdb(std::string_view input) {
  static const std::string kKeep[] = {"_rev"};
  const bool valid = IsJson(input);

  if (Result<CouchdbLine> line = ParseCouchdbLine(input, kKeep); line.ok()) {
    if (line->kind == CouchdbLine::Kind::kChange) CheckEvent(line->event, valid);
    if (line->kind == CouchdbLine::Kind::kEnd) {
      (void)CouchdbSinceParam(line->last_seq);
    }
  }
  if (Result<CouchdbPage> page = ParseCouchdbPage(input, kKeep); page.ok()) {
    Check(page->events.size() <= page->rows, "a page has no more events than rows");
    for (const Event& event : page->events) CheckEvent(event, valid);
    (void)CouchdbSinceParam(page->last_seq);
  }
  if (Result<CouchdbAllDocsPage> page = ParseCouchdbAllDocsPage(input); page.ok()) {
    Check(page->events.size() <= page->rows, "an _all_docs page has no more events than rows");
    for (const Event& event : page->events) CheckEvent(event, valid);
  }
  (void)CouchdbSinceParam(input);
  (void)RedactUrl(input);
}

}  // namespace searchsync::fuzz
