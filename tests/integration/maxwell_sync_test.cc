// End-to-end tests of the maxwell source: Maxwell messages on librdkafka's mock cluster, the
// searchsync binary (or the pipeline in-process), the Typesense test server.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <optional>
#include <random>
#include <thread>

#include "pipeline/runner.h"
#include "pipeline/state_store.h"
#include "sources/maxwell.h"
#include "tests/support/fakes.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {
namespace {

constexpr int kPartitions = 6;
const std::string kTopic = "maxwell";
const std::string kGroup = "searchsync-orders";
// Kafka protocol API keys, for the mock cluster's request error injection.
constexpr int16_t kFetchApi = 1;
constexpr int16_t kOffsetCommitApi = 8;

struct Row {
  std::string sku;
  int64_t qty = 0;
};

struct MaxwellWorld {
  KafkaMock kafka;
  TypesenseServer typesense{TypesenseServerOptions{}};
  TempDir dir;
  std::map<int64_t, Row> expected;      // the table after every message produced so far
  std::map<int32_t, int64_t> produced;  // messages per partition
  std::mt19937_64 rng{7};

  MaxwellWorld() { kafka.CreateTopic(kTopic, kPartitions); }

  void Send(int32_t partition, const std::string& key, const std::string& value) {
    kafka.Produce(kTopic, partition, key, value);
    ++produced[partition];
  }

  // One change of row `id` of shop.orders, as Maxwell writes it, partitioned by primary key.
  void Change(int64_t id, int serial) {
    const int32_t partition = static_cast<int32_t>(id % kPartitions);
    const std::string key = MaxwellKey("shop", "orders", id);
    const auto it = expected.find(id);
    const int dice = static_cast<int>(rng() % 100);
    if (it != expected.end() && dice < 30) {
      const std::string data = R"({"id":)" + std::to_string(id) + R"(,"sku":)" +
                               JsonQuote(it->second.sku) + R"(,"qty":)" +
                               std::to_string(it->second.qty) + "}";
      Send(partition, key, MaxwellMessage("shop", "orders", "delete", data));
      expected.erase(it);
      return;
    }
    const Row row{.sku = "sku-" + std::to_string(id) + "-" + std::to_string(serial), .qty = serial};
    const char* type =
        it != expected.end() ? "update" : (dice < 60 ? "bootstrap-insert" : "insert");
    const std::string data = R"({"id":)" + std::to_string(id) + R"(,"sku":")" + row.sku +
                             R"(","qty":)" + std::to_string(row.qty) + "}";
    Send(partition, key, MaxwellMessage("shop", "orders", type, data));
    expected[id] = row;
  }

  // Messages this pipeline must skip: other tables, bootstrap markers, DDL.
  void Noise(int32_t partition, int serial) {
    switch (serial % 4) {
      case 0:
        Send(partition, MaxwellKey("shop", "users", serial),
             MaxwellMessage("shop", "users", "insert", R"({"id":1,"name":"x"})"));
        break;
      case 1:
        Send(partition, "", MaxwellMessage("shop", "orders", "bootstrap-start", "{}", ""));
        break;
      case 2:
        Send(
            partition, "",
            R"({"type":"table-alter","database":"shop","table":"orders","sql":"ALTER TABLE orders ADD x INT"})");
        break;
      default:
        Send(partition, MaxwellKey("other", "orders", serial),
             MaxwellMessage("other", "orders", "insert", R"({"id":1})"));
    }
  }

  static std::string JsonQuote(const std::string& text) { return "\"" + text + "\""; }

  void ProduceScenario(int messages, int ids) {
    for (int serial = 0; serial < messages; ++serial) {
      if (rng() % 10 == 0) {
        Noise(static_cast<int32_t>(rng() % kPartitions), serial);
      } else {
        Change(static_cast<int64_t>(rng() % ids), serial);
      }
    }
    // Every partition ends with messages of another table: their offsets must be committed too.
    for (int32_t partition = 0; partition < kPartitions; ++partition) Noise(partition, 0);
    kafka.Flush();
  }

  std::string config_path() const { return dir / "pipelines.yaml"; }

  // The mock cluster keeps a member that left until its session times out: keep it short.
  void WriteConfig(const std::string& kafka_yaml =
                       "{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\" }") {
    std::ofstream out(config_path());
    out << "typesense:\n"
        << "  nodes: [\"" << typesense.url() << "\"]\n"
        << "  api_key: " << typesense.api_key() << "\n"
        << "  retry: { initial_backoff: 10ms, max_backoff: 200ms }\n"
        << "state: { path: \"" << (dir / "state") << "\" }\n"
        << "pipelines:\n"
        << "  - name: orders\n"
        << "    source:\n"
        << "      type: maxwell\n"
        << "      brokers: \"" << kafka.bootstraps() << "\"\n"
        << "      topic: " << kTopic << "\n"
        << "      group_id: " << kGroup << "\n"
        << "      database: shop\n"
        << "      table: orders\n"
        << "      kafka: " << kafka_yaml << "\n"
        << "    sink:\n"
        << "      collection: orders\n"
        << "      schema: { fields: [{ name: sku, type: string }, { name: qty, type: int64 }] }\n"
        << "      batch: { max_events: 1000, flush_interval: 100ms }\n";
  }

  std::vector<std::string> Argv(std::vector<std::string> args) const {
    std::vector<std::string> argv = {SEARCHSYNC_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("-c");
    argv.push_back(config_path());
    return argv;
  }

  // Runs `searchsync run --once`; returns the exit code.
  int RunOnce(std::string* err = nullptr) {
    auto process = ServerProcess::Start({.argv = Argv({"run", "--once"})});
    if (!process.ok()) FAIL(process.status().message());
    const std::optional<int> code = (*process)->Wait(std::chrono::seconds(90));
    if (!code) FAIL("searchsync run --once did not finish: " << (*process)->Describe());
    if (err) *err = (*process)->ReadStderr();
    if (std::getenv("MAXWELL_TEST_DEBUG")) WARN((*process)->ReadStderr());
    if (*code != 0) UNSCOPED_INFO((*process)->ReadStderr());
    return *code;
  }

  // "" when the index holds exactly the expected rows.
  std::string IndexMatches() {
    const auto documents =
        typesense.Documents("orders").value_or(std::map<std::string, nlohmann::json>{});
    std::string problems;
    for (const auto& [id, row] : expected) {
      const auto it = documents.find(std::to_string(id));
      if (it == documents.end()) {
        problems += "missing " + std::to_string(id) + "; ";
      } else if (it->second.value("sku", "") != row.sku || it->second.value("qty", -1) != row.qty) {
        problems += "stale " + std::to_string(id) + ": " + it->second.dump() + "; ";
      }
      if (problems.size() > 500) return problems;
    }
    for (const auto& [id, document] : documents) {
      if (!expected.contains(std::stoll(id))) problems += "extra " + id + "; ";
      if (problems.size() > 500) return problems;
    }
    return problems;
  }
};

TEST_CASE("Maxwell: 20000 messages over 6 partitions, run --once: the index equals the table",
          "[integration][maxwell]") {
  MaxwellWorld world;
  world.ProduceScenario(20'000, 3'000);
  world.WriteConfig();
  REQUIRE(world.RunOnce() == 0);
  CHECK(world.IndexMatches() == "");

  // Every offset is committed, the trailing messages of other tables included.
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    INFO("partition " << partition);
    CHECK(committed.at(partition) == world.produced[partition]);
  }

  // A second run sends nothing.
  const int64_t written = world.typesense.Counters().documents_written;
  REQUIRE(world.RunOnce() == 0);
  CHECK(world.typesense.Counters().documents_written == written);

  // New changes after the first pass are picked up.
  world.ProduceScenario(2'000, 3'000);
  REQUIRE(world.RunOnce() == 0);
  CHECK(world.IndexMatches() == "");
}

TEST_CASE("Maxwell: no offset is committed ahead of an acknowledgement", "[integration][maxwell]") {
  KafkaMock kafka;
  kafka.CreateTopic(kTopic, kPartitions);
  // Every message inserts its own row: a document in the index proves its message acknowledged.
  std::map<std::pair<int32_t, int64_t>, std::string> id_at;
  std::map<int32_t, int64_t> produced;
  for (int64_t id = 0; id < 6'000; ++id) {
    const int32_t partition = static_cast<int32_t>((id * 7919) % kPartitions);
    kafka.Produce(kTopic, partition, MaxwellKey("shop", "orders", id),
                  MaxwellMessage("shop", "orders", "insert",
                                 R"({"id":)" + std::to_string(id) + R"(,"v":1})"));
    id_at[{partition, produced[partition]++}] = std::to_string(id);
  }
  kafka.Flush();

  TempDir dir;
  auto state = std::move(StateStore::Open(dir.path()).value());
  PipelineConfig config{.name = "orders"};
  config.sink.batch = {
      .max_events = 250, .max_bytes = 1 << 20, .flush_interval = std::chrono::milliseconds(50)};
  config.sink.concurrency = 3;
  config.queue = {.max_events = 2'000, .max_bytes = 16 << 20};
  const MaxwellOptions options{
      .brokers = kafka.bootstraps(),
      .topic = kTopic,
      .group_id = kGroup,
      .database = "shop",
      .table = "orders",
      .kafka = {{"session.timeout.ms", Secret("6000")}, {"heartbeat.interval.ms", Secret("500")}}};
  const RetryOptions retry{.initial_backoff = std::chrono::milliseconds(1),
                           .max_backoff = std::chrono::milliseconds(5)};

  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->fail_after_batches = 7;
  {
    PipelineRunner runner(config, retry, MakeMaxwellSource(options), std::move(sink), *state,
                          {.once = true, .poll_batch = 500});
    CHECK_FALSE(runner.Run().ok());
  }
  const auto committed = kafka.Committed(kGroup, kTopic, kPartitions);
  int64_t committed_total = 0;
  {
    std::lock_guard lock(view->mutex);
    for (const auto& [partition, offset] : committed) {
      INFO("partition " << partition << " committed " << offset);
      CHECK(offset <= produced[partition]);
      for (int64_t earlier = 0; earlier < offset; ++earlier) {
        const std::string& id = id_at[{partition, earlier}];
        if (!view->index.contains(id))
          FAIL("offset " << offset << " committed, message at " << earlier << " (id " << id
                         << ") never acknowledged");
      }
      committed_total += std::max<int64_t>(offset, 0);
    }
  }
  CHECK(committed_total > 0);
  CHECK(committed_total < 6'000);

  // A healthy sink then gets everything from the committed offsets on: nothing is lost.
  auto healthy = std::make_unique<FakeSink>();
  auto healthy_view = healthy->shared();
  {
    std::lock_guard lock(view->mutex);
    healthy_view->index = view->index;
  }
  PipelineRunner runner(config, retry, MakeMaxwellSource(options), std::move(healthy), *state,
                        {.once = true, .poll_batch = 500});
  REQUIRE(runner.Run().ok());
  CHECK(healthy_view->index.size() == 6'000);
  const auto final_offsets = kafka.Committed(kGroup, kTopic, kPartitions);
  for (const auto& [partition, offset] : final_offsets) CHECK(offset == produced[partition]);
}

TEST_CASE("Maxwell: malformed messages are dead-lettered with their offsets, the rest sync",
          "[integration][maxwell]") {
  MaxwellWorld world;
  world.ProduceScenario(500, 100);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"k", "{not json"},
      {"k", "[1,2,3]"},
      {"", MaxwellMessage("shop", "orders", "insert", R"({"sku":"no-key"})", "")},
      {R"({"database":"shop","table":"orders","_uuid":"8d1e4c"})",
       MaxwellMessage("shop", "orders", "insert", R"({"sku":"uuid"})", "")},
      {"k", R"({"database":"shop","table":"orders","type":"insert","data":"nope"})"},
  };
  std::set<std::string> bad_ids;
  for (size_t bad_idx = 0; bad_idx < bad.size(); ++bad_idx) {
    const int32_t partition = static_cast<int32_t>(bad_idx % kPartitions);
    bad_ids.insert(kTopic + "/" + std::to_string(partition) + "/" +
                   std::to_string(world.produced[partition]));
    world.Send(partition, bad[bad_idx].first, bad[bad_idx].second);
  }
  world.ProduceScenario(500, 100);
  world.WriteConfig();
  // The sync goes on; the exit code says documents were dead-lettered.
  CHECK(world.RunOnce() == 1);
  CHECK(world.IndexMatches() == "");

  auto state = std::move(StateStore::Open(world.dir / "state").value());
  const auto letters = state->ListDeadLetters("orders", 100).value();
  std::set<std::string> ids;
  for (const DeadLetter& letter : letters) {
    ids.insert(letter.document_id);
    CHECK(letter.error.find("maxwell message topic=maxwell partition=") != std::string::npos);
    CHECK(letter.document.find("\"message\":") != std::string::npos);
  }
  CHECK(ids == bad_ids);
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    CHECK(committed.at(partition) == world.produced[partition]);
  }
}

TEST_CASE("Maxwell: broker errors and a broker down for a while lose nothing",
          "[integration][maxwell]") {
  MaxwellWorld world;
  world.ProduceScenario(10'000, 2'000);
  world.WriteConfig(
      "{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\", socket.timeout.ms: \"5000\" "
      "}");
  rd_kafka_mock_cluster_t* cluster = world.kafka.cluster();
  rd_kafka_mock_push_request_errors(
      cluster, kFetchApi, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  rd_kafka_mock_push_request_errors(cluster, kOffsetCommitApi, 2,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  std::thread outage([&] {
    // The broker goes down once the run is under way (documents arrive), for 3 s.
    WaitUntil([&] { return world.typesense.Counters().documents_written > 0; },
              std::chrono::seconds(60), std::chrono::milliseconds(1));
    rd_kafka_mock_broker_set_down(cluster, 2);
    std::this_thread::sleep_for(std::chrono::seconds(3));  // the outage itself, not a wait
    rd_kafka_mock_broker_set_up(cluster, 2);
  });
  const int first = world.RunOnce();
  outage.join();
  // However the first pass went (a broker may be down when it checks for the end), a second
  // pass with every broker up ends with the index equal to the table.
  if (first != 0) REQUIRE(world.RunOnce() == 0);
  CHECK(world.IndexMatches() == "");
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    CHECK(committed.at(partition) == world.produced[partition]);
  }
}

TEST_CASE(
    "Maxwell: two processes in one group share the partitions, one dies, the other takes over",
    "[integration][maxwell]") {
  MaxwellWorld world;
  world.ProduceScenario(5'000, 1'000);
  world.WriteConfig("{ session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\" }");
  // Each process keeps its own state directory; the group's offsets are shared.
  const std::string second_config = world.dir / "second.yaml";
  {
    std::ifstream in(world.config_path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string from = world.dir / "state";
    text.replace(text.find(from), from.size(), world.dir / "state2");
    std::ofstream(second_config) << text;
  }
  auto first = ServerProcess::Start({.argv = world.Argv({"run"})});
  REQUIRE(first.ok());
  auto second_process =
      ServerProcess::Start({.argv = {SEARCHSYNC_BINARY, "run", "-c", second_config}});
  REQUIRE(second_process.ok());
  auto& second = *second_process;
  CHECK(WaitUntil([&] { return world.IndexMatches().empty(); }, std::chrono::seconds(40),
                  std::chrono::milliseconds(200)));
  CHECK(WaitUntil(
      [&] {
        return (*first)->ReadStderr().find("assigned partitions") != std::string::npos &&
               second->ReadStderr().find("assigned partitions") != std::string::npos;
      },
      std::chrono::seconds(20)));

  (*first)->Kill9();
  world.ProduceScenario(3'000, 1'000);
  CHECK(WaitUntil([&] { return world.IndexMatches().empty(); }, std::chrono::seconds(45),
                  std::chrono::milliseconds(200)));
  INFO(second->ReadStderr().substr(0, 4000));
  CHECK(world.IndexMatches() == "");
  CHECK(second->Stop() == 0);
}

}  // namespace
}  // namespace searchsync::test
