// Maxwell on Kafka -> searchsync -> Typesense (test server, discard mode), beside the ceiling of
// a bare librdkafka consumer reading the same topic in the same run.
//
//   bench_maxwell [messages=1000000] [partitions=24] [distinct_ids=200000]
//
// Setup (not timed): librdkafka's mock cluster in this process, one topic, `messages` Maxwell
// insert/update messages partitioned by primary key, zstd-compressed (the mock keeps at most
// 100,000 messages and 5 MiB per partition, hence 24 partitions for a million); the Typesense test
// server in this process, in discard mode (validates and answers every import, stores nothing).
// Timed:
//   raw        a consumer in its own group reads every partition to its end (partition EOF) and
//              touches each payload; nothing else.
//   searchsync `searchsync run --once` on the topic (fork/exec of the real binary), until it
//              exits 0 with every offset committed; peak RSS and CPU from wait4().
// Each is reported from its start (group join included) and from its first message/import on.

#include <librdkafka/rdkafka.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned kSeed = 1;
const std::string kTopic = "maxwell";

double Since(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

double Seconds(const timeval& time) {
  return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
}

std::string Message(int64_t id, int serial, bool update) {
  char text[512];
  std::snprintf(text, sizeof(text),
                R"({"database":"shop","table":"orders","type":"%s","ts":1732170042,"xid":%d,)"
                R"("commit":true,"position":"mysql-bin.000042:%d","primary_key":[%lld],)"
                R"("primary_key_columns":["id"],"data":{"id":%lld,"sku":"SKU-%lld-%d",)"
                R"("status":"paid","total":%d.%02d,"qty":%d,"updated_at":"2024-11-21 06:20:42"})"
                R"(%s})",
                update ? "update" : "insert", 88000 + serial, serial * 217,
                static_cast<long long>(id), static_cast<long long>(id), static_cast<long long>(id),
                serial, serial % 1000, serial % 100, serial % 50,
                update ? R"(,"old":{"status":"new"})" : "");
  return text;
}

struct RawResult {
  size_t messages = 0;
  size_t bytes = 0;
  double total_seconds = 0;
  double from_first_seconds = 0;
};

RawResult RawConsume(const std::string& brokers, int partitions) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [name, value] :
       std::vector<std::pair<const char*, const char*>>{{"bootstrap.servers", brokers.c_str()},
                                                        {"group.id", "bench-raw"},
                                                        {"enable.auto.commit", "false"},
                                                        {"enable.partition.eof", "true"},
                                                        {"auto.offset.reset", "earliest"},
                                                        {"log_level", "3"}}) {
    rd_kafka_conf_set(conf, name, value, error, sizeof(error));
  }
  const Clock::time_point start = Clock::now();
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, kTopic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  RawResult result;
  Clock::time_point first{};
  int at_end = 0;
  uint64_t checksum = 0;
  while (at_end < partitions) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer, 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (result.messages++ == 0) first = Clock::now();
      result.bytes += message->len;
      checksum += static_cast<const unsigned char*>(message->payload)[message->len / 2];
    }
    rd_kafka_message_destroy(message);
  }
  const Clock::time_point end = Clock::now();
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  result.total_seconds = Since(start, end);
  result.from_first_seconds = Since(first, end);
  if (checksum == 0) std::printf("(checksum 0)\n");
  return result;
}

std::string PipelineConfig(const test::TypesenseServer& typesense, const std::string& brokers,
                           const std::string& state_dir, const std::string& flush_interval,
                           const std::string& kafka_settings = "{}") {
  return "typesense:\n  nodes: [\"" + typesense.url() + "\"]\n  api_key: " + typesense.api_key() +
         "\nstate: { path: \"" + state_dir + "\" }\n" +
         "pipelines:\n  - name: orders\n    source:\n      type: maxwell\n" + "      brokers: \"" +
         brokers + "\"\n      topic: " + kTopic +
         "\n      group_id: bench-searchsync\n      database: shop\n      table: orders\n" +
         "      kafka: " + kafka_settings + "\n" + "    sink:\n      collection: orders\n" +
         "      schema: { fields: [{ name: sku, type: string }, { name: status, type: string }, "
         "{ name: total, type: float }, { name: qty, type: int32 }, "
         "{ name: updated_at, type: string }] }\n" +
         "      batch: { max_events: 10000, max_bytes: 8MiB, flush_interval: " + flush_interval +
         " }\n      concurrency: 2\n" +
         (std::getenv("QUEUE") ? "    queue: " + std::string(std::getenv("QUEUE")) + "\n" : "");
}

// Commit -> searchable: `searchsync run` follows the topic while this process produces
// `rate` messages a second; a message's latency runs from its hand-over to the producer (so it
// includes the producer's linger.ms, 5 ms) until the (storing) test server holds its document,
// checked about every millisecond.
int Latency(int rate, int seconds, const std::string& flush_interval) {
  test::KafkaMock kafka(1);
  kafka.CreateTopic(kTopic, 6);
  test::TypesenseServer typesense(test::TypesenseServerOptions{});
  test::TempDir dir;
  const std::string config = dir / "pipelines.yaml";
  // librdkafka's mock broker holds a fetch that finds no message for the whole
  // fetch.wait.max.ms (500 ms), where Kafka answers as soon as a message arrives: a short wait
  // stands in for that.
  std::ofstream(config) << PipelineConfig(typesense, kafka.bootstraps(), dir / "state",
                                          flush_interval, "{ fetch.wait.max.ms: \"10\" }");
  const std::string log = dir / "searchsync.log";
  auto process = test::ServerProcess::Start(
      {.argv = {SEARCHSYNC_BINARY, "run", "-c", config}, .stderr_path = log});
  if (!process.ok()) {
    std::printf("searchsync did not start: %s\n", process.status().message().c_str());
    return 1;
  }
  const auto searchable = [&](int64_t id) {
    return typesense.Document("orders", std::to_string(id)).has_value();
  };
  // A first message, once the consumer has joined: the pipeline is then following the topic.
  kafka.Produce(kTopic, 0, test::MaxwellKey("shop", "orders", 0), Message(0, 0, false));
  kafka.Flush();
  if (!test::WaitUntil([&] { return searchable(0); }, std::chrono::seconds(60))) {
    std::printf("the first document never arrived; log:\n%s\n", test::FileTail(log).c_str());
    return 1;
  }
  const int total = rate * seconds;
  std::vector<Clock::time_point> delivered(static_cast<size_t>(total) + 1);
  std::vector<double> latencies;
  latencies.reserve(static_cast<size_t>(total));
  std::atomic<int> produced = 1;  // ids below it are produced
  std::thread watcher([&] {
    int next = 1;  // ids below it are searchable
    std::set<int> waiting;
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(seconds + 120);
    while (next < total + 1 || !waiting.empty()) {
      const int upto = produced.load();
      for (; next < upto; ++next) waiting.insert(next);
      const Clock::time_point now = Clock::now();
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (!searchable(*it)) {
          ++it;
          continue;
        }
        latencies.push_back(Since(delivered[static_cast<size_t>(*it)], now));
        it = waiting.erase(it);
      }
      if (now > give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const Clock::time_point start = Clock::now();
  for (int id = 1; id <= total; ++id) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * (id - 1) / rate));
    delivered[static_cast<size_t>(id)] = Clock::now();
    kafka.Produce(kTopic, id % 6, test::MaxwellKey("shop", "orders", id), Message(id, id, false));
    produced = id + 1;
  }
  const double producing = Since(start, Clock::now());
  kafka.Flush();
  watcher.join();
  (*process)->Stop();
  if (latencies.size() != static_cast<size_t>(total)) {
    std::printf("%zu of %d documents never arrived; log:\n%s\n", total - latencies.size(), total,
                test::FileTail(log).c_str());
    return 1;
  }
  std::sort(latencies.begin(), latencies.end());
  const auto percentile = [&](double p) {
    return 1000 * latencies[std::min(latencies.size() - 1,
                                     static_cast<size_t>(p / 100 * static_cast<double>(total)))];
  };
  std::printf(
      "  latency: %d messages at %d/s (%.1f/s achieved), 6 partitions, batch.flush_interval %s\n"
      "  commit -> searchable: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      total, rate, total / producing, flush_interval.c_str(), percentile(50), percentile(90),
      percentile(99), latencies.back() * 1000);
  return 0;
}

}  // namespace
}  // namespace searchsync::bench

int main(int argc, char** argv) {
  using namespace searchsync;
  using namespace searchsync::bench;
  if (argc > 1 && std::string(argv[1]) == "latency") {
    const int rate = argc > 2 ? std::atoi(argv[2]) : 1000;
    const int seconds = argc > 3 ? std::atoi(argv[3]) : 20;
    const std::string flush = argc > 4 ? argv[4] : "100ms";
    PrintHeader("bench_maxwell latency",
                std::to_string(rate) + " messages/s for " + std::to_string(seconds) + " s", kSeed);
    return Latency(rate, seconds, flush);
  }
  const int messages = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  const int partitions = argc > 2 ? std::atoi(argv[2]) : 24;
  const int distinct_ids = argc > 3 ? std::atoi(argv[3]) : 200'000;
  PrintHeader("bench_maxwell",
              std::to_string(messages) + " messages, " + std::to_string(partitions) +
                  " partitions, " + std::to_string(distinct_ids) + " distinct ids",
              kSeed);

  test::KafkaMock kafka(1);
  kafka.CreateTopic(kTopic, partitions);
  std::mt19937_64 rng(kSeed);
  std::vector<bool> seen(static_cast<size_t>(distinct_ids), false);
  for (int serial = 0; serial < messages; ++serial) {
    const int64_t id = static_cast<int64_t>(rng() % static_cast<uint64_t>(distinct_ids));
    const bool update = seen[static_cast<size_t>(id)];
    seen[static_cast<size_t>(id)] = true;
    kafka.Produce(kTopic, static_cast<int32_t>(id % partitions),
                  test::MaxwellKey("shop", "orders", id), Message(id, serial, update));
  }
  kafka.Flush();
  for (const auto& [partition, first] : kafka.FirstOffsets(kTopic, partitions)) {
    if (first != 0) {
      std::printf(
          "partition %d lost its first %lld messages to the mock's log cap: use more "
          "partitions\n",
          partition, static_cast<long long>(first));
      return 1;
    }
  }

  rusage raw_before{};
  getrusage(RUSAGE_SELF, &raw_before);
  const RawResult raw = RawConsume(kafka.bootstraps(), partitions);
  rusage raw_after{};
  getrusage(RUSAGE_SELF, &raw_after);
  std::printf(
      "  raw librdkafka consumer: %zu messages (%.1f MB), CPU user %.2fs sys %.2fs (with the mock "
      "broker)\n",
      raw.messages, static_cast<double>(raw.bytes) / 1e6,
      Seconds(raw_after.ru_utime) - Seconds(raw_before.ru_utime),
      Seconds(raw_after.ru_stime) - Seconds(raw_before.ru_stime));
  Report("raw: from start", raw.messages, raw.bytes, raw.total_seconds);
  Report("raw: from first message", raw.messages, raw.bytes, raw.from_first_seconds);

  test::TypesenseServer typesense(test::TypesenseServerOptions{.discard = true});
  test::TempDir dir;
  const std::string config = dir / "pipelines.yaml";
  // KAFKA='{ queued.max.messages.kbytes: "65536" }' tries other librdkafka settings,
  // QUEUE='{ max_bytes: 16MiB }' another change queue.
  const char* kafka_settings = std::getenv("KAFKA");
  std::ofstream(config) << PipelineConfig(typesense, kafka.bootstraps(), dir / "state", "1s",
                                          kafka_settings ? kafka_settings : "{}");

  const std::string log = dir / "searchsync.log";
  rusage own_before{};
  getrusage(RUSAGE_SELF, &own_before);
  const Clock::time_point start = Clock::now();
  const pid_t child = fork();
  if (child == 0) {
    std::freopen(log.c_str(), "w", stderr);
    execl(SEARCHSYNC_BINARY, SEARCHSYNC_BINARY, "run", "--once", "-c", config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(child, &status, 0, &usage);
  const Clock::time_point end = Clock::now();
  rusage own_after{};
  getrusage(RUSAGE_SELF, &own_after);
  const auto attempts = typesense.WriteAttempts();
  Clock::time_point first_import = end;
  for (const auto& attempt : attempts) {
    if (attempt.route == test::TypesenseRoute::kImport && attempt.at < first_import) {
      first_import = attempt.at;
    }
  }
  const auto counters = typesense.Counters();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("searchsync failed (status %d); log:\n%s\n", status,
                test::FileTail(log, 3000).c_str());
    return 1;
  }
  std::printf(
      "  searchsync run --once: exit 0, %lld documents written, peak RSS %.1f MiB, "
      "CPU user %.2fs sys %.2fs\n",
      static_cast<long long>(counters.documents_written),
      static_cast<double>(usage.ru_maxrss) / 1024.0,
      static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6,
      static_cast<double>(usage.ru_stime.tv_sec) + usage.ru_stime.tv_usec / 1e6);
  std::printf(
      "  meanwhile in this process (the test server, the mock broker): CPU user %.2fs sys %.2fs\n",
      Seconds(own_after.ru_utime) - Seconds(own_before.ru_utime),
      Seconds(own_after.ru_stime) - Seconds(own_before.ru_stime));
  Report("searchsync: from start", static_cast<size_t>(messages), raw.bytes, Since(start, end));
  Report("searchsync: from first import", static_cast<size_t>(messages), raw.bytes,
         Since(first_import, end));
  std::printf("  searchsync / raw (from start): %.2f\n", raw.total_seconds / Since(start, end));
  return 0;
}
