// The test-typesense binary as the benchmarks run it: --data-dir across a stop and a start on
// the same port, and SIGUSR1 load spikes with the write-queue model.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace searchsync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char kApiKey[] = "process-key";

// Starts test-typesense with `args` and waits for the port it writes to its port file.
std::unique_ptr<ServerProcess> StartTestTypesense(const TempDir& dir, std::vector<std::string> args,
                                                  int* port) {
  const std::string port_file = dir / "port";
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {TEST_TYPESENSE_BINARY, "--port-file", port_file, "--api-key",
                                   kApiKey};
  argv.insert(argv.end(), args.begin(), args.end());
  auto process = ServerProcess::Start({.argv = argv});
  REQUIRE(process.ok());
  const Status ready = (*process)->WaitReady(
      [&] {
        std::ifstream in(port_file);
        return static_cast<bool>(in >> *port);
      },
      30s);
  REQUIRE(ready.ok());
  return std::move(*process);
}

httplib::Client Client(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_default_headers({{"X-TYPESENSE-API-KEY", kApiKey}});
  client.set_read_timeout(30, 0);
  return client;
}

int HttpStatus(const httplib::Result& result) { return result ? result->status : 0; }

TEST_CASE("test-typesense --data-dir restarts with the documents and aliases it had",
          "[test-typesense]") {
  const TempDir dir;
  const std::string data_dir = dir / "data";
  std::filesystem::create_directory(data_dir);
  int port = 0;
  auto first = StartTestTypesense(dir, {"--port", "0", "--data-dir", data_dir}, &port);
  {
    httplib::Client ts = Client(port);
    REQUIRE(HttpStatus(ts.Post("/collections", R"({"name":"products_1","fields":[
        {"name":"name","type":"string"},{"name":"popularity","type":"int32"}]})",
                               "application/json")) == 201);
    const auto import = ts.Post("/collections/products_1/documents/import",
                                R"({"id":"a","name":"A","popularity":1})"
                                "\n"
                                R"({"id":"b","name":"B","popularity":2})",
                                "text/plain");
    REQUIRE(HttpStatus(import) == 200);
    REQUIRE(import->body == "{\"success\":true}\n{\"success\":true}");
    REQUIRE(HttpStatus(ts.Delete("/collections/products_1/documents/b")) == 200);
    REQUIRE(HttpStatus(ts.Put("/aliases/products", R"({"collection_name":"products_1"})",
                              "application/json")) == 200);
  }
  CHECK(first->Stop() == 0);  // SIGTERM saves the state
  CHECK(first->ReadStdout().find("stopping: served 0 503s") != std::string::npos);

  int second_port = 0;
  auto second = StartTestTypesense(dir, {"--port", std::to_string(port), "--data-dir", data_dir},
                                   &second_port);
  CHECK(second_port == port);
  httplib::Client ts = Client(port);
  const auto alias = ts.Get("/aliases/products");
  REQUIRE(HttpStatus(alias) == 200);
  CHECK(json::parse(alias->body)["collection_name"] == "products_1");
  const auto a = ts.Get("/collections/products/documents/a");
  REQUIRE(HttpStatus(a) == 200);
  CHECK(json::parse(a->body) == json{{"id", "a"}, {"name", "A"}, {"popularity", 1}});
  CHECK(HttpStatus(ts.Get("/collections/products/documents/b")) == 404);
  CHECK(second->Stop() == 0);

  // A state file that cannot be read stops the server with a message naming it.
  std::ofstream(data_dir + "/state.json") << "{not json";
  auto third = ServerProcess::Start(
      {.argv = {TEST_TYPESENSE_BINARY, "--port", "0", "--data-dir", data_dir}});
  REQUIRE(third.ok());
  CHECK((*third)->Wait(30s) == 1);
  CHECK((*third)->ReadStderr().find("state.json") != std::string::npos);
}

TEST_CASE("test-typesense refuses writes with 503 after SIGUSR1 adds a load spike",
          "[test-typesense]") {
  const TempDir dir;
  int port = 0;
  auto server = StartTestTypesense(dir,
                                   {"--port", "0", "--queue-drain", "1000", "--healthy-write-lag",
                                    "10", "--spike-batches", "5000"},
                                   &port);
  httplib::Client ts = Client(port);
  auto create = [&] {
    return HttpStatus(ts.Post("/collections",
                              R"({"name":"c","fields":[{"name":"n","type":"int32"}]})",
                              "application/json"));
  };
  REQUIRE(create() == 201);
  server->Signal(SIGUSR1);
  // The queue's flags are recomputed every few seconds; within that the writes start failing.
  CHECK(WaitUntil([&] { return create() == 503; }, 30s, 100ms));
  // 5000 chunks at 1000 a second: writes pass again once the queue has drained.
  CHECK(WaitUntil([&] { return create() == 409; }, 60s, 100ms));
  CHECK(server->Stop() == 0);
  CHECK(server->ReadStdout().find("stopping: served 0 503s") == std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
