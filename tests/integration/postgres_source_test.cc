// The postgres source against a real PostgreSQL, driven through Source::Poll (no sink).

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/log.h"
#include "sources/postgres.h"
#include "tests/support/postgres_server.h"

namespace searchsync {
namespace {

using test::PostgresServer;

// One server for the tests that do not stop it; each test uses tables of its own.
PostgresServer& SharedServer() {
  static std::unique_ptr<PostgresServer> server = [] {
    auto started = PostgresServer::Start();
    if (!started.ok()) FAIL("PostgreSQL did not start: " << started.status().ToString());
    return std::move(*started);
  }();
  return *server;
}

void Exec(const PostgresServer& server, const std::string& sql) {
  const Status status = server.Exec(sql);
  INFO(status.ToString());
  REQUIRE(status.ok());
}

PostgresOptions Options(const PostgresServer& server, std::string table) {
  return PostgresOptions{.dsn = Secret(server.dsn()),
                         .table = std::move(table),
                         .primary_key = {"id"},
                         .updated_at = "updated_at",
                         .poll_interval = std::chrono::milliseconds(0),
                         .page_size = 1000};
}

// Polls until the source reports nothing new, checkpointing after each batch like the pipeline.
std::vector<Event> Drain(Source& source, Checkpoint& checkpoint, size_t max_events = 100'000) {
  std::vector<Event> all;
  for (int poll = 0; poll < 100'000; ++poll) {
    Result<std::vector<Event>> events = source.Poll(checkpoint, max_events);
    INFO(events.status().ToString());
    REQUIRE(events.ok());
    if (events->empty()) return all;
    REQUIRE(events->size() <= max_events);
    checkpoint = events->back().position;
    for (Event& event : *events) all.push_back(std::move(event));
  }
  FAIL("the source never caught up");
  return all;
}

std::vector<std::string> Ids(const std::vector<Event>& events) {
  std::vector<std::string> ids;
  for (const Event& event : events) ids.push_back(event.id);
  return ids;
}

std::string FieldJson(const Event& event, const std::string& name) {
  for (const Field& field : event.document) {
    if (field.name == name) return field.json;
  }
  return "<missing>";
}

// "+id" for an upsert, "-id" for a delete.
std::vector<std::string> Ops(const std::vector<Event>& events) {
  std::vector<std::string> ops;
  for (const Event& event : events) ops.push_back((event.op == Op::kUpsert ? "+" : "-") + event.id);
  return ops;
}

TEST_CASE("Postgres source pages through 25,000 rows in (updated_at, id) order, each once",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  // Seven rows share each timestamp, so pages end in the middle of equal-timestamp runs.
  Exec(pg,
       "CREATE TABLE paged (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);"
       "INSERT INTO paged SELECT i, 'item ' || i,"
       "  now() - interval '1 day' + (i / 7) * interval '1 millisecond'"
       "  FROM generate_series(1, 25000) AS i");
  auto source = MakePostgresSource(Options(pg, "paged"));
  Checkpoint checkpoint;
  std::vector<Event> all;
  size_t polls = 0;
  while (true) {
    Result<std::vector<Event>> events = source->Poll(checkpoint, 5000);
    REQUIRE(events.ok());
    if (events->empty()) break;
    ++polls;
    CHECK(events->size() <= 1000);  // page_size bounds each poll
    checkpoint = events->back().position;
    for (Event& event : *events) all.push_back(std::move(event));
  }
  CHECK(polls == 25);
  REQUIRE(all.size() == 25'000);
  // (i / 7) orders like i, and within a timestamp the ids ascend: the order is simply 1..25000.
  for (size_t event_idx = 0; event_idx < all.size(); ++event_idx) {
    REQUIRE(all[event_idx].id == std::to_string(event_idx + 1));
  }
  CHECK(all[41].op == Op::kUpsert);
  CHECK(FieldJson(all[41], "id") == "42");
  CHECK(FieldJson(all[41], "name") == "\"item 42\"");
  CHECK(source->Poll(checkpoint, 5000)->empty());
}

TEST_CASE("Postgres source resumes after any event's position", "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE resumed (id int PRIMARY KEY, v text,"
       "  updated_at timestamptz NOT NULL DEFAULT now());"
       "INSERT INTO resumed (id, v) SELECT i, 'v' FROM generate_series(1, 10) AS i");
  Checkpoint checkpoint;
  {
    auto source = MakePostgresSource(Options(pg, "resumed"));
    Result<std::vector<Event>> first = source->Poll(checkpoint, 4);
    REQUIRE(first.ok());
    REQUIRE(Ids(*first) == std::vector<std::string>{"1", "2", "3", "4"});
    checkpoint = (*first)[1].position;  // only 1 and 2 were acknowledged
  }
  auto source = MakePostgresSource(Options(pg, "resumed"));  // a restarted process
  std::vector<Event> rest = Drain(*source, checkpoint);
  CHECK(Ids(rest) == std::vector<std::string>{"3", "4", "5", "6", "7", "8", "9", "10"});

  Exec(pg, "UPDATE resumed SET v = 'changed', updated_at = now() WHERE id = 2");
  std::vector<Event> later = Drain(*source, checkpoint);
  REQUIRE(Ids(later) == std::vector<std::string>{"2"});
  CHECK(FieldJson(later[0], "v") == "\"changed\"");
}

TEST_CASE("Postgres source pages composite keys and joins them into one id",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg, R"sql(
    CREATE TABLE composite (tenant text, id int, name text, updated_at timestamptz NOT NULL,
                            PRIMARY KEY (tenant, id));
    INSERT INTO composite VALUES
      ('a|b', 1, 'x', '2026-01-01 00:00:00+00'),
      ('a', 2, 'x', '2026-01-01 00:00:00+00'),
      ('a', 1, 'x', '2026-01-01 00:00:00+00'),
      ('back\slash', 1, 'x', '2026-01-01 00:00:00+00'),
      ('b', 7, 'x', '2026-01-02 00:00:00+00');
  )sql");
  PostgresOptions options = Options(pg, "composite");
  options.primary_key = {"tenant", "id"};
  options.page_size = 2;
  auto source = MakePostgresSource(options);
  Checkpoint checkpoint;
  const std::vector<Event> events = Drain(*source, checkpoint);
  // ORDER BY updated_at, tenant, id with the C collation.
  CHECK(Ids(events) ==
        std::vector<std::string>{"a|1", "a|2", R"(a\|b|1)", R"(back\\slash|1)", "b|7"});
}

TEST_CASE("Postgres source maps each column type to JSON", "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TYPE mood AS ENUM ('sad', 'happy');"
       "CREATE DOMAIN positive_int AS int CHECK (VALUE > 0)");
  struct Case {
    std::string type;
    std::string literal;  // SQL
    std::string json;     // expected field value
  };
  const std::vector<Case> cases = {
      {"int2", "-7", "-7"},
      {"int4", "2147483647", "2147483647"},
      {"int8", "-9223372036854775808", "-9223372036854775808"},
      {"oid", "4000000000", "4000000000"},
      {"numeric", "12345678901234567890.123456789", "12345678901234567890.123456789"},
      {"numeric(6,2)", "1.5", "1.50"},
      {"numeric", "'NaN'", "null"},
      {"float4", "0.1", "0.1"},
      {"float8", "0.1", "0.1"},
      {"float8", "1e300", "1e+300"},
      {"float8", "'NaN'", "null"},
      {"float8", "'-Infinity'", "null"},
      {"bool", "true", "true"},
      {"bool", "false", "false"},
      {"text", R"(E'tab\there "quoted" \\ ü')", R"("tab\there \"quoted\" \\ ü")"},
      {"varchar(20)", "'plain'", R"("plain")"},
      {"char(4)", "'ab'", R"("ab  ")"},
      {"uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
       R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")"},
      {"timestamptz", "'2026-11-21 06:00:00.123456+01'", R"("2026-11-21T05:00:00.123456Z")"},
      {"timestamp", "'2026-11-21 05:00:00'", R"("2026-11-21T05:00:00Z")"},  // server in UTC
      {"timestamp", "'infinity'", "null"},
      {"timestamptz", "'-infinity'", "null"},
      {"date", "'2026-11-21'", R"("2026-11-21")"},
      {"time", "'05:06:07.5'", R"("05:06:07.5")"},
      {"interval", "'1 day 2 hours'", R"("1 day 02:00:00")"},
      {"json", "'{ \"a\" :\n [1, 2],  \"s\": \"x  y\" }'", R"({"a":[1,2],"s":"x  y"})"},
      {"jsonb", R"('{"b": {"c": null}, "a": 1}')", R"({"a":1,"b":{"c":null}})"},
      {"bytea", R"('\x00ff10')", R"("AP8Q")"},
      {"int4[]", "ARRAY[1, NULL, 3]", "[1,null,3]"},
      {"int4[]", "'{{1,2},{3,4}}'", "[[1,2],[3,4]]"},
      {"int8[]", "'{}'", "[]"},
      {"text[]", R"(ARRAY['a b', 'c,d', 'e"f', 'g\h', NULL, 'NULL', ''])",
       R"(["a b","c,d","e\"f","g\\h",null,"NULL",""])"},
      {"varchar[]", "ARRAY['x']::varchar[]", R"(["x"])"},
      {"numeric[]", "ARRAY[1.10, 'NaN']::numeric[]", "[1.10,null]"},
      {"bool[]", "ARRAY[true, false, NULL]", "[true,false,null]"},
      {"float8[]", "ARRAY[1.5, 'Infinity']::float8[]", "[1.5,null]"},
      {"timestamptz[]", "ARRAY['2026-11-21 05:00:00+00']::timestamptz[]",
       R"(["2026-11-21T05:00:00Z"])"},
      {"jsonb[]", R"(ARRAY['{"k": [1]}']::jsonb[])", R"([{"k":[1]}])"},
      {"mood", "'happy'", R"("happy")"},
      {"mood[]", "ARRAY['sad', 'happy']::mood[]", R"(["sad","happy"])"},
      {"positive_int", "5", "5"},
      {"int4", "NULL", "null"},
      {"text[]", "NULL", "null"},
  };
  std::string create = "CREATE TABLE typed (id int PRIMARY KEY, updated_at timestamptz NOT NULL";
  std::string insert = "INSERT INTO typed VALUES (1, now() - interval '1 minute'";
  for (size_t case_idx = 0; case_idx < cases.size(); ++case_idx) {
    create += ", c" + std::to_string(case_idx) + " " + cases[case_idx].type;
    insert += ", " + cases[case_idx].literal;
  }
  Exec(pg, create + ")");
  Exec(pg, insert + ")");

  auto source = MakePostgresSource(Options(pg, "typed"));
  Checkpoint checkpoint;
  const std::vector<Event> events = Drain(*source, checkpoint);
  REQUIRE(events.size() == 1);
  const Event& event = events.front();
  CHECK(event.id == "1");
  CHECK(event.document.size() == cases.size() + 2);
  for (size_t case_idx = 0; case_idx < cases.size(); ++case_idx) {
    INFO(cases[case_idx].type << " " << cases[case_idx].literal);
    CHECK(FieldJson(event, "c" + std::to_string(case_idx)) == cases[case_idx].json);
  }
}

TEST_CASE("Postgres source turns soft-deleted rows into deletes", "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE soft (id int PRIMARY KEY, name text, is_deleted bool,"
       "  updated_at timestamptz NOT NULL);"
       "INSERT INTO soft VALUES"
       "  (1, 'kept', false, now() - interval '3 s'),"
       "  (2, 'gone', true, now() - interval '2 s'),"
       "  (3, 'unknown', NULL, now() - interval '1 s')");
  PostgresOptions options = Options(pg, "soft");
  options.soft_delete_column = "is_deleted";
  auto source = MakePostgresSource(options);
  Checkpoint checkpoint;
  std::vector<Event> events = Drain(*source, checkpoint);
  CHECK(Ops(events) == std::vector<std::string>{"+1", "-2", "+3"});
  CHECK(events[0].document.size() == 3);  // id, name, updated_at: the flag is left out
  CHECK(FieldJson(events[0], "is_deleted") == "<missing>");
  CHECK(events[1].document.empty());

  Exec(pg, "UPDATE soft SET is_deleted = true, updated_at = now() WHERE id = 1");
  CHECK(Ops(Drain(*source, checkpoint)) == std::vector<std::string>{"-1"});

  SECTION("a nullable deleted_at column works as the flag too") {
    Exec(pg,
         "CREATE TABLE soft_at (id int PRIMARY KEY, deleted_at timestamptz,"
         "  updated_at timestamptz NOT NULL);"
         "INSERT INTO soft_at VALUES (1, NULL, now() - interval '2 s'),"
         "  (2, now(), now() - interval '1 s')");
    PostgresOptions at_options = Options(pg, "soft_at");
    at_options.soft_delete_column = "deleted_at";
    auto at_source = MakePostgresSource(at_options);
    Checkpoint at_checkpoint;
    CHECK(Ops(Drain(*at_source, at_checkpoint)) == std::vector<std::string>{"+1", "-2"});
  }
}

TEST_CASE("Postgres source merges tombstones by time, a tombstone first on a tie",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  // The table's final state: 1 present (deleted, then inserted again), 2 deleted, 3 present
  // (deleted and inserted again in one transaction: same timestamp).
  Exec(pg, R"sql(
    CREATE TABLE merged (id text PRIMARY KEY, updated_at timestamptz NOT NULL);
    CREATE TABLE merged_deleted (id text NOT NULL, deleted_at timestamptz NOT NULL);
    INSERT INTO merged VALUES ('1', '2026-01-01 00:00:03+00'), ('3', '2026-01-01 00:00:05+00'),
                              ('4', '2026-01-01 00:00:02+00'), ('5', '2026-01-01 00:00:06+00');
    INSERT INTO merged_deleted VALUES ('1', '2026-01-01 00:00:02+00'),
                                      ('2', '2026-01-01 00:00:04+00'),
                                      ('3', '2026-01-01 00:00:05+00'),
                                      ('0', '2026-01-01 00:00:01+00'),
                                      ('6', '2026-01-01 00:00:07+00');
  )sql");
  const std::vector<std::string> expected = {"-0", "-1", "+4", "+1", "-2", "-3", "+3", "+5", "-6"};
  for (const size_t page_size : {1, 2, 3, 1000}) {
    INFO("page_size=" << page_size);
    PostgresOptions options = Options(pg, "merged");
    options.page_size = page_size;
    options.tombstones = PostgresTombstoneOptions{
        .table = "merged_deleted", .id_column = "id", .deleted_at_column = "deleted_at"};
    auto source = MakePostgresSource(options);
    Checkpoint checkpoint;
    CHECK(Ops(Drain(*source, checkpoint)) == expected);

    // Resuming from every intermediate position gives the rest of the same sequence.
    Checkpoint start;
    const std::vector<Event> all = Drain(*source, start);
    for (size_t event_idx = 0; event_idx < all.size(); ++event_idx) {
      Checkpoint from = all[event_idx].position;
      const std::vector<std::string> rest = Ops(Drain(*source, from));
      CHECK(rest == std::vector<std::string>(expected.begin() + event_idx + 1, expected.end()));
    }
  }

  SECTION("deletes recorded by a trigger, then the row inserted again, end with the row") {
    Exec(pg, R"sql(
      CREATE TABLE live (id int PRIMARY KEY, name text,
                         updated_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE live_deleted (id int NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now());
      CREATE FUNCTION live_tombstone() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO live_deleted (id) VALUES (OLD.id); RETURN OLD; END $$;
      CREATE TRIGGER live_tombstone AFTER DELETE ON live FOR EACH ROW
        EXECUTE FUNCTION live_tombstone();
      INSERT INTO live (id, name) VALUES (1, 'first'), (2, 'second');
    )sql");
    Exec(pg, "DELETE FROM live WHERE id = 1");
    Exec(pg, "INSERT INTO live (id, name) VALUES (1, 'again')");
    Exec(pg,
         "BEGIN; DELETE FROM live WHERE id = 2; INSERT INTO live VALUES (2, 'same tx'); "
         "COMMIT");
    PostgresOptions options = Options(pg, "live");
    options.tombstones = PostgresTombstoneOptions{
        .table = "live_deleted", .id_column = "id", .deleted_at_column = "deleted_at"};
    auto source = MakePostgresSource(options);
    Checkpoint checkpoint;
    const std::vector<Event> events = Drain(*source, checkpoint);
    std::map<std::string, const Event*> last;
    for (const Event& event : events) last[event.id] = &event;
    REQUIRE(last.size() == 2);
    CHECK(last["1"]->op == Op::kUpsert);
    CHECK(FieldJson(*last["1"], "name") == "\"again\"");
    CHECK(last["2"]->op == Op::kUpsert);
    CHECK(FieldJson(*last["2"], "name") == "\"same tx\"");
  }
}

// The late-commit case: a transaction updates a row, stays open across polls while newer rows
// are committed and read, then commits with an updated_at older than those rows.
TEST_CASE("Postgres source returns a row committed late by a long transaction",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg, R"sql(
    CREATE TABLE late (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
    CREATE FUNCTION late_touch() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
    CREATE TRIGGER late_touch BEFORE UPDATE ON late FOR EACH ROW EXECUTE FUNCTION late_touch();
    INSERT INTO late (id, v) VALUES (1, 'old'), (2, 'old');
  )sql");
  auto source = MakePostgresSource(Options(pg, "late"));
  Checkpoint checkpoint;
  REQUIRE(Drain(*source, checkpoint).size() == 2);

  pqxx::connection holder_connection(pg.dsn());
  auto holder = std::make_unique<pqxx::work>(holder_connection);
  holder->exec("UPDATE late SET v = 'late' WHERE id = 1");  // updated_at = this transaction's start
  Exec(pg, "UPDATE late SET v = 'new' WHERE id = 2");       // committed, newer updated_at

  // Two polls while the transaction stays open: row 2 is newer than the open transaction's
  // start, so it waits below the horizon rather than moving the cursor past row 1's future value.
  CHECK(Drain(*source, checkpoint).empty());
  CHECK(Drain(*source, checkpoint).empty());

  holder->commit();
  holder.reset();
  const std::vector<Event> events = Drain(*source, checkpoint);
  REQUIRE(Ids(events) == std::vector<std::string>{"1", "2"});
  CHECK(FieldJson(events[0], "v") == "\"late\"");
  CHECK(FieldJson(events[1], "v") == "\"new\"");

  SECTION("also when the writer's role hides its xact_start from the source's role") {
    Exec(pg,
         "CREATE ROLE late_app LOGIN; CREATE ROLE late_sync LOGIN;"
         "GRANT ALL ON late TO late_app; GRANT SELECT ON late TO late_sync");
    PostgresOptions options = Options(pg, "late");
    options.dsn = Secret("postgresql://late_sync@127.0.0.1:" + std::to_string(pg.port()) + "/" +
                         pg.database());
    auto hidden_source = MakePostgresSource(options);
    Checkpoint hidden_checkpoint;
    REQUIRE(Drain(*hidden_source, hidden_checkpoint).size() == 2);

    pqxx::connection app_connection("postgresql://late_app@127.0.0.1:" + std::to_string(pg.port()) +
                                    "/" + pg.database());
    pqxx::work app(app_connection);
    app.exec("UPDATE late SET v = 'late again' WHERE id = 1");
    Exec(pg, "UPDATE late SET v = 'new again' WHERE id = 2");
    CHECK(Drain(*hidden_source, hidden_checkpoint).empty());
    app.commit();
    const std::vector<Event> hidden_events = Drain(*hidden_source, hidden_checkpoint);
    REQUIRE(Ids(hidden_events) == std::vector<std::string>{"1", "2"});
    CHECK(FieldJson(hidden_events[0], "v") == "\"late again\"");
  }
}

TEST_CASE("Postgres source syncs the rows of a query", "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE queried (id int PRIMARY KEY, name text, secret text,"
       "  updated_at timestamptz NOT NULL DEFAULT now() - interval '1 s');"
       "INSERT INTO queried (id, name, secret) VALUES (1, 'a', 's'), (2, 'hidden', 's'),"
       "  (3, 'c', 's')");
  PostgresOptions options = Options(pg, "");
  options.query =
      "SELECT id AS product_id, upper(name) AS title, updated_at AS changed\n"
      "  FROM queried WHERE name <> 'hidden';";
  options.primary_key = {"product_id"};
  options.updated_at = "changed";
  auto source = MakePostgresSource(options);
  Checkpoint checkpoint;
  const std::vector<Event> events = Drain(*source, checkpoint);
  REQUIRE(Ids(events) == std::vector<std::string>{"1", "3"});
  CHECK(events[1].document.size() == 3);
  CHECK(FieldJson(events[1], "title") == "\"C\"");
  CHECK(source->HealthCheck().ok());
}

TEST_CASE("Postgres source built from YAML options syncs rows and tombstones",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE parsed (id int PRIMARY KEY, is_deleted bool NOT NULL DEFAULT false,"
       "  updated_at timestamptz NOT NULL DEFAULT now() - interval '1 s');"
       "CREATE TABLE parsed_deleted (id int, deleted_at timestamptz);"
       "INSERT INTO parsed (id, is_deleted) VALUES (1, false), (2, true), (3, false);"
       "INSERT INTO parsed_deleted VALUES (4, now() - interval '1 hour')");
  const YAML::Node node = YAML::Load("dsn: " + pg.dsn() +
                                     "\n"
                                     "table: parsed\n"
                                     "primary_key: id\n"
                                     "updated_at: updated_at\n"
                                     "poll_interval: 250ms\n"
                                     "page_size: 2\n"
                                     "deletes:\n"
                                     "  soft_delete_column: is_deleted\n"
                                     "  tombstone_table: { table: parsed_deleted, id_column: id, "
                                     "deleted_at_column: deleted_at }\n");
  ConfigErrors errors;
  const Section section("pipelines.yaml", node, "pipelines[0].source", PostgresKeys(), errors);
  const SourceFactory factory = ParsePostgresSource(section, "test");
  INFO(errors.ToString());
  REQUIRE(errors.empty());
  REQUIRE(factory);
  std::unique_ptr<Source> source = factory();
  CHECK(source->IdleWait() == std::chrono::milliseconds(250));
  CHECK(source->HealthCheck().ok());
  Checkpoint checkpoint;
  CHECK(Ops(Drain(*source, checkpoint)) == std::vector<std::string>{"-4", "+1", "-2", "+3"});
}

TEST_CASE("Postgres source reports a misconfigured table or column as invalid",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE configured (id int PRIMARY KEY, version int,"
       "  updated_at timestamptz NOT NULL DEFAULT now())");
  struct Case {
    std::string what;
    PostgresOptions options;
    std::string mentions;
  };
  std::vector<Case> cases;
  cases.push_back({"missing table", Options(pg, "no_such_table"), "no_such_table"});
  cases.push_back({"missing updated_at", Options(pg, "configured"), "changed_at"});
  cases.back().options.updated_at = "changed_at";
  cases.push_back({"missing key column", Options(pg, "configured"), "sku"});
  cases.back().options.primary_key = {"sku"};
  cases.push_back({"updated_at not a timestamp", Options(pg, "configured"), "integer"});
  cases.back().options.updated_at = "version";
  cases.push_back({"missing soft-delete column", Options(pg, "configured"), "is_gone"});
  cases.back().options.soft_delete_column = "is_gone";
  cases.push_back({"missing tombstone table", Options(pg, "configured"), "no_tombstones"});
  cases.back().options.tombstones = PostgresTombstoneOptions{
      .table = "no_tombstones", .id_column = "id", .deleted_at_column = "deleted_at"};
  cases.push_back({"bad query", Options(pg, ""), "syntax error"});
  cases.back().options.query = "SELEC id FROM configured";
  for (Case& c : cases) {
    INFO(c.what);
    auto source = MakePostgresSource(c.options);
    const Result<std::vector<Event>> polled = source->Poll(Checkpoint{}, 10);
    REQUIRE_FALSE(polled.ok());
    INFO(polled.status().ToString());
    CHECK(polled.status().code() == StatusCode::kInvalidArgument);
    CHECK(polled.status().message().find(c.mentions) != std::string::npos);
    const Status health = source->HealthCheck();
    CHECK(health.code() == StatusCode::kInvalidArgument);
  }

  SECTION("a checkpoint of another key shape is refused") {
    auto source = MakePostgresSource(Options(pg, "configured"));
    const Result<std::vector<Event>> polled = source->Poll(
        Checkpoint{EncodePostgresCursor({.rows = {"2026-01-01 00:00:00+00", "a", "b"}})}, 10);
    REQUIRE_FALSE(polled.ok());
    CHECK(polled.status().code() == StatusCode::kInvalidArgument);
  }
}

// A server in Europe/Berlin (UTC+1 in winter, +2 in summer), for the time-zone tests.
PostgresServer& BerlinServer() {
  static std::unique_ptr<PostgresServer> server = [] {
    auto started = PostgresServer::Start({.time_zone = "Europe/Berlin"});
    if (!started.ok()) FAIL("PostgreSQL did not start: " << started.status().ToString());
    return std::move(*started);
  }();
  return *server;
}

TEST_CASE("Postgres source writes timestamp values as RFC 3339 UTC, in the server's zone",
          "[integration][postgres][timezone]") {
  PostgresServer& pg = BerlinServer();
  // updated_at is in the past read as Berlin time or as UTC (the section below).
  Exec(pg, R"sql(
    DROP TABLE IF EXISTS zoned_values;
    CREATE TABLE zoned_values (id int PRIMARY KEY, updated_at timestamp NOT NULL,
                               winter timestamp, summer timestamp, forever timestamp,
                               never timestamp, several timestamp[], instant timestamptz);
    INSERT INTO zoned_values VALUES
      (1, now() - interval '3 hours', '2026-11-21 06:00:00.25', '2026-07-01 12:00:00',
       'infinity', '-infinity', ARRAY['2026-11-21 06:00:00', NULL, 'infinity']::timestamp[],
       '2026-11-21 06:00:00+01');
  )sql");
  auto source = MakePostgresSource(Options(pg, "zoned_values"));
  Checkpoint checkpoint;
  const std::vector<Event> events = Drain(*source, checkpoint);
  REQUIRE(events.size() == 1);
  CHECK(FieldJson(events[0], "winter") == R"("2026-11-21T05:00:00.25Z")");
  CHECK(FieldJson(events[0], "summer") == R"("2026-07-01T10:00:00Z")");
  CHECK(FieldJson(events[0], "forever") == "null");
  CHECK(FieldJson(events[0], "never") == "null");
  CHECK(FieldJson(events[0], "several") == R"(["2026-11-21T05:00:00Z",null,null])");
  CHECK(FieldJson(events[0], "instant") == R"("2026-11-21T05:00:00Z")");

  SECTION("updated_at_time_zone says the values are UTC already") {
    PostgresOptions options = Options(pg, "zoned_values");
    options.updated_at_time_zone = "UTC";
    auto utc_source = MakePostgresSource(options);
    Checkpoint utc_checkpoint;
    const std::vector<Event> utc_events = Drain(*utc_source, utc_checkpoint);
    REQUIRE(utc_events.size() == 1);
    CHECK(FieldJson(utc_events[0], "winter") == R"("2026-11-21T06:00:00.25Z")");
  }

  SECTION("a zone the server does not know is a configuration error naming the key") {
    PostgresOptions options = Options(pg, "zoned_values");
    options.updated_at_time_zone = "Mars/Olympus_Mons";
    auto bad_source = MakePostgresSource(options);
    const Result<std::vector<Event>> polled = bad_source->Poll(Checkpoint{}, 10);
    REQUIRE_FALSE(polled.ok());
    INFO(polled.status().ToString());
    CHECK(polled.status().code() == StatusCode::kInvalidArgument);
    CHECK(polled.status().message().find("updated_at_time_zone") != std::string::npos);
    CHECK(polled.status().message().find("Mars/Olympus_Mons") != std::string::npos);
  }
}

// An application that writes updated_at itself, in UTC (as Rails does), into a `timestamp`
// column on a server whose TimeZone is Europe/Berlin. Read as Berlin time its values look an
// hour or two old, and a late commit would fall behind the cursor.
TEST_CASE("Postgres source with updated_at_time_zone: UTC misses no change an application writes",
          "[integration][postgres][timezone]") {
  PostgresServer& pg = BerlinServer();
  Exec(pg, R"sql(
    CREATE TABLE app_utc (id int PRIMARY KEY, v text, updated_at timestamp NOT NULL);
    CREATE TABLE app_utc_deleted (id int NOT NULL, deleted_at timestamp NOT NULL);
    INSERT INTO app_utc SELECT i, 'first', clock_timestamp() AT TIME ZONE 'UTC'
      FROM generate_series(1, 5) AS i;
  )sql");
  PostgresOptions options = Options(pg, "app_utc");
  options.updated_at_time_zone = "UTC";
  options.tombstones = PostgresTombstoneOptions{.table = "app_utc_deleted",
                                                .id_column = "id",
                                                .deleted_at_column = "deleted_at",
                                                .deleted_at_time_zone = "UTC"};
  auto source = MakePostgresSource(options);
  Checkpoint checkpoint;
  CHECK(Ops(Drain(*source, checkpoint)) == std::vector<std::string>{"+1", "+2", "+3", "+4", "+5"});

  // The application updates row 1 and keeps its transaction open while another change commits.
  pqxx::connection app_connection(pg.dsn());
  auto app = std::make_unique<pqxx::work>(app_connection);
  app->exec(
      "UPDATE app_utc SET v = 'late', updated_at = clock_timestamp() AT TIME ZONE 'UTC'"
      " WHERE id = 1");
  Exec(pg,
       "UPDATE app_utc SET v = 'new', updated_at = clock_timestamp() AT TIME ZONE 'UTC'"
       " WHERE id = 2");
  CHECK(Drain(*source, checkpoint).empty());
  CHECK(Drain(*source, checkpoint).empty());
  app->commit();
  app.reset();
  std::vector<Event> events = Drain(*source, checkpoint);
  CHECK(Ops(events) == std::vector<std::string>{"+1", "+2"});
  REQUIRE(events.size() == 2);
  CHECK(FieldJson(events[0], "v") == "\"late\"");

  // A delete the application records, and a new row.
  Exec(pg,
       "DELETE FROM app_utc WHERE id = 3;"
       "INSERT INTO app_utc_deleted VALUES (3, clock_timestamp() AT TIME ZONE 'UTC');"
       "INSERT INTO app_utc VALUES (6, 'six', clock_timestamp() AT TIME ZONE 'UTC')");
  CHECK(Ops(Drain(*source, checkpoint)) == std::vector<std::string>{"-3", "+6"});
}

// Polls `source` until `wanted` ids arrived (or a generous deadline passed); returns every event.
std::vector<Event> DrainUntil(Source& source, Checkpoint& checkpoint,
                              const std::set<std::string>& wanted) {
  std::vector<Event> all;
  std::set<std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    for (Event& event : Drain(source, checkpoint)) {
      seen.insert(event.id);
      all.push_back(std::move(event));
    }
    if (std::includes(seen.begin(), seen.end(), wanted.begin(), wanted.end())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the poll interval
  }
  return all;
}

// The application writes updated_at from its own clock, 5 s behind the database's, and holds
// its transaction open while a row stamped by the database commits. Without a margin the cursor
// passes that row's time and the application's row, older still, is never read.
TEST_CASE("Postgres source with commit_margin misses no row from an application clock 5 s behind",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE app_clock (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL);"
       "INSERT INTO app_clock SELECT i, 'old', now() - interval '1 minute'"
       "  FROM generate_series(1, 3) AS i");
  PostgresOptions with_margin = Options(pg, "app_clock");
  with_margin.commit_margin = std::chrono::seconds(10);
  auto source = MakePostgresSource(with_margin);
  auto unprotected = MakePostgresSource(Options(pg, "app_clock"));  // commit_margin: 0s
  Checkpoint checkpoint;
  Checkpoint unprotected_checkpoint;
  REQUIRE(Drain(*source, checkpoint).size() == 3);
  REQUIRE(Drain(*unprotected, unprotected_checkpoint).size() == 3);

  Exec(pg, "INSERT INTO app_clock VALUES (10, 'database clock', now())");
  pqxx::connection app_connection(pg.dsn());
  auto app = std::make_unique<pqxx::work>(app_connection);
  app->exec(
      "INSERT INTO app_clock VALUES (20, 'application clock',"
      "  clock_timestamp() - interval '5 seconds')");
  CHECK(Drain(*source, checkpoint).empty());  // row 10 waits below the margin
  CHECK(Ids(Drain(*unprotected, unprotected_checkpoint)) == std::vector<std::string>{"10"});
  app->commit();
  app.reset();

  const std::vector<Event> events = DrainUntil(*source, checkpoint, {"10", "20"});
  CHECK(Ids(events) == std::vector<std::string>{"20", "10"});
  // The same change, read without the margin: lost.
  CHECK(Drain(*unprotected, unprotected_checkpoint).empty());
}

TEST_CASE("Postgres source warns about rows whose updated_at is ahead of the database clock",
          "[integration][postgres]") {
  PostgresServer& pg = SharedServer();
  Exec(pg,
       "CREATE TABLE ahead (id int PRIMARY KEY, updated_at timestamptz NOT NULL);"
       "INSERT INTO ahead VALUES (1, now() - interval '1 minute'),"
       "  (2, now() + interval '1 hour'), (3, now() + interval '90 seconds')");
  std::vector<std::string> logs;
  std::mutex logs_mutex;
  SetLogOutputForTest([&](std::string_view line) {
    std::lock_guard lock(logs_mutex);
    logs.emplace_back(line);
  });
  auto source = MakePostgresSource(Options(pg, "ahead"));
  Checkpoint checkpoint;
  const std::vector<Event> events = Drain(*source, checkpoint);
  SetLogOutputForTest({});
  CHECK(Ids(events) == std::vector<std::string>{"1"});  // the others are held
  std::string warning;
  for (const std::string& line : logs) {
    if (line.find("ahead of the database clock") != std::string::npos) warning = line;
  }
  INFO(warning);
  CHECK(warning.find("2 row(s) have updated_at ahead of the database clock, the furthest by 3") !=
        std::string::npos);
  CHECK(warning.find("held until the clock reaches them") != std::string::npos);

  // Once the clock is right, they come.
  Exec(pg, "UPDATE ahead SET updated_at = now() - interval '1 second' WHERE id > 1");
  CHECK(Ids(Drain(*source, checkpoint)) == std::vector<std::string>{"2", "3"});
}

TEST_CASE("Postgres source is unavailable while the server is down and resumes after",
          "[integration][postgres]") {
  auto started = PostgresServer::Start();
  REQUIRE(started.ok());
  PostgresServer& pg = **started;
  Exec(pg,
       "CREATE TABLE outage (id int PRIMARY KEY, updated_at timestamptz NOT NULL);"
       "INSERT INTO outage SELECT i, now() - interval '1 hour' + i * interval '1 s'"
       "  FROM generate_series(1, 5) AS i");
  PostgresOptions options = Options(pg, "outage");
  const std::string password = "pw-not-for-logs";
  options.dsn = Secret("postgresql://postgres:" + password +
                       "@127.0.0.1:" + std::to_string(pg.port()) + "/" + pg.database());
  auto source = MakePostgresSource(options);
  Checkpoint checkpoint;
  Result<std::vector<Event>> first = source->Poll(checkpoint, 3);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 3);
  checkpoint = first->back().position;

  REQUIRE(pg.Stop().ok());
  for (int attempt = 0; attempt < 2; ++attempt) {  // the lost connection, then a refused one
    const Result<std::vector<Event>> down = source->Poll(checkpoint, 3);
    REQUIRE_FALSE(down.ok());
    INFO(down.status().ToString());
    CHECK(down.status().code() == StatusCode::kUnavailable);
    CHECK(down.status().message().find(password) == std::string::npos);
  }
  CHECK(source->HealthCheck().code() == StatusCode::kUnavailable);

  REQUIRE(pg.Restart().ok());
  Exec(pg, "INSERT INTO outage VALUES (6, now() - interval '1 s')");
  const std::vector<Event> rest = Drain(*source, checkpoint);
  CHECK(Ids(rest) == std::vector<std::string>{"4", "5", "6"});
}

}  // namespace
}  // namespace searchsync
