#include "tests/integration/sync_fixture.h"

#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/prometheus_text.h"

namespace searchsync::test {

using namespace std::chrono_literals;

SyncFixture::SyncFixture(SyncFixtureOptions options) : options_(options) {
  auto pg =
      PostgresServer::Start({.time_zone = options_.pg_time_zone, .encoding = options_.pg_encoding});
  if (!pg.ok()) FAIL("postgres: " << pg.status().message());
  pg_ = std::move(*pg);
  typesense_ = std::make_unique<TypesenseServer>(
      TypesenseServerOptions{.api_key = options_.api_key, .discard = options_.discard});
}

void SyncFixture::Exec(const std::string& sql) {
  const Status status = pg_->Exec(sql);
  if (!status.ok()) FAIL("SQL failed: " << status.message() << "\n" << sql);
}

void SyncFixture::CreateProductsTable() {
  Exec(R"sql(
    CREATE TABLE products (
      id text PRIMARY KEY,
      name text NOT NULL,
      price numeric(10,2) NOT NULL,
      tags text[] NOT NULL DEFAULT '{}',
      popularity int NOT NULL,
      internal_notes text,
      is_deleted boolean NOT NULL DEFAULT false,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX products_sync ON products (updated_at, id);
    CREATE TABLE deleted_products (id text NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now());
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
    CREATE TRIGGER products_touch BEFORE UPDATE ON products FOR EACH ROW EXECUTE FUNCTION touch();
    CREATE FUNCTION record_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO deleted_products(id) VALUES (OLD.id); RETURN OLD; END $$;
    CREATE TRIGGER products_tombstone AFTER DELETE ON products FOR EACH ROW
      EXECUTE FUNCTION record_delete();
  )sql");
}

void SyncFixture::InsertProducts(int first, int count) {
  Exec(
      "INSERT INTO products (id, name, price, tags, popularity, internal_notes) "
      "SELECT 'p-' || g, 'product ' || g, (g % 1000) + 0.99, ARRAY['tag' || (g % 7), 'all'], "
      "g % 100000, 'secret note' FROM generate_series(" +
      std::to_string(first) + ", " + std::to_string(first + count - 1) + ") AS g");
}

void SyncFixture::WriteConfig(const std::string& yaml) { std::ofstream(config_path()) << yaml; }

std::string SyncFixture::ReadConfig() const {
  std::ifstream in(config_path());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void SyncFixture::ReplaceInConfig(const std::string& from, const std::string& to) {
  std::string yaml = ReadConfig();
  const size_t at = yaml.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(yaml.find(from, at + 1) == std::string::npos);
  WriteConfig(yaml.replace(at, from.size(), to));
}

void SyncFixture::WriteProductsConfig(const std::string& sink_batch_yaml,
                                      const std::string& poll_interval,
                                      const std::string& api_key) {
  WriteConfig(R"(typesense:
  nodes: ["${TYPESENSE_URL}"]
  api_key: )" +
              api_key + R"(
  retry: { initial_backoff: 50ms, max_backoff: 1s }
state:
  path: )" + (dir_ / "state") +
              R"(
pipelines:
  - name: products
    source:
      type: postgres
      dsn: ${PG_DSN}
      table: products
      primary_key: id
      updated_at: updated_at
      poll_interval: )" +
              poll_interval + R"(
      page_size: 2000
      deletes:
        soft_delete_column: is_deleted
        tombstone_table: { table: deleted_products, id_column: id, deleted_at_column: deleted_at }
    transforms:
      - drop: [internal_notes, is_deleted]
      - cast: { price: float }
    sink:
      collection: products
      schema:
        fields:
          - { name: name, type: string }
          - { name: price, type: float }
          - { name: tags, type: "string[]" }
          - { name: popularity, type: int32 }
        default_sorting_field: popularity
      batch: )" +
              sink_batch_yaml + R"(
      concurrency: 2
)");
}

void SyncFixture::EnableAdmin() {
  std::ofstream(config_path(), std::ios::app) << "admin:\n  listen: 127.0.0.1:0\n";
}

int AdminPort(ServerProcess& daemon) {
  const int port = WaitForLoggedPort(daemon, "admin API listening on 127.0.0.1:", 60s);
  if (port == 0) FAIL("the daemon logged no admin port: " << daemon.Describe());
  return port;
}

double AdminMetric(int port, const std::string& key) {
  httplib::Client admin("127.0.0.1", port);
  admin.set_read_timeout(30, 0);
  const auto answer = admin.Get("/metrics");
  if (!answer || answer->status != 200) return -1;
  return ParsePrometheus(answer->body).Value(key);
}

std::vector<std::string> SyncFixture::Env() const {
  return {"PG_DSN=" + pg_->dsn(), "TYPESENSE_URL=" + typesense_->url(),
          "TYPESENSE_API_KEY=" + typesense_->api_key()};
}

CommandResult SyncFixture::RunSearchsync(std::vector<std::string> args,
                                         std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {SEARCHSYNC_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("-c");
  argv.push_back(config_path());
  auto process = ServerProcess::Start({.argv = argv, .env = Env()});
  if (!process.ok()) FAIL("searchsync: " << process.status().message());
  const std::optional<int> code = (*process)->Wait(timeout);
  if (!code) FAIL("searchsync did not finish in time: " << (*process)->Describe());
  return {*code, (*process)->ReadStdout(), (*process)->ReadStderr()};
}

std::unique_ptr<ServerProcess> SyncFixture::StartDaemon(std::vector<std::string> extra_args) {
  std::vector<std::string> argv = {SEARCHSYNC_BINARY, "run", "-c", config_path()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto process = ServerProcess::Start({.argv = argv, .env = Env()});
  if (!process.ok()) FAIL("searchsync: " << process.status().message());
  return std::move(*process);
}

std::map<std::string, nlohmann::json> SyncFixture::IndexDocuments() {
  return typesense_->Documents("products").value_or(std::map<std::string, nlohmann::json>{});
}

std::string SyncFixture::IndexMatchesProducts() {
  auto rows = pg_->Query(
      "SELECT id, name, price::float8::text, array_to_json(tags)::text, popularity::text "
      "FROM products WHERE NOT is_deleted ORDER BY id");
  if (!rows.ok()) return "query failed: " + rows.status().message();
  const auto documents = IndexDocuments();
  std::ostringstream diff;
  int differences = 0;
  auto report = [&](const std::string& text) {
    if (++differences <= 10) diff << text << "\n";
  };
  std::set<std::string> seen;
  for (const auto& row : *rows) {
    const std::string id = *row[0];
    seen.insert(id);
    const auto it = documents.find(id);
    if (it == documents.end()) {
      report("missing document " + id);
      continue;
    }
    const nlohmann::json& doc = it->second;
    const bool same =
        doc.value("name", "") == *row[1] && doc.contains("price") && doc["price"].is_number() &&
        std::fabs(doc["price"].get<double>() - std::stod(*row[2])) < 1e-6 &&
        doc.value("tags", nlohmann::json()) == nlohmann::json::parse(*row[3]) &&
        doc.value("popularity", -1) == std::stoi(*row[4]) && !doc.contains("internal_notes");
    if (!same) report("document " + id + " differs: " + doc.dump() + " vs row name=" + *row[1]);
  }
  for (const auto& [id, doc] : documents) {
    if (!seen.count(id)) report("extra document " + id + ": " + doc.dump());
  }
  if (differences == 0) return "";
  diff << differences << " difference(s); " << rows->size() << " rows, " << documents.size()
       << " documents";
  return diff.str();
}

int64_t ProcessRssKiB(int pid, bool peak) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string key = peak ? "VmHWM:" : "VmRSS:";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  }
  return -1;
}

}  // namespace searchsync::test
