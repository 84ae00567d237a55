// End-to-end: the Postgres source on schemas as production applications have them: `timestamp`
// columns on servers outside UTC, NULL updated_at, missing indexes, application clocks, and
// LISTEN/NOTIFY wake-ups.

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <pqxx/pqxx>
#include <string>

#include "tests/integration/sync_fixture.h"

namespace searchsync::test {
namespace {

using namespace std::chrono_literals;

// The fixture's products tables with `timestamp` (no zone) columns, as Rails-style schemas have
// them: now(), the default and the triggers write the session's, i.e. the server's, local time.
void UseTimestampColumns(SyncFixture& world) {
  world.Exec(
      "ALTER TABLE products ALTER COLUMN updated_at TYPE timestamp,"
      "  ALTER COLUMN updated_at SET DEFAULT now();"
      "ALTER TABLE deleted_products ALTER COLUMN deleted_at TYPE timestamp,"
      "  ALTER COLUMN deleted_at SET DEFAULT now()");
}

TEST_CASE("timestamp columns set by now() on servers east and west of UTC: nothing is missed",
          "[integration][e2e][postgres][timezone]") {
  const std::string zone = GENERATE(as<std::string>{}, "Asia/Tokyo", "America/New_York");
  INFO("server TimeZone " << zone);
  SyncFixture world({.pg_time_zone = zone});
  world.CreateProductsTable();
  UseTimestampColumns(world);
  world.InsertProducts(1, 20);
  world.WriteProductsConfig();

  // check says which zone it assumes.
  const CommandResult check = world.RunSearchsync({"check"});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.err.find("updated_at column \"updated_at\" is a timestamp without time zone; its "
                       "values are read as " +
                       zone + " time (the server's TimeZone") != std::string::npos);
  CHECK(check.err.find("deleted_at column \"deleted_at\" is a timestamp without time zone; its "
                       "values are read as " +
                       zone) != std::string::npos);

  // First sync: east of UTC the rows used to look like they were in the future.
  const CommandResult first = world.RunSearchsync({"run", "--once"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(world.IndexDocuments().size() == 20);
  CHECK(world.IndexMatchesProducts() == "");
  // Documents carry the instant in UTC (RFC 3339), not the local wall time.
  const std::string written = world.IndexDocuments().at("p-7")["updated_at"];
  CHECK(written.ends_with("Z"));
  const auto same_instant = world.pg().Query(
      "SELECT count(*) FROM products WHERE id = 'p-7' AND updated_at AT TIME ZONE '" + zone +
      "' = '" + written + "'::timestamptz");
  REQUIRE(same_instant.ok());
  CHECK((*same_instant)[0][0] == "1");

  // Live updates reach a running daemon.
  {
    auto daemon = world.StartDaemon();
    world.Exec("UPDATE products SET name = 'live ' || id WHERE id IN ('p-1', 'p-2', 'p-3')");
    world.InsertProducts(21, 5);
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
    CHECK(daemon->Stop() == 0);
  }

  // A transaction open across two polls commits rows older than rows synced meanwhile.
  pqxx::connection late_connection(world.pg().dsn());
  pqxx::work late(late_connection);
  late.exec("UPDATE products SET name = 'committed late' WHERE id = 'p-3'");
  world.InsertProducts(26, 5);
  world.Exec("UPDATE products SET name = 'updated after' WHERE id = 'p-4'");
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  late.commit();
  const CommandResult after_late = world.RunSearchsync({"run", "--once"});
  INFO(after_late.err);
  REQUIRE(after_late.exit_code == 0);
  CHECK(world.IndexDocuments().at("p-3")["name"] == "committed late");
  CHECK(world.IndexMatchesProducts() == "");

  // Tombstones (deleted_at from now() too) and soft deletes.
  world.Exec("DELETE FROM products WHERE id IN ('p-5', 'p-6', 'p-27')");
  world.Exec("UPDATE products SET is_deleted = true WHERE id = 'p-8'");
  const CommandResult deletes = world.RunSearchsync({"run", "--once"});
  INFO(deletes.err);
  REQUIRE(deletes.exit_code == 0);
  CHECK(world.IndexDocuments().size() == 26);
  CHECK(world.IndexMatchesProducts() == "");
}

// A column added to an existing table: the rows from before it have NULL.
TEST_CASE("rows whose updated_at is NULL are synced by the first sync and by a reindex",
          "[integration][e2e][postgres]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  world.Exec(
      "ALTER TABLE products ALTER COLUMN updated_at DROP NOT NULL;"
      "INSERT INTO products (id, name, price, popularity, updated_at) VALUES"
      "  ('null-1', 'no timestamp 1', 1, 1, NULL), ('null-2', 'no timestamp 2', 2, 2, NULL),"
      "  ('null-3', 'no timestamp 3', 3, 3, NULL)");
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 200ms }", "200ms");

  const CommandResult check = world.RunSearchsync({"check"});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.err.find("3 row(s) have updated_at \"updated_at\" NULL") != std::string::npos);
  CHECK(check.err.find("a later change to such a row is seen only once its updated_at is set") !=
        std::string::npos);

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexDocuments().size() == 13);
  CHECK(world.IndexMatchesProducts() == "");

  // A change that sets updated_at arrives like any other.
  world.Exec("UPDATE products SET name = 'stamped' WHERE id = 'null-2'");  // the trigger sets it
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexDocuments().at("null-2")["name"] == "stamped");

  // A reindex reads them again into the new collection.
  world.Exec(
      "INSERT INTO products (id, name, price, popularity, updated_at) VALUES"
      "  ('null-4', 'no timestamp 4', 4, 4, NULL)");
  const CommandResult reindex = world.RunSearchsync({"reindex", "products", "--wait"});
  INFO(reindex.out << reindex.err);
  REQUIRE(reindex.exit_code == 0);
  CHECK(world.IndexDocuments().size() == 14);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("check names a missing (updated_at, id) index and prints the CREATE INDEX that fixes it",
          "[integration][e2e][postgres]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  const std::string table_fix =
      "CREATE INDEX CONCURRENTLY ON \"products\" (\"updated_at\", \"id\");";
  const std::string tombstone_fix =
      "CREATE INDEX CONCURRENTLY ON \"deleted_products\" (\"deleted_at\", \"id\");";

  // The fixture's table has the index, its tombstone table has none.
  const CommandResult indexed = world.RunSearchsync({"check"});
  INFO(indexed.out << indexed.err);
  CHECK(indexed.exit_code == 0);
  CHECK(indexed.err.find(table_fix) == std::string::npos);
  CHECK(indexed.err.find("no index serves ORDER BY deleted_at, id") != std::string::npos);
  CHECK(indexed.err.find(tombstone_fix) != std::string::npos);

  world.Exec("DROP INDEX products_sync; CREATE INDEX ON deleted_products (deleted_at, id)");
  const CommandResult missing = world.RunSearchsync({"check"});
  INFO(missing.out << missing.err);
  CHECK(missing.exit_code == 0);  // advice, not a failure
  CHECK(missing.err.find("no index serves ORDER BY updated_at, id, so every page sorts the whole "
                         "table") != std::string::npos);
  CHECK(missing.err.find(table_fix) != std::string::npos);
  CHECK(missing.err.find(tombstone_fix) == std::string::npos);

  // run logs it once at start, and syncs all the same.
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  size_t mentions = 0;
  for (size_t at = run.err.find(table_fix); at != std::string::npos;
       at = run.err.find(table_fix, at + 1)) {
    ++mentions;
  }
  CHECK(mentions == 1);
  CHECK(world.IndexMatchesProducts() == "");

  // The statement it prints is the fix.
  world.Exec(table_fix.substr(0, table_fix.size() - 1));
  const CommandResult fixed = world.RunSearchsync({"check"});
  CHECK(fixed.err.find("no index serves") == std::string::npos);
}

// The products pipeline with notify_channel and a poll_interval no test waits out, and the
// trigger that notifies.
void UseNotifications(SyncFixture& world) {
  world.Exec(R"sql(
    CREATE FUNCTION notify_products_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('products_changed', ''); RETURN NULL; END $$;
    CREATE TRIGGER products_notify AFTER INSERT OR UPDATE OR DELETE ON products
      FOR EACH STATEMENT EXECUTE FUNCTION notify_products_changed();
  )sql");
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "60s");
  std::ifstream in(world.config_path());
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string poll = "      poll_interval: 60s\n";
  REQUIRE(config.find(poll) != std::string::npos);
  config.insert(config.find(poll) + poll.size(), "      notify_channel: products_changed\n");
  world.WriteConfig(config);
}

// Well below poll_interval (60s): a change that arrives this fast was woken by its notification.
constexpr auto kWellBeforeTheFallbackPoll = 20s;

TEST_CASE("with notify_channel a committed change is searchable at once, not after poll_interval",
          "[integration][e2e][postgres][notify]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  UseNotifications(world);
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));

  for (int change = 1; change <= 3; ++change) {
    const std::string name = "notified " + std::to_string(change);
    world.Exec("UPDATE products SET name = '" + name + "' WHERE id = 'p-" + std::to_string(change) +
               "'");
    world.InsertProducts(100 + change, 1);
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); },
                    kWellBeforeTheFallbackPoll));
  }
  world.Exec("DELETE FROM products WHERE id = 'p-9'");  // the tombstone arrives the same way
  CHECK(
      WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, kWellBeforeTheFallbackPoll));
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("with notify_channel a killed listening connection is re-established, no change is lost",
          "[integration][e2e][postgres][notify]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  UseNotifications(world);
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
  const auto listener_pid = [&]() -> std::string {
    auto rows = world.pg().Query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'searchsync-listen'");
    return rows.ok() && rows->size() == 1 && (*rows)[0][0] ? *(*rows)[0][0] : "";
  };
  REQUIRE(WaitUntil([&] { return !listener_pid().empty(); }, 60s));

  for (int kill = 1; kill <= 2; ++kill) {
    const std::string killed = listener_pid();
    world.Exec("SELECT pg_terminate_backend(" + killed + ")");
    // Committed while nobody may be listening: the poll after the reconnect reads it.
    world.Exec("UPDATE products SET name = 'after kill " + std::to_string(kill) +
               "' WHERE id = 'p-" + std::to_string(kill) + "'");
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); },
                    kWellBeforeTheFallbackPoll));
    // A new listener, and changes after it still wake the source.
    REQUIRE(WaitUntil([&] { return !listener_pid().empty() && listener_pid() != killed; }, 60s));
    world.InsertProducts(100 + kill, 1);
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); },
                    kWellBeforeTheFallbackPoll));
  }
  CHECK(daemon->Stop() == 0);
  CHECK(daemon->ReadStderr().find("lost the connection listening on notify_channel") !=
        std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
