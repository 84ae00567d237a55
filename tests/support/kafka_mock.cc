#include "tests/support/kafka_mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "pipeline/json.h"

namespace searchsync::test {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "kafka mock: %s\n", message.c_str());
  std::abort();
}

rd_kafka_conf_t* QuietConf() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[256];
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  return conf;
}

}  // namespace

KafkaMock::KafkaMock(int brokers) {
  char error[512];
  cluster_handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, QuietConf(), error, sizeof(error));
  if (cluster_handle_ == nullptr) Die(std::string("kafka mock handle: ") + error);
  cluster_ = rd_kafka_mock_cluster_new(cluster_handle_, brokers);
  if (cluster_ == nullptr) Die("rd_kafka_mock_cluster_new failed");
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  rd_kafka_conf_t* conf = QuietConf();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), error, sizeof(error));
  rd_kafka_conf_set(conf, "linger.ms", "5", error, sizeof(error));
  // The mock's log is capped at 5 MiB per partition: compressed batches hold 5-10x more.
  rd_kafka_conf_set(conf, "compression.codec", "zstd", error, sizeof(error));
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (producer_ == nullptr) Die(std::string("kafka producer: ") + error);
}

KafkaMock::~KafkaMock() {
  if (producer_) {
    rd_kafka_flush(producer_, 10'000);
    rd_kafka_destroy(producer_);
  }
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (cluster_handle_) rd_kafka_destroy(cluster_handle_);
}

void KafkaMock::CreateTopic(const std::string& topic, int partitions) {
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Die(std::string("create topic: ") + rd_kafka_err2str(err));
}

void KafkaMock::Produce(const std::string& topic, int32_t partition, std::string_view key,
                        std::string_view value) {
  for (;;) {
    // librdkafka's RD_KAFKA_V_* macros are GNU statement expressions, which clang's -Wpedantic
    // reports in the code that expands them.
#ifdef __clang__
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
#ifdef __clang__
#pragma clang diagnostic pop
#endif
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_, 10);
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Die(std::string("produce: ") + rd_kafka_err2str(err));
    return;
  }
}

void KafkaMock::Flush() {
  if (rd_kafka_flush(producer_, 60'000) != RD_KAFKA_RESP_ERR_NO_ERROR) Die("produce: flush");
}

std::map<int32_t, int64_t> KafkaMock::Committed(const std::string& group, const std::string& topic,
                                                int partitions) {
  char error[512];
  rd_kafka_conf_t* conf = QuietConf();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps_.c_str(), error, sizeof(error));
  rd_kafka_conf_set(conf, "group.id", group.c_str(), error, sizeof(error));
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (consumer == nullptr) Die(std::string("kafka consumer: ") + error);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int32_t partition = 0; partition < partitions; ++partition) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  }
  const rd_kafka_resp_err_t err = rd_kafka_committed(consumer, list, 30'000);
  std::map<int32_t, int64_t> out;
  for (int i = 0; i < list->cnt; ++i) out[list->elems[i].partition] = list->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(consumer);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Die(std::string("committed: ") + rd_kafka_err2str(err));
  return out;
}

std::map<int32_t, int64_t> KafkaMock::FirstOffsets(const std::string& topic, int partitions) {
  std::map<int32_t, int64_t> out;
  for (int32_t partition = 0; partition < partitions; ++partition) {
    int64_t low = -1;
    int64_t high = -1;
    const rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(producer_, topic.c_str(), partition, &low, &high, 30'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) Die(std::string("watermarks: ") + rd_kafka_err2str(err));
    out[partition] = low;
  }
  return out;
}

std::string MaxwellMessage(std::string_view database, std::string_view table, std::string_view type,
                           std::string_view data, std::string_view primary_key_columns) {
  std::string out = "{\"database\":" + JsonString(database) + ",\"table\":" + JsonString(table) +
                    ",\"type\":" + JsonString(type) + ",\"ts\":1732170000,\"xid\":88120";
  if (!primary_key_columns.empty()) {
    out += ",\"primary_key_columns\":";
    out += primary_key_columns;
  }
  out += ",\"data\":";
  out += data;
  out += "}";
  return out;
}

std::string MaxwellKey(std::string_view database, std::string_view table, int64_t id) {
  return "{\"database\":" + JsonString(database) + ",\"table\":" + JsonString(table) +
         ",\"pk.id\":" + std::to_string(id) + "}";
}

}  // namespace searchsync::test
