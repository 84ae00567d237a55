#pragma once
// KafkaMock: librdkafka's mock cluster (real Kafka protocol on real sockets, inside this
// process) and a producer of Maxwell-format messages, for tests of the maxwell source.
//
//   KafkaMock kafka;                     // 3 brokers on 127.0.0.1
//   kafka.CreateTopic("maxwell", 6);
//   kafka.Produce("maxwell", 2, key, MaxwellMessage({...}));
//   kafka.Flush();
//   ... run searchsync with brokers = kafka.bootstraps() ...
//   kafka.Committed("group", "maxwell", 6)  // offsets the group committed
//
// Child processes (the searchsync binary) reach the brokers through bootstraps(). Fault
// injection goes through cluster() and rdkafka_mock.h. Thread safety: one test thread.
//
// The mock keeps at most 5 MiB (and 100,000 messages) per partition and drops the oldest
// batches beyond that, as retention would; messages are produced zstd-compressed so a partition
// holds ~20,000 Maxwell messages. Tests that rely on every message being there check
// FirstOffsets() is all zeros.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace searchsync::test {

class KafkaMock {
 public:
  explicit KafkaMock(int brokers = 3);
  ~KafkaMock();
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }
  rd_kafka_mock_cluster_s* cluster() { return cluster_; }

  void CreateTopic(const std::string& topic, int partitions);
  // Queues one message (aborts when it cannot be queued); Flush() waits for delivery.
  void Produce(const std::string& topic, int32_t partition, std::string_view key,
               std::string_view value);
  void Flush();
  // The offsets `group` committed for partitions 0..partitions-1 of `topic`; -1 for none.
  std::map<int32_t, int64_t> Committed(const std::string& group, const std::string& topic,
                                       int partitions);
  // The oldest offset still held by each partition 0..partitions-1 (0 unless retention dropped
  // messages).
  std::map<int32_t, int64_t> FirstOffsets(const std::string& topic, int partitions);

 private:
  rd_kafka_s* cluster_handle_ = nullptr;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  rd_kafka_s* producer_ = nullptr;
  std::string bootstraps_;
};

// One Maxwell message (field order as Maxwell emits it). `data` is the JSON object of the row;
// `primary_key_columns` a JSON array, omitted when empty.
std::string MaxwellMessage(std::string_view database, std::string_view table, std::string_view type,
                           std::string_view data,
                           std::string_view primary_key_columns = R"(["id"])");
// The default (hash) Kafka key: {"database":..,"table":..,"pk.id":<id>}.
std::string MaxwellKey(std::string_view database, std::string_view table, int64_t id);

}  // namespace searchsync::test
