#include "pipeline/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/app/registry.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr char kFile[] = "pipelines.yaml";

// The registered postgres source as a one-line flow mapping holding the keys a valid postgres
// source needs, as far as its key table declares them; one line, so positions in the configs
// below do not depend on it.
std::string PostgresSource() {
  std::string out = "{ type: postgres";
  for (const SourceRegistration& registration : SourceRegistry()) {
    if (registration.type != "postgres") continue;
    for (const KeySpec& key : registration.keys) {
      if (key.name == "dsn") out += ", dsn: \"postgres://localhost/shop\"";
      if (key.name == "table") out += ", table: products";
      if (key.name == "primary_key") out += ", primary_key: id";
      if (key.name == "updated_at") out += ", updated_at: updated_at";
    }
  }
  return out + " }";
}

std::string WithSource(std::string text) {
  for (size_t at = text.find("SOURCE"); at != std::string::npos; at = text.find("SOURCE")) {
    text.replace(at, 6, PostgresSource());
  }
  return text;
}

// "pipelines.yaml:LINE:COL: " where COL is the 1-based column at which `needle` first occurs on
// 1-based line `line` of `text`.
std::string At(const std::string& text, int line, std::string_view needle) {
  std::istringstream lines(text);
  std::string content;
  for (int at = 0; at < line; ++at) std::getline(lines, content);
  const size_t column = content.find(needle);
  REQUIRE(column != std::string::npos);
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(column + 1) + ": ";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The error lines of a config that must fail.
std::vector<std::string> ErrorsOf(const std::string& text) {
  const Result<Config> config = ParseConfig(text, kFile);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == StatusCode::kInvalidArgument);
  return Lines(config.status().message());
}

Config Parsed(const std::string& text) {
  Result<Config> config = ParseConfig(text, kFile);
  INFO(config.status().message());
  REQUIRE(config.ok());
  return std::move(config).value();
}

const std::string kMinimal = WithSource(R"(typesense:
  nodes: http://127.0.0.1:8108
  api_key: xyz
pipelines:
  - name: products
    source: SOURCE
    sink: { collection: products, schema: { fields: [{ name: title, type: string }] } }
)");

}  // namespace

TEST_CASE("ParseDuration needs units and adds components up", "[config]") {
  const std::vector<std::pair<std::string, std::optional<Millis>>> cases = {
      {"250ms", 250ms}, {"5s", 5s},       {"30m", 30min}, {"24h", 24h},
      {"1h30m", 90min}, {"1.5s", 1500ms}, {"0s", 0ms},    {"2d", 48h},
      {"5", {}},        {"soon", {}},     {"", {}},       {"5 s", {}},
      {"-5s", {}},      {"0.5ms", {}},    {"5sec", {}},   {"1.s", {}},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(ParseDuration(text) == expected);
  }
}

TEST_CASE("ParseSize takes binary and decimal units or a byte count", "[config]") {
  const std::vector<std::pair<std::string, std::optional<uint64_t>>> cases = {
      {"512KiB", 512 * 1024},
      {"5MiB", 5 * 1024 * 1024},
      {"1GiB", uint64_t{1} << 30},
      {"1.5KiB", 1536},
      {"2KB", 2000},
      {"3MB", 3'000'000},
      {"1024", 1024},
      {"0", 0},
      {"5 MiB", {}},
      {"5mib", {}},
      {"lots", {}},
      {"", {}},
      {"-1", {}},
      {"99999999999999999999", {}},
      {"20000000TiB", {}},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    CHECK(ParseSize(text) == expected);
  }
}

TEST_CASE("ExpandEnv replaces ${VAR} and ${VAR:-default}", "[config]") {
  setenv("SEARCHSYNC_TEST_HOST", "db.internal", 1);
  setenv("SEARCHSYNC_TEST_EMPTY", "", 1);
  unsetenv("SEARCHSYNC_TEST_UNSET");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"plain", "plain"},
      {"${SEARCHSYNC_TEST_HOST}", "db.internal"},
      {"postgres://${SEARCHSYNC_TEST_HOST}:5432/x", "postgres://db.internal:5432/x"},
      {"${SEARCHSYNC_TEST_UNSET:-fallback}", "fallback"},
      {"${SEARCHSYNC_TEST_HOST:-fallback}", "db.internal"},
      {"${SEARCHSYNC_TEST_EMPTY:-fallback}", "fallback"},
      {"${SEARCHSYNC_TEST_EMPTY}", ""},
      {"${SEARCHSYNC_TEST_UNSET:-}", ""},
      {"cost: $5, $$HOME", "cost: $5, $$HOME"},
      {"$${SEARCHSYNC_TEST_HOST}", "${SEARCHSYNC_TEST_HOST}"},
      // Defaults nest, and are expanded only when used.
      {"${SEARCHSYNC_TEST_UNSET:-${SEARCHSYNC_TEST_HOST}}", "db.internal"},
      {"${SEARCHSYNC_TEST_UNSET:-${SEARCHSYNC_TEST_EMPTY:-${SEARCHSYNC_TEST_HOST}:1}}/x",
       "db.internal:1/x"},
      {"${SEARCHSYNC_TEST_HOST:-${SEARCHSYNC_TEST_UNSET}}", "db.internal"},
      {"${SEARCHSYNC_TEST_UNSET:-a}b}", "ab}"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    const Result<std::string> expanded = ExpandEnv(text);
    REQUIRE(expanded.ok());
    CHECK(*expanded == expected);
  }
  const std::vector<std::pair<std::string, std::string>> errors = {
      {"${SEARCHSYNC_TEST_UNSET}", "environment variable SEARCHSYNC_TEST_UNSET is not set"},
      {"x${SEARCHSYNC_TEST_HOST", "unterminated ${ (write $${ for a literal ${)"},
      {"${SEARCHSYNC_TEST_UNSET:-${SEARCHSYNC_TEST_HOST}",
       "unterminated ${ (write $${ for a literal ${)"},
      {"${SEARCHSYNC_TEST_EMPTY:-${SEARCHSYNC_TEST_UNSET}}",
       "environment variable SEARCHSYNC_TEST_UNSET is not set"},
      {"${not a name}",
       "a ${...} reference needs a variable name of letters, digits and '_' "
       "(write $${ for a literal ${)"},
  };
  for (const auto& [text, message] : errors) {
    INFO(text);
    const Result<std::string> expanded = ExpandEnv(text);
    REQUIRE_FALSE(expanded.ok());
    CHECK(expanded.status().code() == StatusCode::kInvalidArgument);
    CHECK(expanded.status().message() == message);
  }
}

TEST_CASE("DidYouMean suggests the nearest key only when it is near", "[config]") {
  static constexpr KeySpec kKeys[] = {
      {"poll_interval", KeyType::kDuration, "30s", false, ""},
      {"table", KeyType::kString, "", false, ""},
      {"primary_key", KeyType::kString, "", false, ""},
  };
  CHECK(DidYouMean("pol_interval", kKeys) == "poll_interval");
  CHECK(DidYouMean("tabel", kKeys) == "table");
  CHECK(DidYouMean("Table", kKeys) == "table");
  CHECK(DidYouMean("primarykey", kKeys) == "primary_key");
  CHECK(DidYouMean("query", kKeys).empty());
  CHECK(DidYouMean("x", kKeys).empty());
}

TEST_CASE("A broken config reports every error with file:line:col", "[config]") {
  unsetenv("SEARCHSYNC_TEST_MISSING_KEY");
  const std::string text = WithSource(R"(typesense:
  nodes: ["http://127.0.0.1:8108", "localhost:8108"]
  api_key: ${SEARCHSYNC_TEST_MISSING_KEY}
  timout: 30s
  retry: { initial_backoff: 100ms, max_backoff: 1 }
admin:
  listen: 0.0.0.0:8090
pipelines:
  - name: products
    source: SOURCE
    sink:
      collection: products
      schema: { fields: [{ name: title, type: string }] }
      batch: { max_events: 500, max_bytes: 5 MiB, flush_interval: soon }
  - name: products
    source: SOURCE
    sink:
      schema_file: nope.json
    queue: { max_events: 10 }
  - source: SOURCE
    sink: { collection: x, schema: { name: x, fields: [{ name: t, type: string }] }, concurrency: 100 }
    transforms:
      - rename: { a: id }
      - cst: { a: int }
      - cast: { a: int, b: string }
    reindex: { schedule: "0 3 * *", keep: -1 }
)");
  const std::vector<std::string> expected = {
      At(text, 2, "\"localhost") +
          "typesense.nodes[1]: expected a URL like http://127.0.0.1:8108, got "
          "\"localhost:8108\" (the scheme must be http:// or https://)",
      At(text, 3, "${") +
          "typesense.api_key: environment variable SEARCHSYNC_TEST_MISSING_KEY is not set",
      At(text, 4, "timout") + "unknown key 'timout' (did you mean 'timeout'?)",
      At(text, 5, "1 }") +
          "typesense.retry.max_backoff: expected a duration like 250ms or 5s, got \"1\"",
      At(text, 7, "0.0.0.0") +
          "admin.listen: 0.0.0.0:8090 is not a loopback address, so admin.token is required "
          "(e.g. token: ${SEARCHSYNC_ADMIN_TOKEN}); or listen on 127.0.0.1",
      At(text, 14, "5 MiB") +
          "pipelines[0].sink.batch.max_bytes: expected a size like 512KiB or 8MiB, got \"5 MiB\"",
      At(text, 14, "soon") +
          "pipelines[0].sink.batch.flush_interval: expected a duration like 250ms or 5s, got "
          "\"soon\"",
      At(text, 15, "products") +
          "pipelines[1].name: duplicate pipeline name 'products' (first used on line 9)",
      At(text, 18, "schema_file") +
          "pipelines[1].sink: missing required key 'collection' (The alias searches use; each "
          "reindex builds a new collection behind it.)",
      At(text, 18, "nope") +
          "pipelines[1].sink.schema_file: nope.json: cannot read: No such file or directory",
      At(text, 19, "10") +
          "pipelines[1].queue.max_events: must be at least sink.batch.max_events (10000), got 10",
      At(text, 20, "source") +
          "pipelines[2]: missing required key 'name' (Unique name, `[a-z0-9_-]+`; used in logs, "
          "metrics, state and on the command line.)",
      At(text, 21, "name: x") +
          "pipelines[2].sink.schema.name: remove it; the engine names collections itself and "
          "points the alias `collection` at them",
      At(text, 21, "100") + "pipelines[2].sink.concurrency: must be between 1 and 64, got 100",
      At(text, 23, "id }") +
          "pipelines[2].transforms[0].rename.a: cannot rename onto 'id': the document id comes "
          "from the source's key, and the sink ignores a field named id",
      At(text, 24, "cst") +
          "pipelines[2].transforms[1]: unknown transform \"cst\" (did you mean 'cast'?)",
      At(text, 25, "int,") +
          "pipelines[2].transforms[2].cast.a: unknown type \"int\" (did you mean 'int32'?)",
      At(text, 26, "\"0 3") +
          "pipelines[2].reindex.schedule: expected a 5-field cron expression like \"0 3 * * *\", "
          "got \"0 3 * *\"",
      At(text, 26, "-1") + "pipelines[2].reindex.keep: must be 0 or more",
  };
  const std::vector<std::string> errors = ErrorsOf(text);
  CHECK(errors == expected);
}

TEST_CASE("A value whose variable is missing gets that one error", "[config]") {
  unsetenv("SEARCHSYNC_TEST_UNSET");
  const std::string text = WithSource(R"(typesense:
  nodes: ["${SEARCHSYNC_TEST_UNSET}"]
  api_key: k
pipelines:
  - name: p
    source: SOURCE
    sink: { collection: p, schema: { fields: [{ name: t, type: string }] }, concurrency: "${SEARCHSYNC_TEST_UNSET}" }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 2, "\"${") +
                "typesense.nodes[0]: environment variable SEARCHSYNC_TEST_UNSET is not set",
            At(text, 7, "\"${") + "pipelines[0].sink.concurrency: environment variable "
                                  "SEARCHSYNC_TEST_UNSET is not set",
        });
}

TEST_CASE("An empty file names every missing top-level key", "[config]") {
  CHECK(ErrorsOf("") ==
        std::vector<std::string>{
            "pipelines.yaml: missing required key 'typesense' (The Typesense cluster the "
            "collections live in.)",
            "pipelines.yaml: missing required key 'pipelines' (One entry per source-to-collection "
            "pipeline; at least one.)",
        });
}

TEST_CASE("Unknown keys with nothing near list the allowed keys", "[config]") {
  const std::string text = kMinimal + "state: { directory: /var/lib/x }\n";
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{At(text, 8, "directory") +
                                 "unknown key 'directory' in state; allowed keys: path"});
}

TEST_CASE("A YAML syntax error is reported at its position", "[config]") {
  const std::string text = "typesense:\n  nodes: [http://a:1\n  api_key: x\n";
  const std::vector<std::string> errors = ErrorsOf(text);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("pipelines.yaml:"));
  CHECK(errors[0].find(": YAML syntax error: ") != std::string::npos);

  const std::vector<std::string> brackets = ErrorsOf(kMinimal + R"(    transforms:
      - cast: { price: float, tags: string[] }
)");
  REQUIRE(brackets.size() == 1);
  CHECK(brackets[0].starts_with("pipelines.yaml:9:"));
  CHECK(brackets[0].ends_with(
      "(inside { } or [ ], quote a value that holds brackets: \"string[]\")"));
}

TEST_CASE("Duplicate keys and wrong shapes are errors", "[config]") {
  const std::string text = kMinimal +
                           "admin:\n"
                           "  listen: 127.0.0.1:8090\n"
                           "  listen: 127.0.0.1:8091\n"
                           "state: [a]\n";
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 10, "listen") + "admin.listen: duplicate key (first set on line 9)",
            At(text, 11, "[a]") + "state: expected a mapping, got a sequence",
        });
}

TEST_CASE("Secrets never appear in error messages", "[config]") {
  const std::string secret = "s3cr3t-Value";
  const std::vector<std::string> configs = {
      "typesense: { nodes: \"http://a:1\", api_key: [" + secret + "] }\n",
      "typesense: { nodes: \"http://a:1\", api_key: { k: " + secret + " } }\n",
      "typesense: { nodes: \"http://a:1\", api_kye: " + secret + " }\n",
      "typesense: { nodes: \"http://a:1\", api_key: " + secret + ", x: 1 }\n" +
          "admin: { listen: \"0.0.0.0:1\", token: [" + secret + "] }\n",
  };
  for (const std::string& text : configs) {
    INFO(text);
    const Result<Config> config = ParseConfig(text, kFile);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find(secret) == std::string::npos);
  }
  std::ostringstream printed;
  printed << Secret(secret);
  CHECK(printed.str() == "***");
}

TEST_CASE("A valid config fills every option, and defaults match the structs", "[config]") {
  setenv("SEARCHSYNC_TEST_API_KEY", "key-123", 1);
  unsetenv("SEARCHSYNC_TEST_UNSET");
  const Config config = Parsed(WithSource(R"(typesense:
  nodes: ["http://127.0.0.1:8108", "https://search.example.com:443/"]
  api_key: ${SEARCHSYNC_TEST_API_KEY}
  timeout: 10m
  retry: { initial_backoff: 50ms, max_backoff: 10s, max_elapsed: 1h }
state:
  path: ${SEARCHSYNC_TEST_UNSET:-/var/lib/searchsync}
admin:
  listen: 0.0.0.0:8090
  token: ${SEARCHSYNC_TEST_API_KEY}
pipelines:
  - name: products
    source: SOURCE
    transforms:
      - rename: { product_name: name }
      - drop: [internal_notes]
      - cast: { price: float }
    sink:
      collection: products
      schema: { fields: [{ name: name, type: string }] }
      batch: { max_events: 500, max_bytes: 1MiB, flush_interval: 250ms }
      concurrency: 4
    queue: { max_events: 5000, max_bytes: 16MiB }
    reindex: { schedule: "0 3 * * *", keep: 3 }
  - name: orders-2
    source: SOURCE
    sink: { collection: orders, schema: { fields: [{ name: t, type: string }] } }
)"));
  CHECK(config.file == kFile);
  CHECK(config.typesense.nodes ==
        std::vector<std::string>{"http://127.0.0.1:8108", "https://search.example.com:443"});
  CHECK(config.typesense.api_key.value() == "key-123");
  CHECK(config.typesense.timeout == 10min);
  CHECK(config.typesense.retry.initial_backoff == 50ms);
  CHECK(config.typesense.retry.max_backoff == 10s);
  CHECK(config.typesense.retry.max_elapsed == std::optional<Millis>(1h));
  CHECK(config.state.path == "/var/lib/searchsync");
  CHECK(config.admin.listen == "0.0.0.0:8090");
  CHECK(config.admin.token.value() == "key-123");
  REQUIRE(config.pipelines.size() == 2);

  const PipelineConfig& products = config.pipelines[0];
  CHECK(products.name == "products");
  CHECK(products.source_type == "postgres");
  for (const SourceRegistration& registration : SourceRegistry()) {
    // A connector without keys yet (a stub) has no factory to give.
    if (registration.type == "postgres" && !registration.keys.empty()) {
      CHECK(products.make_source != nullptr);
    }
  }
  CHECK(products.transforms.size() == 3);
  CHECK(products.sink.collection == "products");
  CHECK(products.sink.schema_json == R"({"fields":[{"name":"name","type":"string"}]})");
  CHECK(products.sink.batch.max_events == 500);
  CHECK(products.sink.batch.max_bytes == 1024 * 1024);
  CHECK(products.sink.batch.flush_interval == 250ms);
  CHECK(products.sink.concurrency == 4);
  CHECK(products.queue.max_events == 5000);
  CHECK(products.queue.max_bytes == 16 * 1024 * 1024);
  CHECK(products.reindex.schedule == "0 3 * * *");
  CHECK(products.reindex.keep == 3);

  // Every key left out takes the table's default, which must be the struct's.
  const PipelineConfig& orders = config.pipelines[1];
  CHECK(orders.name == "orders-2");
  CHECK(orders.transforms.empty());
  CHECK(orders.sink.batch.max_events == BatchOptions{}.max_events);
  CHECK(orders.sink.batch.max_bytes == BatchOptions{}.max_bytes);
  CHECK(orders.sink.batch.flush_interval == BatchOptions{}.flush_interval);
  CHECK(orders.sink.concurrency == SinkOptions{}.concurrency);
  CHECK(orders.queue.max_events == QueueOptions{}.max_events);
  CHECK(orders.queue.max_bytes == QueueOptions{}.max_bytes);
  CHECK(orders.reindex.schedule.empty());
  CHECK(orders.reindex.keep == ReindexOptions{}.keep);

  const Config minimal = Parsed(kMinimal);
  CHECK(minimal.typesense.nodes == std::vector<std::string>{"http://127.0.0.1:8108"});
  CHECK(minimal.typesense.timeout == TypesenseOptions{}.timeout);
  CHECK(minimal.typesense.retry.initial_backoff == RetryOptions{}.initial_backoff);
  CHECK(minimal.typesense.retry.max_backoff == RetryOptions{}.max_backoff);
  CHECK_FALSE(minimal.typesense.retry.max_elapsed);
  CHECK(minimal.state.path == StateOptions{}.path);
  CHECK(minimal.admin.listen.empty());
  CHECK(minimal.admin.token.empty());
}

TEST_CASE("Transforms from the config run in order on upserts", "[config]") {
  const Config config = Parsed(WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: products
    source: SOURCE
    transforms:
      - rename: { product_name: name }
      - drop: [internal_notes]
      - cast: { price: float, stock: int32 }
    sink: { collection: products, schema: { fields: [{ name: t, type: string }] } }
)"));
  Event event{.op = Op::kUpsert,
              .id = "1",
              .document = {{"product_name", R"("Tea")"},
                           {"internal_notes", R"("x")"},
                           {"price", R"("4.50")"},
                           {"stock", R"("12")"}}};
  for (const Transform& transform : config.pipelines[0].transforms) {
    Result<Event> next = transform(std::move(event));
    REQUIRE(next.ok());
    event = std::move(next).value();
  }
  const Document expected = {{"name", R"("Tea")"}, {"price", "4.5"}, {"stock", "12"}};
  REQUIRE(event.document.size() == expected.size());
  for (size_t field_idx = 0; field_idx < expected.size(); ++field_idx) {
    CHECK(event.document[field_idx].name == expected[field_idx].name);
    CHECK(event.document[field_idx].json == expected[field_idx].json);
  }
}

TEST_CASE("An inline schema becomes compact JSON with YAML types kept", "[config]") {
  setenv("SEARCHSYNC_TEST_SORT", "popularity", 1);
  const Config config = Parsed(WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: products
    source: SOURCE
    sink:
      collection: products
      schema:
        fields:
          - { name: title, type: string, locale: "" }
          - { name: price, type: float, facet: true, optional: False }
          - { name: sku, type: string, locale: "true" }
          - name: "a \"quoted\" name"
            type: int64
          - { name: popularity, type: int32 }
        default_sorting_field: ${SEARCHSYNC_TEST_SORT}
        quoted: 'false'
        token_separators: ["-", "+"]
        symbols_to_index: [+]
        ratio: 0.50
        count: +7
        negative: -3
        exponent: 1e3
        half: .5
        nothing: ~
        literal_null: 'null'
        version: 1.2.3
        text: |
          two
          lines
)"));
  CHECK(config.pipelines[0].sink.schema_json ==
        R"({"fields":[{"name":"title","type":"string","locale":""},)"
        R"({"name":"price","type":"float","facet":true,"optional":false},)"
        R"({"name":"sku","type":"string","locale":"true"},)"
        R"({"name":"a \"quoted\" name","type":"int64"},{"name":"popularity","type":"int32"}],)"
        R"("default_sorting_field":"popularity","quoted":"false","token_separators":["-","+"],)"
        R"("symbols_to_index":["+"],"ratio":0.5,"count":7,"negative":-3,"exponent":1000,)"
        R"("half":0.5,"nothing":null,"literal_null":"null","version":"1.2.3",)"
        R"("text":"two\nlines\n"})");
}

TEST_CASE("A schema needs fields and exactly one of schema and schema_file", "[config]") {
  const std::string text = WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: a
    source: SOURCE
    sink: { collection: a, schema: { default_sorting_field: x } }
  - name: b
    source: SOURCE
    sink: { collection: b, schema: { fields: [{ name: t, type: string }] }, schema_file: b.json }
  - name: c
    source: SOURCE
    sink: { collection: c }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 5, "{ default") +
                "pipelines[0].sink.schema: needs `fields`, a sequence like [{ name: title, type: "
                "string }]",
            At(text, 8, "b.json") +
                "pipelines[1].sink.schema_file: set either schema or schema_file, not both",
            At(text, 11, "{ collection") +
                "pipelines[2].sink.schema: missing; set `schema` (a mapping with fields) or "
                "`schema_file` (a JSON file)",
        });
}

TEST_CASE("schema_file is read relative to the config file and compacted", "[config]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("searchsync_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "schemas");
  {
    std::ofstream(dir / "schemas" / "products.json")
        << "{\n  \"fields\": [ { \"name\": \"title\", \"type\": \"string\" },\n"
           "    { \"name\": \"popularity\", \"type\": \"int32\" } ],\n"
           "  \"default_sorting_field\": \"popularity\"\n}\n";
    std::ofstream(dir / "schemas" / "named.json") << R"({"name": "x", "fields": []})";
    std::ofstream(dir / "schemas" / "broken.json") << R"({"fields": [)";
    std::ofstream(dir / "pipelines.yaml") << WithSource(R"(
typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: products
    source: SOURCE
    sink: { collection: products, schema_file: schemas/products.json }
)");
    std::ofstream(dir / "bad.yaml") << WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: named
    source: SOURCE
    sink: { collection: named, schema_file: schemas/named.json }
  - name: broken
    source: SOURCE
    sink: { collection: broken, schema_file: schemas/broken.json }
)");
  }
  const Result<Config> config = LoadConfig((dir / "pipelines.yaml").string());
  INFO(config.status().message());
  REQUIRE(config.ok());
  CHECK(config->pipelines[0].sink.schema_json ==
        R"({"fields":[{"name":"title","type":"string"},{"name":"popularity","type":"int32"}],)"
        R"("default_sorting_field":"popularity"})");

  const std::string bad = (dir / "bad.yaml").string();
  const Result<Config> errors = LoadConfig(bad);
  REQUIRE_FALSE(errors.ok());
  const std::string schemas = (dir / "schemas").string();
  const std::vector<std::string> lines = Lines(errors.status().message());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == bad + ":5:45: pipelines[0].sink.schema_file: " + schemas +
                        "/named.json must not set \"name\": the engine names collections "
                        "behind the alias");
  CHECK(lines[1].starts_with(bad + ":8:46: pipelines[1].sink.schema_file: " + schemas +
                             "/broken.json is not valid JSON: "));
  std::filesystem::remove_all(dir);

  const Result<Config> missing = LoadConfig((dir / "none.yaml").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message() ==
        (dir / "none.yaml").string() + ": cannot read: No such file or directory");
}

TEST_CASE("Pipeline names are checked and node URLs validated", "[config]") {
  const std::string text = WithSource(R"(typesense:
  nodes: ["ftp://a:1", "http://a", "http://a:99999", "http://a:1/x", "http://:1", "http://[::1]:1"]
  api_key: ""
pipelines:
  - name: Products
    source: SOURCE
    sink: { collection: p, schema: { fields: [{ name: t, type: string }] } }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 2, "\"ftp") +
                "typesense.nodes[0]: expected a URL like http://127.0.0.1:8108, got \"ftp://a:1\" "
                "(the scheme must be http:// or https://)",
            At(text, 2, "\"http://a\"") +
                "typesense.nodes[1]: expected a URL like http://127.0.0.1:8108, got \"http://a\" "
                "(the port is missing)",
            At(text, 2, "\"http://a:99999") +
                "typesense.nodes[2]: expected a URL like http://127.0.0.1:8108, got "
                "\"http://a:99999\" (bad port)",
            At(text, 2, "\"http://a:1/x") +
                "typesense.nodes[3]: expected a URL like http://127.0.0.1:8108, got "
                "\"http://a:1/x\" (a node URL has no path)",
            At(text, 2, "\"http://:1") +
                "typesense.nodes[4]: expected a URL like http://127.0.0.1:8108, got "
                "\"http://:1\" (the host is missing)",
            At(text, 3, "\"\"") +
                "typesense.api_key: is empty; set it, e.g. api_key: ${TYPESENSE_API_KEY}",
            At(text, 5, "Products") +
                "pipelines[0].name: expected lowercase letters, digits, '_' and '-', got "
                "\"Products\"",
        });
}

TEST_CASE("Node URLs with user:password@ are refused without echoing the password", "[config]") {
  const std::string text = WithSource(R"(typesense:
  nodes: ["http://ts:S3CRET-pw@a:8108", "http://ts:S3CRET/pw@a:8108", "ftp://ts:S3CRET-pw@a:1",
          "http://ts:S3CRET-pw@a"]
  api_key: xyz
pipelines:
  - name: products
    source: SOURCE
    sink: { collection: p, schema: { fields: [{ name: t, type: string }] } }
)");
  const std::vector<std::string> errors = ErrorsOf(text);
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].find("got \"http://ts:***@a:8108\" (a node URL holds no user:password@; "
                       "Typesense authenticates with typesense.api_key)") != std::string::npos);
  CHECK(errors[1].find("got \"http://***@a:8108\"") != std::string::npos);
  CHECK(errors[2].find("got \"ftp://ts:***@a:1\" (the scheme") != std::string::npos);
  for (const std::string& error : errors) {
    INFO(error);
    CHECK(error.find("S3CRET") == std::string::npos);
  }
}

TEST_CASE("An unknown source type suggests a registered one", "[config]") {
  const std::string text = R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: a
    source: { type: postgress }
    sink: { collection: a, schema: { fields: [{ name: t, type: string }] } }
  - name: b
    source: { table: x }
    sink: { collection: b, schema: { fields: [{ name: t, type: string }] } }
  - name: c
    source: { type: oracle }
    sink: { collection: c, schema: { fields: [{ name: t, type: string }] } }
)";
  std::string registered;
  for (const SourceRegistration& registration : SourceRegistry()) {
    registered += (registered.empty() ? "" : ", ") + std::string(registration.type);
  }
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 4, "postgress") +
                "pipelines[0].source.type: unknown source type \"postgress\" (did you mean "
                "'postgres'?)",
            At(text, 7, "{ table") + "pipelines[1].source: needs `type`, one of: " + registered,
            At(text, 10, "oracle") +
                "pipelines[2].source.type: unknown source type \"oracle\"; "
                "known types: " +
                registered,
        });
}

TEST_CASE("Queue bounds must hold a whole batch", "[config]") {
  const std::string text = WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: a
    source: SOURCE
    sink:
      collection: a
      schema: { fields: [{ name: t, type: string }] }
      batch: { max_events: 200000, max_bytes: 1GiB }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 8, "200000") + "pipelines[0].sink.batch.max_events: must be at most "
                                    "queue.max_events (100000); raise queue.max_events",
            At(text, 8, "1GiB") + "pipelines[0].sink.batch.max_bytes: must be at most "
                                  "queue.max_bytes (67108864 bytes); raise queue.max_bytes",
        });
}

TEST_CASE("Section validates its keys and reads typed values with defaults", "[config]") {
  static constexpr KeySpec kNested[] = {
      {"table", KeyType::kString, "", true, "the table"},
  };
  static constexpr KeySpec kKeys[] = {
      {"host", KeyType::kString, "localhost", false, ""},
      {"port", KeyType::kInt, "5432", false, ""},
      {"tls", KeyType::kBool, "false", false, ""},
      {"poll_interval", KeyType::kDuration, "30s", false, ""},
      {"buffer", KeyType::kSize, "1MiB", false, ""},
      {"primary_key", KeyType::kStringList, "", false, ""},
      {"password", KeyType::kSecret, "", true, "the password"},
      {"tombstones", KeyType::kMapping, "", false, ""},
      {"deletes", KeyType::kMapping, "", false, ""},
      {"extra", KeyType::kAny, "", false, ""},
  };
  setenv("SEARCHSYNC_TEST_PORT", "6543", 1);
  SECTION("values, defaults and ${VAR} in any scalar") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load(R"(
port: ${SEARCHSYNC_TEST_PORT}
tls: TRUE
poll_interval: 5s
primary_key: id
password: pw
tombstones: { table: t }
extra: { list: [a, "${SEARCHSYNC_TEST_PORT}"] }
)"),
                          "pipelines[0].source", kKeys, errors);
    INFO(errors.ToString());
    CHECK(errors.empty());
    CHECK(section.String("host") == "localhost");
    CHECK_FALSE(section.Has("host"));
    CHECK(section.Has("port"));
    CHECK(section.Int("port") == 6543);
    CHECK(section.Bool("tls"));
    CHECK(section.Duration("poll_interval") == 5s);
    CHECK(section.Size("buffer") == 1024 * 1024);
    CHECK(section.StringList("primary_key") == std::vector<std::string>{"id"});
    CHECK(section.SecretString("password").value() == "pw");
    CHECK(section.PathOf("port") == "pipelines[0].source.port");
    const Section tombstones = section.Child("tombstones", kNested);
    CHECK(tombstones.path() == "pipelines[0].source.tombstones");
    CHECK(tombstones.String("table") == "t");
    const Section deletes = section.Child("deletes", kNested);  // absent: required not checked
    CHECK(deletes.String("table").empty());
    CHECK(section.Node("extra")["list"][1].as<std::string>() == "6543");
    CHECK_FALSE(section.Node("missing_key_not_in_table_is_fine_for_node").IsDefined());
    CHECK(errors.empty());
  }
  SECTION("type errors, missing required keys and errors of the caller") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load(R"(port: five
tls: maybe
buffer: [1]
primary_key: [id, [x]]
tombstones: { tabel: t }
)"),
                          "src", kKeys, errors);
    const Section tombstones = section.Child("tombstones", kNested);
    CHECK(section.Int("port") == 5432);  // the default, the error being recorded
    section.Error("port", "custom problem");
    section.Error("host", "absent key");
    CHECK(Lines(errors.ToString()) ==
          std::vector<std::string>{
              "s.yaml:1:7: src.port: expected an integer, got \"five\"",
              "s.yaml:2:6: src.tls: expected true or false, got \"maybe\"",
              "s.yaml:3:9: src.buffer: expected a size like 512KiB or 8MiB, got a sequence",
              "s.yaml:4:19: src.primary_key[1]: expected a string, got a sequence",
              "s.yaml:1:1: src: missing required key 'password' (the password)",
              "s.yaml:5:15: unknown key 'tabel' (did you mean 'table'?)",
              "s.yaml:5:13: src.tombstones: missing required key 'table' (the table)",
              "s.yaml:1:7: src.port: custom problem",
              "s.yaml:1:1: src.host: absent key",
          });
  }
}

TEST_CASE("ConfigReferenceMarkdown renders every key table", "[config]") {
  const std::string markdown = ConfigReferenceMarkdown();
  for (const char* title :
       {"### Top level", "### `typesense`", "### `typesense.retry`", "### `state`", "### `admin`",
        "### `pipelines[]`", "### `pipelines[].source` with `type: postgres`",
        "### `pipelines[].transforms[]`", "### `pipelines[].sink`", "### `pipelines[].sink.batch`",
        "### `pipelines[].queue`", "### `pipelines[].reindex`"}) {
    INFO(title);
    CHECK(markdown.find(title) != std::string::npos);
  }
  // Defaults come from the options structs, written in the largest whole unit.
  CHECK(markdown.find("| `timeout` | duration | `1h` | | Client-side timeout of one import "
                      "call. |") != std::string::npos);
  CHECK(markdown.find("| `max_bytes` | size | `8MiB` | |") != std::string::npos);
  CHECK(markdown.find("| `cast` |") != std::string::npos);
}

TEST_CASE("A YAML billion laughs is refused instead of expanded", "[config]") {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    const std::string previous = "*a" + std::to_string(level - 1);
    text += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int copy = 0; copy < 10; ++copy) text += (copy ? ", " : "") + previous;
    text += "]\n";
  }
  text += "typesense: { nodes: \"http://a:1\", api_key: k, retry: *a9 }\n";
  const std::vector<std::string> errors = ErrorsOf(text);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == std::string(kFile) +
                         ": the document's aliases expand to more than 1000000 nodes or 500 "
                         "levels (aliases of aliases, or an alias inside its own anchor); use "
                         "fewer");
}

TEST_CASE("Files that are directories, endless or binary get a message that says so", "[config]") {
  CHECK(LoadConfig("/tmp").status().message() == "/tmp: is a directory; expected a file");
  CHECK(LoadConfig("/dev/zero").status().message() ==
        "/dev/zero: is larger than 16 MiB; is it the right file?");
  const std::string with_nul = "typesense:\n  nodes: ab" + std::string(1, '\0') + "c\n";
  CHECK(ErrorsOf(with_nul) ==
        std::vector<std::string>{std::string(kFile) +
                                 ":2:12: a NUL byte: this is not a YAML text file"});
  for (const std::string schema_file : {"/tmp", "/dev/zero"}) {
    INFO(schema_file);
    const std::vector<std::string> errors = ErrorsOf(
        WithSource("typesense: { nodes: \"http://a:1\", api_key: k }\npipelines:\n  - name: p\n"
                   "    source: SOURCE\n    sink: { collection: p, schema_file: " +
                   schema_file + " }\n"));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].ends_with("pipelines[0].sink.schema_file: " + schema_file +
                              (schema_file == "/tmp"
                                   ? ": is a directory; expected a file"
                                   : ": is larger than 16 MiB; is it the right file?")));
  }
}

TEST_CASE("YAML merge keys merge mappings, keys set beside them win", "[config]") {
  const Config config = Parsed(WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: products
    source: SOURCE
    sink: &sink
      collection: products
      schema: { fields: [{ name: t, type: string }] }
      batch: &batch { max_events: 500, flush_interval: 1s }
      concurrency: 3
  - name: orders
    source: SOURCE
    sink:
      <<: [{ collection: orders, concurrency: 5 }, *sink]
      batch: { <<: *batch, max_events: 7 }
)"));
  REQUIRE(config.pipelines.size() == 2);
  CHECK(config.pipelines[0].sink.collection == "products");
  CHECK(config.pipelines[0].sink.concurrency == 3);
  CHECK(config.pipelines[0].sink.batch.max_events == 500);
  CHECK(config.pipelines[1].sink.collection == "orders");
  CHECK(config.pipelines[1].sink.concurrency == 5);
  CHECK(config.pipelines[1].sink.schema_json == config.pipelines[0].sink.schema_json);
  CHECK(config.pipelines[1].sink.batch.max_events == 7);
  CHECK(config.pipelines[1].sink.batch.flush_interval == 1s);

  const std::string text = WithSource(R"(typesense: { nodes: "http://a:1", api_key: k, <<: 3 }
pipelines:
  - name: products
    source: SOURCE
    sink: { collection: p, schema: { fields: [{ name: t, type: string }] } }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{At(text, 1, "3 }") +
                                 "<<: a merge key takes a mapping or a list of mappings, like "
                                 "<<: *defaults or <<: [*a, *b]"});
}

TEST_CASE("The schema is checked as Typesense checks a new collection", "[config]") {
  const std::string text = WithSource(R"(typesense: { nodes: "http://a:1", api_key: k }
pipelines:
  - name: products
    source: SOURCE
    sink:
      collection: products
      schema:
        fields:
          - { name: title, type: strin }
          - { name: tags, type: "string[]", sort: true }
          - { name: meta, type: object }
          - { name: brand, type: string, facet: true, index: false }
          - { name: "price_.*", type: float, optional: false }
          - { name: title, type: string, optional: yes }
          - { name: rank, type: int32 }
        default_sorting_field: rnak
  - name: orders
    source: SOURCE
    sink:
      collection: orders
      schema:
        fields: [{ name: total, type: float, optional: true }, { name: note, type: string }]
        default_sorting_field: total
  - name: notes
    source: SOURCE
    sink: { collection: notes, schema: { fields: [], default_sorting_field: note } }
)");
  CHECK(ErrorsOf(text) ==
        std::vector<std::string>{
            At(text, 9, "strin") +
                "pipelines[0].sink.schema.fields[0].type: field `title` has the unknown type "
                "`strin` (did you mean `string`?)",
            At(text, 10, "true") +
                "pipelines[0].sink.schema.fields[1].sort: field `tags` of type `string[]` "
                "cannot be sortable",
            At(text, 11, "object") + "pipelines[0].sink.schema.fields[2].type: type `object` needs "
                                     "enable_nested_fields: true in the schema",
            At(text, 12, "true") +
                "pipelines[0].sink.schema.fields[3].facet: field `brand` cannot be a facet "
                "with index: false",
            At(text, 13, "false") +
                "pipelines[0].sink.schema.fields[4].optional: field `price_.*` has .* in its "
                "name, so it must be optional",
            At(text, 14, "yes") +
                "pipelines[0].sink.schema.fields[5].optional: expected true or false",
            At(text, 16, "rnak") +
                "pipelines[0].sink.schema.default_sorting_field: `rnak` is not a field of the "
                "schema (did you mean `rank`?)",
            At(text, 23, "total") +
                "pipelines[1].sink.schema.default_sorting_field: `total` is optional; the "
                "default sorting field must be in every document",
            At(text, 26, "[]") +
                "pipelines[2].sink.schema.fields: is empty; Typesense needs at least one field",
            At(text, 26, "note }") +
                "pipelines[2].sink.schema.default_sorting_field: `note` is not a field of the "
                "schema",
        });
}

TEST_CASE("A schema file is checked the same way, errors naming the file", "[config]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("searchsync_schema_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "schema.json")
      << R"({"fields": [{"name": "title", "type": "string"}, {"name": "n", "type": "int32"},)"
         R"( {"name": "n", "type": "int64"}], "default_sorting_field": "title"})";
  const std::string text = WithSource(
      "typesense: { nodes: \"http://a:1\", api_key: k }\npipelines:\n"
      "  - name: p\n    source: SOURCE\n"
      "    sink: { collection: p, schema_file: schema.json }\n");
  std::ofstream(dir / "pipelines.yaml") << text;
  const Result<Config> config = LoadConfig((dir / "pipelines.yaml").string());
  REQUIRE_FALSE(config.ok());
  const std::string prefix =
      (dir / "pipelines.yaml").string() + At(text, 5, "schema.json").substr(std::strlen(kFile)) +
      "pipelines[0].sink.schema_file: " + (dir / "schema.json").string() + ": ";
  CHECK(Lines(config.status().message()) ==
        std::vector<std::string>{
            prefix + "fields[2].name: duplicate field name `n`",
            prefix + "default_sorting_field: `title` has type `string`; it must be an int32, "
                     "int64, float or bool field, or a string with sort: true",
        });
  std::filesystem::remove_all(dir);
}

}  // namespace searchsync
