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

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
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

}  // namespace
}  // namespace searchsync::bench

int main(int argc, char** argv) {
  using namespace searchsync;
  using namespace searchsync::bench;
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

  const RawResult raw = RawConsume(kafka.bootstraps(), partitions);
  std::printf("  raw librdkafka consumer: %zu messages (%.1f MB)\n", raw.messages,
              static_cast<double>(raw.bytes) / 1e6);
  Report("raw: from start", raw.messages, raw.bytes, raw.total_seconds);
  Report("raw: from first message", raw.messages, raw.bytes, raw.from_first_seconds);

  test::TypesenseServer typesense(test::TypesenseServerOptions{.discard = true});
  test::TempDir dir;
  const std::string config = dir / "pipelines.yaml";
  std::ofstream(config)
      << "typesense:\n  nodes: [\"" << typesense.url() << "\"]\n  api_key: " << typesense.api_key()
      << "\nstate: { path: \"" << (dir / "state") << "\" }\n"
      << "pipelines:\n  - name: orders\n    source:\n      type: maxwell\n"
      << "      brokers: \"" << kafka.bootstraps() << "\"\n      topic: " << kTopic
      << "\n      group_id: bench-searchsync\n      database: shop\n      table: orders\n"
      << "    sink:\n      collection: orders\n"
      << "      schema: { fields: [{ name: sku, type: string }, { name: status, type: string }, "
         "{ name: total, type: float }, { name: qty, type: int32 }, "
         "{ name: updated_at, type: string }] }\n"
      << "      batch: { max_events: 10000, max_bytes: 8MiB, flush_interval: 1s }\n"
      << "      concurrency: 2\n";

  const std::string log = dir / "searchsync.log";
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
  Report("searchsync: from start", static_cast<size_t>(messages), raw.bytes, Since(start, end));
  Report("searchsync: from first import", static_cast<size_t>(messages), raw.bytes,
         Since(first_import, end));
  std::printf("  searchsync / raw (from start): %.2f\n", raw.total_seconds / Since(start, end));
  return 0;
}
