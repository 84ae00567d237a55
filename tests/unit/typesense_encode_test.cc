#include "sinks/typesense_encode.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sinks/typesense_http_result.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

Event Upsert(std::string id, Document document) {
  return Event{.op = Op::kUpsert, .id = std::move(id), .document = std::move(document)};
}

Event Delete(std::string id) { return Event{.op = Op::kDelete, .id = std::move(id)}; }

Batch MakeBatch(std::vector<Event> events) {
  Batch batch;
  batch.events = std::move(events);
  for (const Event& event : batch.events) batch.byte_size += event.ByteSize();
  return batch;
}

// The ids the product promises to delete correctly, and how the filter syntax treats them.
struct TrickyId {
  std::string id;
  bool fits_filter;
  std::string percent_encoded;
};

size_t CountOf(std::string_view text, std::string_view part) {
  size_t count = 0;
  for (size_t pos = text.find(part); pos != std::string_view::npos;
       pos = text.find(part, pos + 1)) {
    ++count;
  }
  return count;
}

const std::vector<TrickyId>& TrickyIds() {
  static const std::vector<TrickyId> kIds = {
      {"a,b", true, "a%2Cb"},
      {"x y", true, "x%20y"},
      {"ü-1", true, "%C3%BC-1"},
      {"(a)", true, "%28a%29"},
      {"&&", true, "%26%26"},
      {"50%", true, "50%25"},
      {"+1", true, "%2B1"},
      {"a/b?c#d", true, "a%2Fb%3Fc%23d"},
      {"a\\b", true, "a%5Cb"},
      {"plain-id_1.2~3", true, "plain-id_1.2~3"},
      {"tick`", false, "tick%60"},
      {"`", false, "%60"},
      {"*", false, "%2A"},
      {"ends\\", false, "ends%5C"},
      {" lead", false, "%20lead"},
      {"trail ", false, "trail%20"},
      {"", false, ""},
  };
  return kIds;
}

}  // namespace

// ---- Import body ---------------------------------------------------------------------------

TEST_CASE("EncodeUpserts writes one line per upsert, id first, and maps lines to events",
          "[typesense-encode]") {
  const Batch batch = MakeBatch({
      Upsert("p1", {{"name", R"("Shoe")"}, {"price", "12.5"}}),
      Delete("p2"),
      Upsert("p3", {{"tags", R"(["a","b"])"}, {"meta", R"({"k":null})"}}),
  });
  const ImportBody body = EncodeUpserts(batch);
  CHECK(body.jsonl ==
        "{\"id\":\"p1\",\"name\":\"Shoe\",\"price\":12.5}\n"
        "{\"id\":\"p3\",\"tags\":[\"a\",\"b\"],\"meta\":{\"k\":null}}");
  CHECK(body.line_events == std::vector<size_t>{0, 2});
}

TEST_CASE("EncodeUpserts documents, table-driven", "[typesense-encode]") {
  struct Case {
    std::string name;
    std::string id;
    Document document;
    std::string line;
  };
  const std::vector<Case> cases = {
      {"empty document", "1", {}, R"({"id":"1"})"},
      {"a field named id is skipped", "real", {{"id", "7"}, {"n", "1"}}, R"({"id":"real","n":1})"},
      {"id is JSON-escaped", "a\"b\\c", {}, R"({"id":"a\"b\\c"})"},
      {"non-ASCII id passes through", "ü-1", {}, "{\"id\":\"ü-1\"}"},
      {"field names are escaped", "1", {{"we\"ird", "true"}}, R"({"id":"1","we\"ird":true})"},
      {"raw line breaks in values become spaces",
       "1",
       {{"o", "{\n\"a\":\r\n1}"}},
       R"({"id":"1","o":{ "a":  1}})"},
      {"escaped line breaks inside strings stay",
       "1",
       {{"s", R"("x\ny")"}},
       R"({"id":"1","s":"x\ny"})"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const ImportBody body = EncodeUpserts(MakeBatch({Upsert(c.id, c.document)}));
    CHECK(body.jsonl == c.line);
    CHECK(body.line_events == std::vector<size_t>{0});
  }
}

TEST_CASE("EncodeUpserts of a batch without upserts is empty", "[typesense-encode]") {
  const ImportBody body = EncodeUpserts(MakeBatch({Delete("a"), Delete("b")}));
  CHECK(body.empty());
  CHECK(body.jsonl.empty());
}

// ---- Import response -----------------------------------------------------------------------

TEST_CASE("ParseImportResponse maps failure lines to rejections, table-driven",
          "[typesense-encode]") {
  struct Case {
    std::string name;
    std::string body;
    std::vector<size_t> line_events;
    std::vector<Rejection> rejected;
  };
  const std::vector<Case> cases = {
      {"all succeed", "{\"success\":true}\n{\"success\":true}", {0, 1}, {}},
      {"v28+ failure line",
       "{\"success\":true}\n"
       R"({"code":400,"error":"Field `price` must be a float.","success":false})",
       {3, 5},
       {{5, 400, "Field `price` must be a float."}}},
      {"v27 failure line with document",
       R"({"code":400,"document":"{\"id\":\"a\"}","error":"Bad JSON: x","success":false})"
       "\n{\"success\":true}",
       {0, 1},
       {{0, 400, "Bad JSON: x"}}},
      {"failure line with id (return_id)",
       R"({"code":409,"error":"A document with id a already exists.","id":"a","success":false})",
       {2},
       {{2, 409, "A document with id a already exists."}}},
      {"success lines with id and document",
       R"({"id":"a","success":true})"
       "\n"
       R"({"document":{"id":"b"},"success":true})",
       {0, 1},
       {}},
      {"stray blank lines and CRLF",
       "\n{\"success\":true}\r\n\n"
       R"({"code":400,"error":"e","success":false})"
       "\n\n",
       {0, 1},
       {{1, 400, "e"}}},
      {"nothing sent, empty body", "", {}, {}},
      {"failure line without code or error",
       "{\"success\":true}\n{\"success\":false}",
       {0, 1},
       {{1, 0,
         "typesense refused the document without giving a reason (result line: "
         "{\"success\":false})"}}},
      {"failure line with a code but an empty error",
       R"({"code":400,"error":" ","success":false})",
       {0},
       {{0, 400,
         R"(typesense refused the document without giving a reason (result line: )"
         R"({"code":400,"error":" ","success":false}))"}}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Result<WriteReport> report = ParseImportResponse(c.body, c.line_events);
    REQUIRE(report.ok());
    CHECK(report->retryable.empty());
    REQUIRE(report->rejected.size() == c.rejected.size());
    for (size_t rejection_idx = 0; rejection_idx < c.rejected.size(); ++rejection_idx) {
      CHECK(report->rejected[rejection_idx].event_index == c.rejected[rejection_idx].event_index);
      CHECK(report->rejected[rejection_idx].code == c.rejected[rejection_idx].code);
      CHECK(report->rejected[rejection_idx].error == c.rejected[rejection_idx].error);
    }
  }
}

TEST_CASE("ParseImportResponse asks for a retry when the server, not a document, failed",
          "[typesense-encode]") {
  struct Case {
    std::string name;
    std::string body;
    size_t lines_sent;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"fewer result lines", "{\"success\":true}", 2, "1 result lines for 2 documents"},
      {"more result lines", "{\"success\":true}\n{\"success\":true}", 1, "more result lines"},
      {"empty body for sent lines", "", 1, "0 result lines for 1 documents"},
      {"line not JSON", "<html>bad gateway</html>", 1, "not JSON"},
      {"line not an object", "[1,2]", 1, "not a JSON object"},
      {"line without success", R"({"code":400})", 1, "success"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<size_t> line_events(c.lines_sent);
    for (size_t line_idx = 0; line_idx < c.lines_sent; ++line_idx) line_events[line_idx] = line_idx;
    const Result<WriteReport> report = ParseImportResponse(c.body, line_events);
    REQUIRE_FALSE(report.ok());
    CHECK(report.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(report.status().message(), Catch::Contains(c.message_part));
  }
}

TEST_CASE("ParseImportResponse lists lines the server failed (429, 5xx) as retryable",
          "[typesense-encode]") {
  const std::string body =
      "{\"success\":true}\n"
      R"({"code":500,"error":"Could not write to on-disk storage.","success":false})"
      "\n"
      R"({"code":400,"error":"Field `price` must be a float.","success":false})"
      "\n"
      R"({"code":429,"error":"slow down","success":false})"
      "\n"
      R"({"code":503,"error":"Not Ready","success":false})";
  const std::vector<size_t> line_events = {0, 2, 4, 6, 8};
  const Result<WriteReport> report = ParseImportResponse(body, line_events);
  REQUIRE(report.ok());
  REQUIRE(report->rejected.size() == 1);
  CHECK(report->rejected[0].event_index == 4);
  REQUIRE(report->retryable.size() == 3);
  CHECK(report->retryable[0].event_index == 2);
  CHECK(report->retryable[0].Reason() == "HTTP 500: Could not write to on-disk storage.");
  CHECK(report->retryable[1].event_index == 6);
  CHECK(report->retryable[1].code == 429);
  CHECK(report->retryable[2].event_index == 8);
  CHECK(report->retryable[2].code == 503);
}

TEST_CASE("Rejection::Reason shows the HTTP code only when there is one", "[typesense-encode]") {
  CHECK(Rejection{.code = 400, .error = "Field `v` must be an int32."}.Reason() ==
        "HTTP 400: Field `v` must be an int32.");
  CHECK(Rejection{.code = 0, .error = "refused without a reason"}.Reason() ==
        "refused without a reason");
}

// ---- Deletes -------------------------------------------------------------------------------

TEST_CASE("PercentEncode keeps only unreserved characters, table-driven", "[typesense-encode]") {
  for (const TrickyId& tricky : TrickyIds()) {
    INFO("id: [" << tricky.id << "]");
    CHECK(PercentEncode(tricky.id) == tricky.percent_encoded);
  }
  CHECK(PercentEncode("products_20261121T051500Z") == "products_20261121T051500Z");
  CHECK(PercentEncode("id:[`a`]") == "id%3A%5B%60a%60%5D");
}

TEST_CASE("IdFitsDeleteFilter routes what the filter syntax cannot express, table-driven",
          "[typesense-encode]") {
  for (const TrickyId& tricky : TrickyIds()) {
    INFO("id: [" << tricky.id << "]");
    CHECK(IdFitsDeleteFilter(tricky.id) == tricky.fits_filter);
  }
  CHECK(IdFitsDeleteFilter(" * ") == false);
  CHECK(IdFitsDeleteFilter("**") == true);
  CHECK(IdFitsDeleteFilter("a\\`b") == false);
}

TEST_CASE("IdListFilter quotes every id in backticks", "[typesense-encode]") {
  const std::vector<std::string_view> ids = {"a,b", "x y", "(a)", "&&", "ü-1"};
  CHECK(IdListFilter(ids) == "id:[`a,b`,`x y`,`(a)`,`&&`,`ü-1`]");
}

TEST_CASE("PlanDeletes splits tricky ids between filters and single deletes",
          "[typesense-encode]") {
  std::vector<std::string_view> ids;
  for (const TrickyId& tricky : TrickyIds()) ids.push_back(tricky.id);
  const DeletePlan plan = PlanDeletes(ids);

  std::vector<std::string_view> fitting;
  std::vector<std::string> single;
  for (const TrickyId& tricky : TrickyIds()) {
    if (tricky.fits_filter) {
      fitting.push_back(tricky.id);
    } else {
      single.push_back(tricky.id);
    }
  }
  REQUIRE(plan.encoded_filters.size() == 1);
  CHECK(plan.encoded_filters[0] == PercentEncode(IdListFilter(fitting)));
  CHECK(plan.single_ids == single);
}

TEST_CASE("PlanDeletes of a batch takes only deletes, each id once", "[typesense-encode]") {
  const DeletePlan plan =
      PlanDeletes(MakeBatch({Delete("a"), Upsert("b", {}), Delete("*"), Delete("a")}));
  CHECK(plan.encoded_filters == std::vector<std::string>{PercentEncode("id:[`a`]")});
  CHECK(plan.single_ids == std::vector<std::string>{"*"});
}

TEST_CASE("PlanDeletes chunks by id count", "[typesense-encode]") {
  std::vector<std::string> storage;
  for (size_t id_idx = 0; id_idx < 2 * kMaxIdsPerDeleteFilter + 1; ++id_idx) {
    storage.push_back(std::to_string(id_idx));
  }
  const std::vector<std::string_view> ids(storage.begin(), storage.end());
  const DeletePlan plan = PlanDeletes(ids);
  REQUIRE(plan.encoded_filters.size() == 3);
  CHECK(plan.encoded_filters[2] ==
        PercentEncode("id:[`" + std::to_string(2 * kMaxIdsPerDeleteFilter) + "`]"));
  CHECK(plan.single_ids.empty());
  const std::vector<std::string_view> first(ids.begin(), ids.begin() + kMaxIdsPerDeleteFilter);
  CHECK(plan.encoded_filters[0] == PercentEncode(IdListFilter(first)));
}

TEST_CASE("PlanDeletes chunks by encoded size", "[typesense-encode]") {
  // Each id encodes to about 300 bytes, so 23 fit in 7 KiB.
  std::vector<std::string> storage;
  for (size_t id_idx = 0; id_idx < 50; ++id_idx) {
    storage.push_back("#" + std::string(96, ' ') + std::to_string(100 + id_idx));
  }
  const std::vector<std::string_view> ids(storage.begin(), storage.end());
  const DeletePlan plan = PlanDeletes(ids);
  REQUIRE(plan.encoded_filters.size() == 3);
  size_t ids_covered = 0;
  for (const std::string& filter : plan.encoded_filters) {
    CHECK(filter.size() <= kMaxDeleteFilterBytes);
    ids_covered += CountOf(filter, "%2C") + 1;  // ids are separated by encoded commas
  }
  CHECK(ids_covered == ids.size());

  // One id larger than the limit still gets a request of its own.
  const std::string huge(kMaxDeleteFilterBytes, '~');
  const std::vector<std::string_view> huge_ids = {"a", huge, "b"};
  const DeletePlan huge_plan = PlanDeletes(huge_ids);
  CHECK(huge_plan.encoded_filters.size() == 3);
}

TEST_CASE("Delete targets percent-encode collection and id", "[typesense-encode]") {
  CHECK(FilterDeleteTarget("products", "id%3A%5B%60a%60%5D") ==
        "/collections/products/documents?filter_by=id%3A%5B%60a%60%5D");
  CHECK(DocumentDeleteTarget("my coll", "tick`") ==
        "/collections/my%20coll/documents/tick%60?ignore_not_found=true");
  CHECK(DocumentDeleteTarget("c", "*") == "/collections/c/documents/%2A?ignore_not_found=true");
  CHECK(DocumentDeleteTarget("c", " lead") ==
        "/collections/c/documents/%20lead?ignore_not_found=true");
}

// ---- Names ---------------------------------------------------------------------------------

TEST_CASE("TimestampedCollectionName uses UTC basic ISO time", "[typesense-encode]") {
  // 2026-11-21T05:15:00Z
  const std::chrono::system_clock::time_point when{std::chrono::seconds{1795238100}};
  CHECK(TimestampedCollectionName("products", when) == "products_20261121T051500Z");
}

TEST_CASE("SchemaWithName inserts the name, table-driven", "[typesense-encode]") {
  struct Case {
    std::string schema;
    std::string body;  // empty: kInvalidArgument expected
  };
  const std::vector<Case> cases = {
      {R"({"fields":[{"name":"n","type":"string"}]})",
       R"({"name":"p_1","fields":[{"name":"n","type":"string"}]})"},
      {"  {\n  \"fields\": []\n}\n", "{\"name\":\"p_1\",\"fields\": []\n}"},
      {"{}", R"({"name":"p_1"})"},
      {"{ }", R"({"name":"p_1"})"},
      {"", ""},
      {"[1]", ""},
      {"{not json", ""},
      {R"({"name":"x","fields":[]})", ""},
  };
  for (const Case& c : cases) {
    INFO("schema: " << c.schema);
    const Result<std::string> body = SchemaWithName(c.schema, "p_1");
    if (c.body.empty()) {
      REQUIRE_FALSE(body.ok());
      CHECK(body.status().code() == StatusCode::kInvalidArgument);
    } else {
      REQUIRE(body.ok());
      CHECK(*body == c.body);
    }
  }
}

// ---- HTTP classification -------------------------------------------------------------------

TEST_CASE("ClassifyHttpResult maps HTTP outcomes to one action each, table-driven",
          "[typesense-encode]") {
  struct Case {
    std::string transport_error;
    long status;
    std::string body;
    StatusCode code;
    std::string message;
  };
  const std::string ctx = "typesense POST /collections/products/documents/import";
  const std::vector<Case> cases = {
      {"", 200, "{}", StatusCode::kOk, ""},
      {"", 201, "{}", StatusCode::kOk, ""},
      {"Connection refused", 0, "", StatusCode::kUnavailable, ctx + ": Connection refused"},
      {"", 503, R"({ "message": "Not Ready or Lagging"})", StatusCode::kUnavailable,
       ctx + ": HTTP 503: Not Ready or Lagging"},
      {"", 429, R"({ "message": "Rate limit exceeded or blocked"})", StatusCode::kUnavailable,
       ctx + ": HTTP 429: Rate limit exceeded or blocked"},
      {"", 500, "Could not find a leader.", StatusCode::kUnavailable,
       ctx + ": HTTP 500: Could not find a leader."},
      {"", 502, "<html>Bad Gateway</html>", StatusCode::kUnavailable,
       ctx + ": HTTP 502: <html>Bad Gateway</html>"},
      {"", 422, R"({"message": "Rejecting write: running out of resource type: OUT_OF_DISK"})",
       StatusCode::kUnavailable,
       ctx + ": HTTP 422: Rejecting write: running out of resource type: OUT_OF_DISK"},
      {"", 401, R"({"message": "Forbidden - a valid `x-typesense-api-key` header must be sent."})",
       StatusCode::kFailedPrecondition,
       ctx + ": HTTP 401: the Typesense API key was refused (check typesense.api_key)"},
      {"", 403, "", StatusCode::kFailedPrecondition,
       ctx + ": HTTP 403: the Typesense API key was refused (check typesense.api_key)"},
      {"", 404, R"({"message": "Collection not found"})", StatusCode::kFailedPrecondition,
       ctx + ": HTTP 404: Collection not found (the collection or alias does not exist)"},
      {"", 400, R"({"message": "Parameter `action` must be a create|update|upsert."})",
       StatusCode::kInvalidArgument,
       ctx + ": HTTP 400: Parameter `action` must be a create|update|upsert."},
      {"", 400, R"({"message": "Could not find a document with id: a"b"})",
       StatusCode::kInvalidArgument, ctx + ": HTTP 400: Could not find a document with id: a\"b"},
      {"", 409, R"({"message":"A document with id x already exists."})",
       StatusCode::kInvalidArgument, ctx + ": HTTP 409: A document with id x already exists."},
      {"", 400, "", StatusCode::kInvalidArgument, ctx + ": HTTP 400"},
      {"", 413, "<html><head><title>413 Request Entity Too Large</title></head></html>",
       StatusCode::kInvalidArgument,
       ctx + ": HTTP 413: <html><head><title>413 Request Entity Too Large</title></head></html>"},
  };
  for (const Case& c : cases) {
    INFO("HTTP " << c.status << " " << c.body);
    const Status status = ClassifyHttpResult(ctx, c.transport_error, c.status, c.body);
    CHECK(status.code() == c.code);
    CHECK(status.message() == c.message);
  }
}

TEST_CASE("ClassifyHttpResult retries a redirect and names the node it points at",
          "[typesense-encode]") {
  const std::string ctx = "typesense POST /collections/products/documents/import";
  struct Case {
    long status;
    std::string redirect_to;
    std::string message;
  };
  const std::vector<Case> cases = {
      {301, "https://search.example.com/collections/products/documents/import?action=upsert",
       ctx + ": HTTP 301: redirected to https://search.example.com (searchsync does not follow "
             "redirects: set typesense.nodes to https://search.example.com)"},
      {308, "http://user:pw@10.0.0.7:8108/health",
       ctx + ": HTTP 308: redirected to http://10.0.0.7:8108 (searchsync does not follow "
             "redirects: set typesense.nodes to http://10.0.0.7:8108)"},
      {302, "",
       ctx + ": HTTP 302: a redirect without a usable Location (typesense.nodes must name the "
             "Typesense server itself, not a redirecting proxy)"},
  };
  for (const Case& c : cases) {
    INFO("HTTP " << c.status << " to " << c.redirect_to);
    const Status status =
        ClassifyHttpResult(ctx, "", c.status, "<html>Moved</html>", c.redirect_to);
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK(status.message() == c.message);
  }
}

TEST_CASE("ServerMessage cuts long bodies", "[typesense-encode]") {
  const std::string message = ServerMessage(std::string(5000, 'x'));
  CHECK(message.size() < 400);
  CHECK_THAT(message, Catch::EndsWith("..."));
}

}  // namespace searchsync
