// Backups, restores and snapshots, end to end: the searchsync binary against the Typesense test
// server, a local directory and npm's s3rver.

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "pipeline/app/s3_client.h"
#include "tests/integration/sync_fixture.h"
#include "tests/support/s3_server.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSchemaYaml[] = R"(
      schema:
        fields:
          - { name: name, type: string }
          - { name: price, type: float }
          - { name: tags, type: "string[]" }
          - { name: popularity, type: int32 }
        default_sorting_field: popularity)";

// A config with one `products` pipeline whose source is never contacted by backup or restore.
std::string ProductsConfig(const TempDir& dir, const std::string& typesense_url,
                           const std::string& extra_top = "",
                           const std::string& extra_pipeline = "",
                           const std::string& schema_yaml = kSchemaYaml) {
  return "typesense:\n  nodes: [\"" + typesense_url + "\"]\n  api_key: test-key\n" +
         "  retry: { initial_backoff: 50ms, max_backoff: 1s, max_elapsed: 20s }\n" +
         "state:\n  path: " + (dir / "state") + "\n" + extra_top +
         "pipelines:\n  - name: products\n    source:\n      type: postgres\n"
         "      dsn: postgresql://127.0.0.1:1/unused\n      table: products\n"
         "      primary_key: id\n      updated_at: updated_at\n"
         "    sink:\n      collection: products" +
         schema_yaml + "\n" + extra_pipeline;
}

std::string S3Yaml(const S3Server& s3) {
  return "s3:\n  endpoint: " + s3.url() +
         "\n  region: us-east-1\n  access_key_id: " + S3Server::kAccessKeyId +
         "\n  secret_access_key: ${S3_SECRET}\n";
}

CommandResult RunCli(std::vector<std::string> args, const std::string& config) {
  std::vector<std::string> argv = {SEARCHSYNC_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("-c");
  argv.push_back(config);
  auto process = ServerProcess::Start(
      {.argv = argv, .env = {std::string("S3_SECRET=") + S3Server::kSecretAccessKey}});
  if (!process.ok()) FAIL("searchsync: " << process.status().message());
  const std::optional<int> code = (*process)->Wait(std::chrono::minutes(5));
  if (!code) FAIL("searchsync did not finish in time: " << (*process)->Describe());
  return {*code, (*process)->ReadStdout(), (*process)->ReadStderr()};
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

httplib::Result Request(const TypesenseServer& server, const std::string& method,
                        const std::string& path, const std::string& body = "") {
  httplib::Client client(server.url());
  client.set_read_timeout(120);
  httplib::Headers headers = {{"X-TYPESENSE-API-KEY", server.api_key()}};
  if (method == "POST") return client.Post(path, headers, body, "application/json");
  if (method == "PUT") return client.Put(path, headers, body, "application/json");
  return client.Get(path, headers);
}

// Creates products_20260101T000000Z with `count` documents and points the alias at it.
void SeedProducts(const TypesenseServer& server, int count) {
  const json schema = {{"name", "products_20260101T000000Z"},
                       {"fields",
                        {{{"name", "name"}, {"type", "string"}},
                         {{"name", "price"}, {"type", "float"}},
                         {{"name", "tags"}, {"type", "string[]"}},
                         {{"name", "popularity"}, {"type", "int32"}}}},
                       {"default_sorting_field", "popularity"}};
  auto created = Request(server, "POST", "/collections", schema.dump());
  REQUIRE(created);
  REQUIRE(created->status == 201);
  constexpr int kBatch = 10'000;
  for (int first = 0; first < count; first += kBatch) {
    std::string body;
    for (int i = first; i < std::min(count, first + kBatch); ++i) {
      body += json{{"id", "p-" + std::to_string(i)},
                   {"name", "product \"" + std::to_string(i) + "\" ü"},
                   {"price", (i % 1000) + 0.99},
                   {"tags", {"tag" + std::to_string(i % 7), "all"}},
                   {"popularity", i}}
                  .dump() +
              "\n";
    }
    auto imported =
        Request(server, "POST",
                "/collections/products_20260101T000000Z/documents/import?action=upsert", body);
    REQUIRE(imported);
    REQUIRE(imported->status == 200);
    REQUIRE(imported->body.find("\"success\":false") == std::string::npos);
  }
  auto aliased = Request(server, "PUT", "/aliases/products",
                         json{{"collection_name", "products_20260101T000000Z"}}.dump());
  REQUIRE(aliased);
  REQUIRE(aliased->status == 200);
}

// The backups of `products` under a directory location, oldest first.
std::vector<std::string> BackupDirs(const std::string& location) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(location + "/products", ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string OnlyBackup(const std::string& location) {
  const std::vector<std::string> names = BackupDirs(location);
  REQUIRE(names.size() == 1);
  return location + "/products/" + names[0];
}

// A Typesense server whose `products` alias holds `count` seeded documents, a config for it, and
// one backup of them in a directory: where restore tests start.
struct BackedUpProducts {
  explicit BackedUpProducts(int count) : server({}) {
    SeedProducts(server, count);
    WriteFile(config, ProductsConfig(dir, server.url()));
    REQUIRE(RunCli({"backup", "products", "--to", backups}, config).exit_code == 0);
  }

  TempDir dir;
  TypesenseServer server;
  const std::string config = dir / "config.yaml";
  const std::string backups = dir / "backups";
};

}  // namespace

TEST_CASE(
    "A backup of 100,000 documents to a directory and to S3 restores into an empty "
    "Typesense equal to the original, with the alias on it",
    "[integration][backup]") {
  TempDir dir;
  auto s3 = S3Server::Start("backups");
  REQUIRE(s3.ok());
  TypesenseServer original({});
  constexpr int kDocuments = 100'000;
  SeedProducts(original, kDocuments);
  const auto originals = *original.Documents("products");
  REQUIRE(originals.size() == kDocuments);

  const std::string config = dir / "original.yaml";
  WriteFile(config, ProductsConfig(dir, original.url(), S3Yaml(**s3)));
  const std::string backups = dir / "backups";
  const CommandResult to_dir = RunCli({"backup", "products", "--to", backups}, config);
  REQUIRE(to_dir.exit_code == 0);
  CHECK(to_dir.out.find("100000 documents") != std::string::npos);
  const CommandResult to_s3 =
      RunCli({"backup", "products", "--to", "s3://backups/nightly"}, config);
  INFO(to_s3.err);
  REQUIRE(to_s3.exit_code == 0);

  const std::string backup = OnlyBackup(backups);
  std::ifstream manifest_file(backup + "/manifest.json");
  const json manifest = json::parse(manifest_file);
  CHECK(manifest["documents"] == kDocuments);
  CHECK(manifest["collection"] == "products_20260101T000000Z");
  CHECK(manifest["schema"]["fields"].size() == 4);
  CHECK_FALSE(manifest["schema"].contains("name"));
  CHECK(manifest["sha256"].get<std::string>().size() == 64);
  CHECK(manifest["compressed_bytes"] == fs::file_size(backup + "/documents.jsonl.gz"));
  const std::vector<std::string> keys = (*s3)->Keys("nightly/products/");
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].ends_with("/documents.jsonl.gz"));
  CHECK(keys[1].ends_with("/manifest.json"));

  for (const std::string& source : {backups, std::string("s3://backups/nightly")}) {
    INFO("restored from " << source);
    TypesenseServer empty({});
    const std::string restore_config = dir / "restore.yaml";
    WriteFile(restore_config, ProductsConfig(dir, empty.url(), S3Yaml(**s3)));
    const CommandResult restored =
        RunCli({"restore", "products", "--from", source}, restore_config);
    INFO(restored.err);
    REQUIRE(restored.exit_code == 0);
    const auto aliases = empty.Aliases();
    REQUIRE(aliases.count("products") == 1);
    CHECK(aliases.at("products").starts_with("products_"));
    CHECK(empty.CollectionNames() == std::vector<std::string>{aliases.at("products")});
    const auto documents = empty.Documents("products");
    REQUIRE(documents);
    CHECK(documents->size() == kDocuments);
    CHECK(*documents == originals);
  }
}

TEST_CASE("A restore never interrupts searches through the alias", "[integration][backup]") {
  BackedUpProducts world(20'000);
  TypesenseServer& server = world.server;
  const std::string &config = world.config, &backups = world.backups;

  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::atomic<int> failures{0};
  std::string first_failure;
  std::thread reader([&] {
    httplib::Client client(server.url());
    const httplib::Headers headers = {{"X-TYPESENSE-API-KEY", server.api_key()}};
    while (!done) {
      auto answer = client.Get("/collections/products/documents/search?q=*&per_page=1", headers);
      const bool ok = answer && answer->status == 200 &&
                      json::parse(answer->body, nullptr, false).value("found", 0) == 20'000;
      if (!ok && failures++ == 0) {
        first_failure = answer ? std::to_string(answer->status) + " " + answer->body : "no answer";
      }
      ++searches;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const CommandResult restored = RunCli({"restore", "products", "--from", backups}, config);
  const int during = searches.load();
  // A few more searches after the swap.
  WaitUntil([&] { return searches.load() >= during + 5; }, 10s);
  done = true;
  reader.join();
  INFO(restored.err);
  REQUIRE(restored.exit_code == 0);
  INFO(first_failure);
  CHECK(failures == 0);
  CHECK(searches >= 5);
  CHECK(server.Aliases().at("products") != "products_20260101T000000Z");
}

TEST_CASE("kill -9 during a restore: the next start drops the half-restored collection",
          "[integration][backup][leftovers]") {
  BackedUpProducts world(20'000);
  TypesenseServer& server = world.server;
  const std::string &config = world.config, &backups = world.backups;
  const std::string live = server.Aliases().at("products");

  // Slowed so it is killed while it fills the new collection: the first of its two imports
  // (10,000 documents each) has landed, the second waits.
  server.SetLatency(2s);
  auto restore = ServerProcess::Start(
      {.argv = {SEARCHSYNC_BINARY, "restore", "products", "--from", backups, "-c", config}});
  REQUIRE(restore.ok());
  std::string half_restored;
  REQUIRE(WaitUntil(
      [&] {
        for (const std::string& name : server.CollectionNames()) {
          const auto documents = server.Documents(name);
          if (name != live && documents && !documents->empty()) half_restored = name;
        }
        return !half_restored.empty();
      },
      1min));
  (*restore)->Kill9();
  server.SetLatency(0ms);
  const auto documents = server.Documents(half_restored);
  REQUIRE(documents);
  CHECK(documents->size() < 20'000);  // killed mid-way
  CHECK(server.Aliases().at("products") == live);

  // The next start of the daemon drops it before anything else (its database is unreachable
  // here, so the pipeline then keeps retrying: the drop does not depend on the source).
  auto daemon = ServerProcess::Start({.argv = {SEARCHSYNC_BINARY, "run", "-c", config}});
  REQUIRE(daemon.ok());
  const bool dropped = WaitUntil(
      [&] {
        return (*daemon)->ReadStderr().find("dropped collection " + half_restored) !=
               std::string::npos;
      },
      1min);
  INFO((*daemon)->ReadStderr());
  REQUIRE(dropped);
  CHECK(server.CollectionNames() == std::vector<std::string>{live});
  CHECK(server.Aliases().at("products") == live);
}

TEST_CASE("Truncated, corrupt and mismatched backups are refused and the alias stays",
          "[integration][backup]") {
  BackedUpProducts world(5'000);
  const TempDir& dir = world.dir;
  TypesenseServer& server = world.server;
  const std::string &config = world.config, &backups = world.backups;
  const std::string backup = OnlyBackup(backups);
  const std::string documents = backup + "/documents.jsonl.gz";
  const auto size = fs::file_size(documents);
  const auto collections_before = server.CollectionNames();
  const auto aliases_before = server.Aliases();

  auto refused = [&](const CommandResult& result) {
    INFO(result.err);
    CHECK(result.exit_code == 1);
    CHECK(server.Aliases() == aliases_before);
    CHECK(server.CollectionNames() == collections_before);  // the new collection was dropped
  };

  SECTION("a truncated file") {
    fs::resize_file(documents, size / 2);
    const CommandResult result = RunCli({"restore", "products", "--from", backup}, config);
    refused(result);
    CHECK(result.err.find(documents) != std::string::npos);
    CHECK(result.err.find("truncated") != std::string::npos);
  }
  SECTION("a wrong checksum") {
    std::fstream file(documents, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 2));
    file.put('\x5a');
    file.close();
    const CommandResult result = RunCli({"restore", "products", "--from", backup}, config);
    refused(result);
    CHECK(result.err.find(documents) != std::string::npos);
    CHECK(result.err.find("SHA-256") != std::string::npos);
  }
  SECTION("a manifest that is not JSON") {
    WriteFile(backup + "/manifest.json", "{\"format\": \"searchsync-backup/1\", \"documents\": ");
    const CommandResult result = RunCli({"restore", "products", "--from", backup}, config);
    refused(result);
    CHECK(result.err.find(backup + "/manifest.json") != std::string::npos);
  }
  SECTION("a schema mismatch, unless the backup's schema is asked for") {
    const std::string changed = dir / "changed.yaml";
    WriteFile(changed, ProductsConfig(dir, server.url(), "", "", R"(
      schema:
        fields:
          - { name: name, type: string }
          - { name: price, type: string }
          - { name: tags, type: "string[]" }
          - { name: popularity, type: int32 }
        default_sorting_field: popularity)"));
    const CommandResult result = RunCli({"restore", "products", "--from", backup}, changed);
    refused(result);
    CHECK(result.err.find(backup + "/manifest.json") != std::string::npos);
    CHECK(result.err.find("price") != std::string::npos);
    CHECK(result.err.find("--use-backup-schema") != std::string::npos);

    const CommandResult forced =
        RunCli({"restore", "products", "--from", backup, "--use-backup-schema"}, changed);
    INFO(forced.err);
    CHECK(forced.exit_code == 0);
    CHECK(server.Aliases().at("products") != aliases_before.at("products"));
    CHECK(server.Documents("products")->size() == 5'000);
  }
}

TEST_CASE(
    "A restore with --rewind-checkpoint, then run --once, brings back every change made "
    "after the backup",
    "[integration][backup]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 3'000);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.IndexMatchesProducts() == "");
  const std::string backups = world.dir() / "backups";
  const CommandResult backed_up = world.RunSearchsync({"backup", "products", "--to", backups});
  INFO(backed_up.err);
  REQUIRE(backed_up.exit_code == 0);

  // Changes after the backup: updates, a soft delete, a hard delete (tombstone), inserts.
  world.Exec(
      "UPDATE products SET name = 'renamed ' || id, price = price + 1 "
      "WHERE id IN ('p-1', 'p-2', 'p-3')");
  world.Exec("UPDATE products SET is_deleted = true WHERE id = 'p-10'");
  world.Exec("DELETE FROM products WHERE id = 'p-11'");
  world.InsertProducts(3'001, 500);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.IndexMatchesProducts() == "");

  // A restore alone brings the index back to the backup, and the checkpoint stays past the
  // changes: run --once has nothing to send, the index stays behind the table.
  REQUIRE(world.RunSearchsync({"restore", "products", "--from", backups}).exit_code == 0);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexMatchesProducts() != "");

  // While `run` holds the state, a rewind is refused and nothing moves. The daemon takes its
  // lock before it makes any request, so its first alias lookup shows it holds it.
  world.typesense().ResetCounters();
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil(
      [&] { return world.typesense().Counters().Requests(TypesenseRoute::kAlias) > 0; }, 20s));
  const auto alias_before = world.typesense().Aliases().at("products");
  const CommandResult locked =
      world.RunSearchsync({"restore", "products", "--from", backups, "--rewind-checkpoint"});
  CHECK(locked.exit_code == 1);
  CHECK(locked.err.find("searchsync run holds") != std::string::npos);
  CHECK(world.typesense().Aliases().at("products") == alias_before);
  REQUIRE(daemon->Stop() == 0);

  const CommandResult rewound =
      world.RunSearchsync({"restore", "products", "--from", backups, "--rewind-checkpoint"});
  INFO(rewound.err);
  REQUIRE(rewound.exit_code == 0);
  CHECK(rewound.out.find("checkpoint") != std::string::npos);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("Retention keeps exactly backup.keep backups, in a directory and in S3",
          "[integration][backup]") {
  TempDir dir;
  auto s3 = S3Server::Start("backups");
  REQUIRE(s3.ok());
  TypesenseServer server({});
  SeedProducts(server, 100);

  SECTION("directory") {
    const std::string backups = dir / "backups";
    const std::string config = dir / "config.yaml";
    WriteFile(config, ProductsConfig(dir, server.url(), "",
                                     "    backup: { to: " + backups + ", keep: 2 }\n"));
    // An unfinished backup from long ago: retention removes it too.
    fs::create_directories(backups + "/products/20200101T000000.000Z");
    WriteFile(backups + "/products/20200101T000000.000Z/documents.jsonl.gz", "partial");
    // Something that is not a backup is never touched.
    fs::create_directories(backups + "/products/notes");
    std::vector<std::string> made;
    for (int i = 0; i < 4; ++i) {
      const CommandResult result = RunCli({"backup", "products"}, config);
      INFO(result.err);
      REQUIRE(result.exit_code == 0);
      made.push_back(BackupDirs(backups).at(BackupDirs(backups).size() - 2));  // before "notes"
    }
    std::vector<std::string> expected = {made[2], made[3], "notes"};
    CHECK(BackupDirs(backups) == expected);
  }
  SECTION("S3") {
    const std::string config = dir / "config.yaml";
    WriteFile(config, ProductsConfig(dir, server.url(), S3Yaml(**s3),
                                     "    backup: { to: \"s3://backups/daily\", keep: 2 }\n"));
    for (int i = 0; i < 3; ++i) {
      const CommandResult result = RunCli({"backup", "products"}, config);
      INFO(result.err);
      REQUIRE(result.exit_code == 0);
    }
    std::set<std::string> backups;
    for (const std::string& key : (*s3)->Keys("daily/products/")) {
      backups.insert(key.substr(0, key.rfind('/')));
    }
    CHECK(backups.size() == 2);
    CHECK((*s3)->Keys("daily/products/").size() == 4);
  }
}

TEST_CASE("run takes scheduled backups and snapshots, counted in metrics, status lists the backups",
          "[integration][backup]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 200);
  world.WriteProductsConfig();
  const std::string backups = world.dir() / "backups";
  const std::string snapshots = world.dir() / "snapshots";
  std::ifstream written(world.config_path());
  const std::string config((std::istreambuf_iterator<char>(written)),
                           std::istreambuf_iterator<char>());
  world.WriteConfig("snapshot: { path: " + snapshots + ", schedule: \"* * * * *\" }\n" +
                    "admin: { listen: \"127.0.0.1:0\" }\n" + config +
                    "    backup: { to: " + backups + ", schedule: \"* * * * *\", keep: 3 }\n");
  auto daemon = world.StartDaemon();
  const int admin_port = AdminPort(*daemon);
  // The schedule fires at the next whole minute: the first backup lands within about 60 s.
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().size() == 200; }, 30s));
  const bool backed_up = WaitUntil(
      [&] {
        for (const std::string& name : BackupDirs(backups)) {
          if (fs::exists(backups + "/products/" + name + "/manifest.json")) return true;
        }
        return false;
      },
      90s, 200ms);
  INFO(daemon->ReadStderr());
  REQUIRE(backed_up);
  CHECK(WaitUntil([&] { return fs::exists(snapshots + "/state/snapshot"); }, 10s));
  std::string metrics;
  CHECK(WaitUntil(
      [&] {
        httplib::Client admin("127.0.0.1", admin_port);
        auto answer = admin.Get("/metrics");
        metrics = answer ? answer->body : "";
        return metrics.find(
                   "searchsync_scheduled_backups_total{job=\"products\",result=\"ok\"} 1") !=
                   std::string::npos &&
               metrics.find(
                   "searchsync_scheduled_backups_total{job=\"snapshot\",result=\"ok\"} 1") !=
                   std::string::npos;
      },
      10s));
  INFO(metrics);
  CHECK(metrics.find("searchsync_scheduled_backups_total{job=\"products\",result=\"failed\"} 0") !=
        std::string::npos);
  const std::optional<int> stopped = daemon->Stop();
  INFO(daemon->Describe());
  REQUIRE(stopped == 0);
  const std::string backup = backups + "/products/" + BackupDirs(backups).front();
  std::ifstream manifest_file(backup + "/manifest.json");
  const json manifest = json::parse(manifest_file);
  CHECK(manifest["documents"] == 200);
  CHECK_FALSE(manifest["checkpoint"].get<std::string>().empty());

  const CommandResult status = world.RunSearchsync({"status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("products backups: 1 in " + backups + ", newest " +
                        BackupDirs(backups).front()) != std::string::npos);
}

TEST_CASE("The S3 client uploads a large file in parts and reads it back",
          "[integration][backup]") {
  TempDir dir;
  auto s3 = S3Server::Start("backups");
  REQUIRE(s3.ok());
  S3Client client({.endpoint = (*s3)->url(),
                   .access_key_id = Secret(S3Server::kAccessKeyId),
                   .secret_access_key = Secret(S3Server::kSecretAccessKey),
                   .multipart_threshold = 6 << 20,
                   .part_size = 5 << 20});
  std::string data;
  for (int i = 0; data.size() < (13 << 20); ++i) data += "line " + std::to_string(i) + "\n";
  WriteFile(dir / "big", data);
  REQUIRE(client.PutFile("backups", "big/file", dir / "big").ok());
  REQUIRE(client.GetToFile("backups", "big/file", dir / "back").ok());
  std::ifstream back(dir / "back", std::ios::binary);
  const std::string read((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
  CHECK(read.size() == data.size());
  CHECK(read == data);
  const auto listed = client.List("backups", "big/");
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<std::string>{"big/file"});
  REQUIRE(client.Delete("backups", "big/file").ok());
  CHECK(client.GetBytes("backups", "big/file").status().code() == StatusCode::kNotFound);
}

TEST_CASE("searchsync snapshot asks Typesense for a server-side snapshot and reports it",
          "[integration][backup]") {
  TempDir dir;
  TypesenseServer server({});
  SeedProducts(server, 10);
  const std::string config = dir / "config.yaml";
  WriteFile(config, ProductsConfig(dir, server.url()));
  const CommandResult taken = RunCli({"snapshot", "--path", dir / "snap"}, config);
  INFO(taken.err);
  REQUIRE(taken.exit_code == 0);
  CHECK(taken.out.find(dir / "snap") != std::string::npos);
  CHECK(fs::exists(dir / "snap/state/snapshot"));
  CHECK(RunCli({"snapshot", "--path", "relative/dir"}, config).exit_code == 2);
}

}  // namespace searchsync::test
