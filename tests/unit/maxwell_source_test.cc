#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "pipeline/app/registry.h"
#include "sources/maxwell.h"

namespace searchsync {
namespace {

using Outcome = MaxwellDecoder::Outcome;

struct Decoded {
  Outcome outcome;
  Event event;
  std::string reason;
};

Decoded Decode(std::string_view value, std::string_view key = "",
               std::vector<std::string> primary_key = {}) {
  MaxwellDecoder decoder("shop", "orders", std::move(primary_key));
  Decoded out;
  out.outcome = decoder.Decode(key, value, out.event, out.reason);
  return out;
}

std::string FieldsOf(const Event& event) {
  std::string out;
  for (const Field& field : event.document) out += field.name + "=" + field.json + ";";
  return out;
}

TEST_CASE("Maxwell insert, update and bootstrap-insert become upserts of the full row",
          "[maxwell]") {
  for (const char* type : {"insert", "update", "bootstrap-insert"}) {
    const Decoded decoded =
        Decode(std::string(R"({"database":"shop","table":"orders","type":")") + type +
               R"(","ts":1732170042,"xid":88121,"primary_key":[501],"primary_key_columns":["id"],)"
               R"("data":{"id":501,"sku":"A-17","tags":["a","b"],"meta":{"x":[1]},"total":19.90,)"
               R"("note":null},"old":{"sku":"A-16"}})");
    INFO(type);
    REQUIRE(decoded.outcome == Outcome::kChange);
    CHECK(decoded.event.op == Op::kUpsert);
    CHECK(decoded.event.id == "501");
    CHECK(FieldsOf(decoded.event) ==
          R"(id=501;sku="A-17";tags=["a","b"];meta={"x":[1]};total=19.90;note=null;)");
  }
}

TEST_CASE("Maxwell delete becomes a delete of the row's id", "[maxwell]") {
  const Decoded decoded =
      Decode(R"({"database":"shop","table":"orders","type":"delete","primary_key_columns":["id"],)"
             R"("data":{"id":"sku-\"7","total":1}})");
  REQUIRE(decoded.outcome == Outcome::kChange);
  CHECK(decoded.event.op == Op::kDelete);
  CHECK(decoded.event.id == "sku-\"7");
  CHECK(decoded.event.document.empty());
}

TEST_CASE("Maxwell messages of other tables, bootstrap markers and DDL are ignored", "[maxwell]") {
  for (const char* value : {
           R"({"database":"shop","table":"users","type":"insert","data":{"id":1}})",
           R"({"database":"other","table":"orders","type":"insert","data":{"id":1}})",
           R"({"database":"shop","table":"orders","type":"bootstrap-start","data":{}})",
           R"({"database":"shop","table":"orders","type":"bootstrap-complete","data":{}})",
           R"({"type":"table-alter","database":"shop","table":"orders","sql":"ALTER ..."})",
           R"({"type":"database-create","database":"shop","sql":"CREATE DATABASE shop"})",
       }) {
    INFO(value);
    CHECK(Decode(value).outcome == Outcome::kIgnored);
  }
}

TEST_CASE("Maxwell ids come from primary_key_columns, the configured key, or the Kafka key",
          "[maxwell]") {
  const std::string composite =
      R"({"database":"shop","table":"orders","type":"insert","primary_key_columns":["a","b"],)"
      R"("data":{"b":"x|y","a":7}})";
  CHECK(Decode(composite).event.id == "7|x\\|y");

  const std::string bare = R"({"database":"shop","table":"orders","type":"insert",)"
                           R"("data":{"region":"eu","n":3}})";
  CHECK(Decode(bare, "", {"region", "n"}).event.id == "eu|3");
  CHECK(
      Decode(bare, R"({"database":"shop","table":"orders","pk.region":"eu","pk.n":3})").event.id ==
      "eu|3");
  CHECK(Decode(bare, R"(["shop","orders",[{"region":"eu"},{"n":3}]])").event.id == "eu|3");

  const Decoded uuid = Decode(bare, R"({"database":"shop","table":"orders","_uuid":"8d1e"})");
  CHECK(uuid.outcome == Outcome::kBad);
  CHECK(uuid.reason.find("_uuid") != std::string::npos);
}

TEST_CASE("Malformed Maxwell messages are reported with a reason", "[maxwell]") {
  const std::pair<std::string, std::string> cases[] = {
      {"{not json", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {"", "empty message"},
      {R"({"database":"shop","table":"orders","type":"insert","data":{"x":1}})", "no primary key"},
      {R"({"database":"shop","table":"orders","type":"insert","primary_key_columns":["id"],)"
       R"("data":{"id":null}})",
       "`id`"},
      {R"({"database":"shop","table":"orders","type":7,"data":{}})", "`type` is not a string"},
      {R"({"database":"shop","table":"orders","type":"insert","data":[1]})",
       "`data` is not an object"},
      {R"({"database":"shop","table":"orders","type":"upsert","data":{}})", "unknown type"},
      {R"({"database":"shop","table":"orders","type":"insert","primary_key_columns":"id",)"
       R"("data":{"id":1}})",
       "`primary_key_columns` is not a list"},
  };
  for (const auto& [value, reason] : cases) {
    INFO(value);
    const Decoded decoded = Decode(value);
    CHECK(decoded.outcome == Outcome::kBad);
    INFO(decoded.reason);
    CHECK(decoded.reason.find(reason) != std::string::npos);
  }
}

TEST_CASE("A malformed Kafka key is a bad message, not an exception", "[maxwell]") {
  // Found by fuzz_maxwell: reaching a value inside a broken key used to throw out of Decode.
  const std::string value = R"({"database":"shop","table":"orders","type":"insert","data":{}})";
  for (const char* key : {R"(["shop","orders",[{"id":501])", R"({"database":"shop","pk.id":)",
                          R"(["shop","orders",[{"id":})"}) {
    INFO(key);
    const Decoded decoded = Decode(value, key);
    CHECK(decoded.outcome == Outcome::kBad);
    CHECK(decoded.reason.find("Kafka key") != std::string::npos);
  }
}

TEST_CASE("A bad Maxwell message becomes a dead-letter event naming where it came from",
          "[maxwell]") {
  const Event event = BadMaxwellMessage("maxwell", 3, 17, "k", "\xff\xfe", "not JSON");
  CHECK(event.id == "maxwell/3/17");
  CHECK(event.dead_letter_reason ==
        "maxwell message topic=maxwell partition=3 offset=17: not JSON");
  CHECK(FieldsOf(event) ==
        R"(topic="maxwell";partition=3;offset=17;key="k";message={"base64":"//4="};)");
}

TEST_CASE("Kafka offsets round-trip through the checkpoint text", "[maxwell]") {
  std::string token;
  AppendKafkaOffsets(token, {{0, 3}, {5, 120}});
  CHECK(token == "0:3,5:120");
  CHECK(DecodeKafkaOffsets(token).value() == KafkaOffsets{{0, 3}, {5, 120}});
  CHECK(DecodeKafkaOffsets("").value().empty());
  CHECK_FALSE(DecodeKafkaOffsets("0:3,").ok());
  CHECK_FALSE(DecodeKafkaOffsets("{\"rows\":[]}").ok());
}

TEST_CASE("The offsets text kept up to date equals the text written from scratch", "[maxwell]") {
  // Offsets that keep their width are rewritten in place, longer and shorter ones shift what
  // follows, new and revoked partitions rebuild: after each step the text is what
  // AppendKafkaOffsets writes for the same offsets.
  KafkaOffsetsText kept;
  CHECK(kept.text().empty());
  std::map<int32_t, int64_t> offsets;
  std::mt19937 rng(7);
  for (int step = 0; step < 5'000; ++step) {
    const int32_t partition = static_cast<int32_t>(rng() % 12);
    if (rng() % 50 == 0) {
      kept.Erase(partition);
      offsets.erase(partition);
    } else {
      // Mostly forward by one (a message read), now and then a jump either way (a seek).
      const int64_t offset =
          rng() % 20 == 0 ? static_cast<int64_t>(rng() % 2'000'000) : offsets[partition] + 1;
      kept.Set(partition, offset);
      offsets[partition] = offset;
    }
    std::string expected;
    AppendKafkaOffsets(expected, offsets);
    INFO("step " << step);
    REQUIRE(kept.text() == expected);
    REQUIRE(kept.offsets() == offsets);
  }
}

TEST_CASE("Maxwell source config: pass-through kafka keys checked, secrets never shown",
          "[maxwell][config]") {
  const std::string yaml = R"(
typesense: { nodes: ["http://127.0.0.1:8108"], api_key: k }
pipelines:
  - name: orders
    source:
      type: maxwell
      brokers: 127.0.0.1:9092
      topic: maxwell
      group_id: searchsync-orders
      database: shop
      table: orders
      kafka: { sasl.password: hunter2-secret, enable.auto.commit: "true", socket.timeout.ms: soon }
    sink: { collection: orders, schema: { fields: [{ name: sku, type: string }] } }
)";
  const Result<Config> config = ParseConfig(yaml, "pipelines.yaml");
  REQUIRE_FALSE(config.ok());
  const std::string& message = config.status().message();
  CHECK(message.find("enable.auto.commit: set by searchsync itself") != std::string::npos);
  CHECK(message.find("socket.timeout.ms") != std::string::npos);
  CHECK(message.find("hunter2") == std::string::npos);

  std::string good = yaml;
  good.replace(good.find("kafka:"), good.find('\n', good.find("kafka:")) - good.find("kafka:"),
               "kafka: { sasl.password: hunter2-secret, security.protocol: plaintext }");
  const Result<Config> parsed = ParseConfig(good, "pipelines.yaml");
  INFO((parsed.ok() ? "" : parsed.status().message()));
  REQUIRE(parsed.ok());
  CHECK(parsed->pipelines.at(0).source_type == "maxwell");
}

}  // namespace
}  // namespace searchsync
