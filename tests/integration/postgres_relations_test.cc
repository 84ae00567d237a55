// End-to-end: documents built by a query from several tables (categories, brands as a nested
// object, many-to-many tags, a price table) stay equal to the query's result when any of those
// tables changes, through `relations`.

#include <catch2/catch.hpp>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "pipeline/state_store.h"
#include "tests/integration/sync_fixture.h"

namespace searchsync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr char kQuery[] = R"(SELECT p.id, p.name, p.updated_at, c.name AS category,
         json_build_object('name', b.name, 'country', b.country) AS brand,
         coalesce(t.tags, '{}') AS tags,
         coalesce(t.tag_objects, '[]') AS tag_objects,
         pr.amount AS price
  FROM products p
  JOIN categories c ON c.id = p.category_id
  LEFT JOIN brands b ON b.id = p.brand_id
  LEFT JOIN prices pr ON pr.product_id = p.id
  LEFT JOIN LATERAL (SELECT array_agg(tg.name ORDER BY tg.name) AS tags,
                            json_agg(json_build_object('name', tg.name) ORDER BY tg.name)
                              AS tag_objects
                     FROM product_tags pt JOIN tags tg ON tg.id = pt.tag_id
                     WHERE pt.product_id = p.id) t ON true
  WHERE p.active)";

// Every table has updated_at kept by a trigger; deleted links leave a tombstone.
void CreateCatalog(SyncFixture& world) {
  world.Exec(R"(
    CREATE FUNCTION touch() RETURNS trigger AS $$
      BEGIN NEW.updated_at := now(); RETURN NEW; END $$ LANGUAGE plpgsql;
    CREATE TABLE categories (id int PRIMARY KEY, name text NOT NULL,
                             updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE brands (id int PRIMARY KEY, name text NOT NULL, country text,
                         updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE tags (id int PRIMARY KEY, name text NOT NULL,
                       updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL,
                           category_id int NOT NULL REFERENCES categories,
                           brand_id int REFERENCES brands, active bool NOT NULL DEFAULT true,
                           updated_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX ON products (updated_at, id);
    CREATE INDEX ON products (category_id);
    CREATE INDEX ON products (brand_id);
    CREATE TABLE product_tags (product_id int NOT NULL, tag_id int NOT NULL,
                               updated_at timestamptz NOT NULL DEFAULT now(),
                               PRIMARY KEY (product_id, tag_id));
    CREATE INDEX ON product_tags (tag_id);
    CREATE INDEX ON product_tags (updated_at, product_id, tag_id);
    CREATE TABLE deleted_product_tags (product_id int NOT NULL, tag_id int NOT NULL,
                                       deleted_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE prices (product_id int PRIMARY KEY, amount numeric(10,2) NOT NULL,
                         updated_at timestamptz NOT NULL DEFAULT now());
    CREATE FUNCTION tombstone_link() RETURNS trigger AS $$
      BEGIN INSERT INTO deleted_product_tags VALUES (OLD.product_id, OLD.tag_id); RETURN OLD; END
      $$ LANGUAGE plpgsql;
    CREATE TRIGGER gone AFTER DELETE ON product_tags FOR EACH ROW EXECUTE FUNCTION tombstone_link();
  )");
  for (const char* table : {"categories", "brands", "tags", "products", "product_tags", "prices"}) {
    world.Exec(std::string("CREATE TRIGGER touch BEFORE UPDATE ON ") + table +
               " FOR EACH ROW EXECUTE FUNCTION touch()");
  }
}

// `products` products spread over 20 categories, 10 brands (some without), 30 tags.
void FillCatalog(SyncFixture& world, int products) {
  world.Exec(R"(
    INSERT INTO categories SELECT i, 'category ' || i FROM generate_series(1, 20) i;
    INSERT INTO brands SELECT i, 'brand ' || i, 'country ' || (i % 3) FROM generate_series(1, 10) i;
    INSERT INTO tags SELECT i, 'tag ' || i FROM generate_series(1, 30) i;)");
  world.Exec(
      "INSERT INTO products (id, name, category_id, brand_id) SELECT i, 'product ' || i, "
      "1 + i % 20, CASE WHEN i % 11 = 0 THEN NULL ELSE 1 + i % 10 END "
      "FROM generate_series(1, " +
      std::to_string(products) + ") i");
  world.Exec(
      "INSERT INTO product_tags (product_id, tag_id) SELECT i, 1 + (i * k) % 30 "
      "FROM generate_series(1, " +
      std::to_string(products) +
      ") i, "
      "generate_series(1, 3) k ON CONFLICT DO NOTHING");
  world.Exec("INSERT INTO prices SELECT i, (i % 1000) + 0.99 FROM generate_series(1, " +
             std::to_string(products) + ") i");
}

void WriteCatalogConfig(SyncFixture& world, const std::string& batch = "{ max_events: 2000 }",
                        const std::string& relations_extra = "") {
  std::string query = kQuery;
  std::string indented;
  for (const char c : query) {
    indented += c;
    if (c == '\n') indented += "        ";
  }
  world.WriteConfig(R"yaml(typesense:
  nodes: ["${TYPESENSE_URL}"]
  api_key: ${TYPESENSE_API_KEY}
  retry: { initial_backoff: 50ms, max_backoff: 1s }
state:
  path: )yaml" + (world.dir() / "state") +
                    R"yaml(
pipelines:
  - name: products
    source:
      type: postgres
      dsn: ${PG_DSN}
      query: |
        )yaml" + indented +
                    R"yaml(
      primary_key: id
      updated_at: updated_at
      poll_interval: 200ms
      page_size: 2000
      relations:
        - table: categories
          updated_at: updated_at
          documents: "SELECT id FROM products WHERE category_id = ANY($1)"
        - table: brands
          updated_at: updated_at
          documents: "SELECT id FROM products WHERE brand_id = ANY($1)"
        - table: tags
          updated_at: updated_at
          documents: "SELECT product_id FROM product_tags WHERE tag_id = ANY($1)"
        - table: product_tags
          updated_at: updated_at
          primary_key: [product_id, tag_id]
          document_key: product_id
          tombstone_table: { table: deleted_product_tags, id_column: product_id, deleted_at_column: deleted_at }
        - table: prices
          updated_at: updated_at
          primary_key: product_id
          document_key: product_id
)yaml" + relations_extra +
                    R"yaml(
    sink:
      collection: products
      batch: )yaml" +
                    batch + R"yaml(
      schema:
        enable_nested_fields: true
        fields:
          - { name: name, type: string }
          - { name: category, type: string, facet: true }
          - { name: brand, type: object }
          - { name: tags, type: "string[]" }
          - { name: tag_objects, type: "object[]" }
          - { name: price, type: float, optional: true }
)yaml");
}

// "" when the index holds exactly the query's rows, field by field (updated_at aside: its text
// form differs between row_to_json and the document); otherwise the first differences.
std::string IndexMatchesQuery(SyncFixture& world) {
  auto rows = world.pg().Query(
      "SELECT q.id::text, (row_to_json(q)::jsonb - 'id' - 'updated_at')"
      "::text FROM (" +
      std::string(kQuery) + ") q");
  if (!rows.ok()) return "query failed: " + rows.status().message();
  const std::map<std::string, json> documents = world.IndexDocuments();
  std::string differences;
  int reported = 0;
  const auto report = [&](const std::string& text) {
    if (++reported <= 5) differences += text + "\n";
  };
  for (const auto& row : *rows) {
    const std::string id = *row[0];
    json expected = json::parse(*row[1]);
    // Typesense stores a null optional field as absent.
    for (auto field = expected.begin(); field != expected.end();) {
      field = field->is_null() ? expected.erase(field) : std::next(field);
    }
    const auto it = documents.find(id);
    if (it == documents.end()) {
      report("missing " + id + ": " + expected.dump());
      continue;
    }
    json actual = it->second;
    actual.erase("id");
    actual.erase("updated_at");
    if (actual != expected)
      report("differs " + id + ": " + actual.dump() + " vs " + expected.dump());
  }
  if (documents.size() != rows->size()) {
    report("index holds " + std::to_string(documents.size()) + " documents, the query " +
           std::to_string(rows->size()));
  }
  return differences;
}

TEST_CASE(
    "relations: renames, link changes with tombstones, a brand change, a move and a "
    "product leaving the WHERE all reach the index",
    "[integration][relations]") {
  constexpr int kProducts = 50'000;
  SyncFixture world;
  CreateCatalog(world);
  FillCatalog(world, kProducts);
  WriteCatalogConfig(world);

  const CommandResult first = world.RunSearchsync({"run", "--once"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  REQUIRE(world.IndexDocuments().size() == static_cast<size_t>(kProducts));
  CHECK(IndexMatchesQuery(world) == "");
  // Nested: the brand arrived as an object, indexed as flattened fields.
  CHECK(world.IndexDocuments().at("1")["brand"] ==
        json::parse(R"({"name":"brand 2","country":"country 2"})"));
  CHECK(world.typesense().Documents("products")->at("1")["tag_objects"].is_array());

  world.Exec("UPDATE categories SET name = 'renamed category' WHERE id = 3");
  world.Exec("UPDATE tags SET name = 'renamed tag' WHERE id = 7");
  world.Exec(
      "INSERT INTO product_tags (product_id, tag_id) VALUES (100, 29), (101, 30) "
      "ON CONFLICT DO NOTHING");
  world.Exec("DELETE FROM product_tags WHERE product_id IN (200, 201)");
  world.Exec("UPDATE brands SET country = 'elsewhere' WHERE id = 4");
  world.Exec("UPDATE products SET category_id = 5 WHERE id = 300");  // its own row changes too
  world.Exec("UPDATE categories SET name = 'moved into' WHERE id = 5");
  world.Exec("UPDATE prices SET amount = 1234.5 WHERE product_id = 400");
  // Stops matching the WHERE through a related row only: its own updated_at is set back.
  world.Exec(
      "ALTER TABLE products DISABLE TRIGGER touch; "
      "UPDATE products SET active = false WHERE id = 500; "
      "ALTER TABLE products ENABLE TRIGGER touch; "
      "UPDATE prices SET amount = 1 WHERE product_id = 500");

  const CommandResult second = world.RunSearchsync({"run", "--once"});
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(IndexMatchesQuery(world) == "");
  const auto documents = world.IndexDocuments();
  CHECK(documents.at("2")["category"] == "renamed category");  // 1 + 2 % 20 == 3
  CHECK_FALSE(documents.count("500"));
  CHECK(documents.at("200")["tags"] == json::array());
  CHECK(documents.at("400")["price"] == 1234.5);
  CHECK(documents.at("300")["category"] == "moved into");
  CHECK(documents.at("3")["brand"]["country"] == "elsewhere");  // 1 + 3 % 10 == 4

  // A second run right after sends nothing.
  world.typesense().ResetCounters();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.typesense().Counters().Requests(TypesenseRoute::kImport) == 0);
}

TEST_CASE(
    "relations: a related transaction open across two polls that commits late still "
    "reaches the index",
    "[integration][relations]") {
  SyncFixture world;
  CreateCatalog(world);
  FillCatalog(world, 200);
  WriteCatalogConfig(world);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);

  pqxx::connection late_connection(world.pg().dsn());
  pqxx::work late(late_connection);
  late.exec("UPDATE categories SET name = 'committed late' WHERE id = 2");
  // Committed right away, with newer timestamps: the relation's cursor must not pass the late
  // one.
  world.Exec("UPDATE categories SET name = 'committed at once' WHERE id = 6");
  world.Exec("UPDATE brands SET name = 'brand after' WHERE id = 1");

  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexDocuments().at("1")["category"] == "category 2");

  late.commit();
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexDocuments().at("1")["category"] == "committed late");  // 1 % 20 + 1 == 2
  CHECK(world.IndexDocuments().at("5")["category"] == "committed at once");
  CHECK(IndexMatchesQuery(world) == "");
}

TEST_CASE(
    "relations: kill -9 in the middle of a fan-out of 20,000 documents, then run --once: "
    "the index equals the query",
    "[integration][relations]") {
  SyncFixture world;
  CreateCatalog(world);
  FillCatalog(world, 0);
  world.Exec(
      "INSERT INTO products (id, name, category_id, brand_id) "
      "SELECT i, 'product ' || i, 1, 1 FROM generate_series(1, 20000) i");
  WriteCatalogConfig(world, "{ max_events: 500, flush_interval: 100ms }");
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.IndexDocuments().size() == 20'000);

  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  const auto checkpoint = [&] { return store->Load("products").value().checkpoint.token; };
  world.typesense().SetLatency(50ms);
  auto daemon = world.StartDaemon();
  world.Exec("UPDATE categories SET name = 'fanned out' WHERE id = 1");
  const auto renamed = [&] {
    int count = 0;
    for (const auto& [id, document] : world.IndexDocuments()) {
      count += document["category"] == "fanned out";
    }
    return count;
  };
  // Part of the fan-out is acknowledged and checkpointed, mid-way: the checkpoint says where.
  REQUIRE(WaitUntil([&] { return checkpoint().find("\"upto\"") != std::string::npos; }, 120s, 5ms));
  daemon->Kill9();
  const int before_restart = renamed();
  INFO("renamed before the restart: " << before_restart);
  CHECK(before_restart > 0);
  CHECK(before_restart < 20'000);

  world.typesense().SetLatency(0ms);
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(renamed() == 20'000);
  CHECK(IndexMatchesQuery(world) == "");
  CHECK(checkpoint().find("\"upto\"") == std::string::npos);
}

TEST_CASE(
    "check: a documents query of two columns, a missing document_key column and a "
    "missing index are named",
    "[integration][relations]") {
  SyncFixture world;
  CreateCatalog(world);
  FillCatalog(world, 100);

  WriteCatalogConfig(world, "{ max_events: 2000 }",
                     "        - table: brands\n"
                     "          updated_at: updated_at\n"
                     "          documents: \"SELECT id, name FROM products WHERE brand_id = "
                     "ANY($1)\"\n");
  // (A second brands entry is refused before anything connects.)
  CommandResult duplicate = world.RunSearchsync({"check"});
  INFO(duplicate.out << duplicate.err);
  CHECK(duplicate.exit_code == 2);
  CHECK(duplicate.err.find("names a table listed before") != std::string::npos);

  world.Exec(
      "CREATE TABLE brand_logos (id int PRIMARY KEY, brand_id int, "
      "updated_at timestamptz NOT NULL DEFAULT now())");
  WriteCatalogConfig(world, "{ max_events: 2000 }",
                     "        - table: brand_logos\n"
                     "          updated_at: updated_at\n"
                     "          documents: \"SELECT id, brand_id FROM products WHERE brand_id = "
                     "ANY($1)\"\n");
  const CommandResult two_columns = world.RunSearchsync({"check"});
  INFO(two_columns.out << two_columns.err);
  CHECK(two_columns.exit_code == 2);
  CHECK(two_columns.out.find("documents returns 2 columns; it must return one") !=
        std::string::npos);

  WriteCatalogConfig(world, "{ max_events: 2000 }",
                     "        - table: brand_logos\n"
                     "          updated_at: updated_at\n"
                     "          document_key: product_id\n");
  const CommandResult missing_column = world.RunSearchsync({"check"});
  INFO(missing_column.out << missing_column.err);
  CHECK(missing_column.exit_code == 2);
  CHECK(missing_column.out.find("relations[5] (brand_logos): column t.product_id does not "
                                "exist") != std::string::npos);

  // Indexed, every query reads only what it needs.
  WriteCatalogConfig(world);
  const CommandResult clean = world.RunSearchsync({"check"});
  INFO(clean.out << clean.err);
  CHECK(clean.exit_code == 0);
  CHECK(clean.err.find("reads the whole table") == std::string::npos);
  // Without the index on products (brand_id), the brands relation reads the whole table; the
  // tags relation's key is the second column of product_tags' primary key: the same.
  world.Exec("DROP INDEX products_brand_id_idx; DROP INDEX product_tags_tag_id_idx");
  const CommandResult advice = world.RunSearchsync({"check"});
  INFO(advice.out << advice.err);
  CHECK(advice.exit_code == 0);
  CHECK(advice.err.find("relations[1] (brands) documents reads the whole table products") !=
        std::string::npos);
  CHECK(advice.err.find(R"(CREATE INDEX CONCURRENTLY ON "products" ("brand_id");)") !=
        std::string::npos);
  CHECK(advice.err.find(R"(CREATE INDEX CONCURRENTLY ON "product_tags" ("tag_id");)") !=
        std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
