// The searchsync binary facing hostile configs and environments: secrets in every output, errors
// that cannot heal, files that never end. No servers: each config points at ports nobody
// listens on, so every run ends at the config check or at the first connection.

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {
namespace {

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string all() const { return out + err; }
};

// Runs `searchsync <args>` to completion. A command that has not ended after two minutes fails
// the test: it would have run (or retried) for ever.
Output Searchsync(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), SEARCHSYNC_BINARY);
  auto process = ServerProcess::Start({.argv = args, .env = env});
  if (!process.ok()) FAIL("searchsync: " << process.status().message());
  const std::optional<int> code = (*process)->Wait(std::chrono::minutes(2));
  if (!code) FAIL("searchsync did not end: " << (*process)->Describe());
  return {*code, (*process)->ReadStdout(), (*process)->ReadStderr()};
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A config around one source mapping (YAML flow style); Typesense at a port nobody serves.
std::string ConfigWith(const TempDir& dir, const std::string& source) {
  return "typesense: { nodes: [\"http://127.0.0.1:1\"], api_key: k }\n"
         "state: { path: \"" +
         dir / "state" +
         "\" }\n"
         "pipelines:\n"
         "  - name: products\n"
         "    source: " +
         source +
         "\n"
         "    sink: { collection: products, schema: { fields: [{ name: name, type: string }] } }\n";
}

}  // namespace

TEST_CASE("A CouchDB password holding '/' or '#' never reaches any output", "[cli]") {
  TempDir dir;
  for (const std::string password : {"S3/CRET-pw", "S3#CRET-pw"}) {
    INFO(password);
    Write(dir / "pipelines.yaml",
          ConfigWith(dir, "{ type: couchdb, database: animals, url: \"http://admin:" + password +
                              "@127.0.0.1:1\" }"));
    for (const std::vector<std::string>& command : {std::vector<std::string>{"check"},
                                                    {"run", "--once"},
                                                    {"status"},
                                                    {"status", "--json"},
                                                    {"reindex", "products"}}) {
      std::vector<std::string> args = command;
      args.insert(args.end(), {"-c", dir / "pipelines.yaml"});
      const Output output = Searchsync(args);
      INFO(command[0] << ": " << output.all());
      CHECK(output.exit_code == 2);
      CHECK(output.err.find("percent-encode") != std::string::npos);
      CHECK(output.all().find("CRET") == std::string::npos);
    }
  }
}

TEST_CASE("A Postgres DSN libpq cannot use stops check, run --once and reindex with exit 2",
          "[cli]") {
  TempDir dir;
  const std::vector<std::string> dsns = {
      "host=127.0.0.1 port=notaport dbname=shop password=S3CRET-PG-1",
      "host=127.0.0.1 dbname='shop password=S3CRET-PG-1",
      "host=127.0.0.1 colour=blue password=S3CRET-PG-1",
      "host=127.0.0.1 password=S3CRET PG-1 dbname=shop",
      "postgresql://app:S3CRET@PG-1@127.0.0.1:1/shop",
      "postgresql://app:S3CRET/PG-1@127.0.0.1:1/shop",
  };
  for (const std::string& dsn : dsns) {
    INFO(dsn);
    Write(dir / "pipelines.yaml",
          ConfigWith(dir, "{ type: postgres, dsn: \"" + dsn +
                              "\", table: products, primary_key: id, updated_at: updated_at }"));
    for (const std::vector<std::string>& command :
         {std::vector<std::string>{"check"}, {"run", "--once"}, {"reindex", "products"}}) {
      std::vector<std::string> args = command;
      args.insert(args.end(), {"-c", dir / "pipelines.yaml"});
      const Output output = Searchsync(args);
      INFO(command[0] << ": " << output.all());
      CHECK(output.exit_code == 2);
      CHECK(output.err.find("pipelines.yaml:5:") != std::string::npos);
      CHECK(output.all().find("S3CRET") == std::string::npos);
      CHECK(output.all().find("PG-1") == std::string::npos);
    }
  }
}

TEST_CASE(
    "A libpq option refused only when connecting ends check, run --once and reindex with "
    "exit 2",
    "[cli]") {
  TempDir dir;
  TypesenseServer typesense({});
  std::string config =
      ConfigWith(dir,
                 "{ type: postgres, dsn: \"host=127.0.0.1 port=1 sslmode=bogus "
                 "password=S3CRET-PG-1\", table: products, primary_key: id, updated_at: u }");
  config.replace(config.find("http://127.0.0.1:1"), 18, typesense.url());
  config.replace(config.find("api_key: k"), 10, "api_key: " + typesense.api_key());
  Write(dir / "pipelines.yaml", config);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"check"}, {"run", "--once"}, {"reindex", "products"}}) {
    std::vector<std::string> args = command;
    args.insert(args.end(), {"-c", dir / "pipelines.yaml"});
    const Output output = Searchsync(args);
    INFO(command[0] << ": " << output.all());
    CHECK(output.exit_code == 2);
    CHECK(output.all().find("sslmode") != std::string::npos);
    CHECK(output.all().find("S3CRET") == std::string::npos);
  }
}

TEST_CASE("Kafka settings librdkafka refuses together end check and run --once with exit 2",
          "[cli]") {
  TempDir dir;
  TypesenseServer typesense({});
  std::string config = ConfigWith(
      dir,
      "{ type: maxwell, brokers: \"127.0.0.1:1\", topic: maxwell, group_id: g, database: shop, "
      "table: products, kafka: { security.protocol: ssl, ssl.ca.location: /nonexistent/ca.pem } }");
  config.replace(config.find("http://127.0.0.1:1"), 18, typesense.url());
  config.replace(config.find("api_key: k"), 10, "api_key: " + typesense.api_key());
  Write(dir / "pipelines.yaml", config);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"check"}, {"run", "--once"}}) {
    std::vector<std::string> args = command;
    args.insert(args.end(), {"-c", dir / "pipelines.yaml"});
    const Output output = Searchsync(args);
    INFO(command[0] << ": " << output.all());
    CHECK(output.exit_code == 2);
    CHECK(output.all().find("ssl.ca.location") != std::string::npos);
  }
}

TEST_CASE("An unknown command is named, with the list of commands", "[cli]") {
  const Output output = Searchsync({"frobnicate", "-c", "x.yaml"});
  CHECK(output.exit_code == 2);
  CHECK(output.err ==
        "searchsync: unknown command 'frobnicate'; the commands are: run, check, status, "
        "reindex, dead-letters, snapshot, backup, restore (see --help)\n");
}

TEST_CASE("check ends with exit 2 on files that never end, directories and alias bombs", "[cli]") {
  TempDir dir;
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int copy = 0; copy < 10; ++copy) {
      bomb += (copy ? ", *a" : "*a") + std::to_string(level - 1);
    }
    bomb += "]\n";
  }
  Write(dir / "bomb.yaml", bomb);
  Write(dir / "cycle.yaml", "a: &a [*a]\n");
  Write(dir / "zero-schema.yaml",
        "typesense: { nodes: [\"http://127.0.0.1:1\"], api_key: k }\n"
        "pipelines:\n"
        "  - name: products\n"
        "    source: { type: couchdb, url: \"http://127.0.0.1:1\", database: animals }\n"
        "    sink: { collection: products, schema_file: /dev/zero }\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/dev/zero", "/dev/zero: is larger than 16 MiB; is it the right file?"},
      {dir.path(), dir.path() + ": is a directory; expected a file"},
      {dir / "bomb.yaml", "aliases expand to more than"},
      {dir / "cycle.yaml", "an alias inside its own anchor"},
      {dir / "zero-schema.yaml", "schema_file: /dev/zero: is larger than 16 MiB"},
  };
  for (const auto& [file, says] : cases) {
    INFO(file);
    const Output output = Searchsync({"check", "-c", file});
    INFO(output.all());
    CHECK(output.exit_code == 2);
    CHECK(output.err.find(says) != std::string::npos);
  }
}

TEST_CASE("check refuses a schema Typesense would refuse, before reaching any server", "[cli]") {
  TempDir dir;
  Write(dir / "pipelines.yaml",
        "typesense: { nodes: [\"http://127.0.0.1:1\"], api_key: k }\n"
        "pipelines:\n"
        "  - name: products\n"
        "    source: { type: couchdb, url: \"http://127.0.0.1:1\", database: animals }\n"
        "    sink:\n"
        "      collection: products\n"
        "      schema:\n"
        "        fields: [{ name: title, type: strin }, { name: rank, type: int32 }]\n"
        "        default_sorting_field: popularity\n");
  const Output output = Searchsync({"check", "-c", dir / "pipelines.yaml"});
  INFO(output.all());
  CHECK(output.exit_code == 2);
  CHECK(output.out.find("configuration ok") == std::string::npos);
  CHECK(output.err.find(":8:39: pipelines[0].sink.schema.fields[0].type: field `title` has the "
                        "unknown type `strin` (did you mean `string`?)") != std::string::npos);
  CHECK(output.err.find(":9:32: pipelines[0].sink.schema.default_sorting_field: `popularity` is "
                        "not a field of the schema") != std::string::npos);
}

}  // namespace searchsync::test
