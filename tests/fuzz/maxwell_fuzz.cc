// Maxwell messages from Kafka: the input is the message key, a newline, then the message value.
// Every message decodes to a change, is ignored, or is dead-lettered with a reason; a change has
// an id and a document of valid JSON values, and its import line is valid JSON.
#include <string>

#include "sinks/typesense_encode.h"
#include "sources/maxwell.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {
namespace {

void DecodeWith(MaxwellDecoder& decoder, std::string_view key, std::string_view value) {
  Event event;
  std::string reason;
  switch (decoder.Decode(key, value, event, reason)) {
    case MaxwellDecoder::Outcome::kIgnored:
      return;
    case MaxwellDecoder::Outcome::kBad: {
      Check(!reason.empty(), "a bad message has a reason");
      const Event dead = BadMaxwellMessage("topic", 0, 7, key, value, reason);
      for (const Field& field : dead.document) {
        Check(IsJson(field.json), "a dead-lettered message's fields are valid JSON");
      }
      return;
    }
    case MaxwellDecoder::Outcome::kChange:
      break;
  }
  Check(!event.id.empty(), "a change has an id");
  if (!IsJson(value)) return;  // the raw values copied from an invalid message may be invalid
  for (const Field& field : event.document) {
    Check(IsJson(field.json), "a change's fields are valid JSON");
  }
  Batch batch;
  batch.events.push_back(std::move(event));
  const ImportBody body = EncodeUpserts(batch);
  if (!body.empty()) Check(IsJson(body.jsonl), "a change's import line is valid JSON");
}

}  // namespace

void FuzzMaxwell(std::string_view input) {
  // Decoders reuse their buffers between messages, as the source's does.
  static MaxwellDecoder by_kafka_key("shop", "products", {});
  static MaxwellDecoder by_columns("shop", "products", {"id", "sku"});
  const size_t newline = input.find('\n');
  const std::string_view key = newline == std::string_view::npos ? "" : input.substr(0, newline);
  const std::string_view value =
      newline == std::string_view::npos ? input : input.substr(newline + 1);
  DecodeWith(by_kafka_key, key, value);
  DecodeWith(by_columns, key, value);

  if (Result<KafkaOffsets> offsets = DecodeKafkaOffsets(input); offsets.ok()) {
    std::map<int32_t, int64_t> map(offsets->begin(), offsets->end());
    std::string encoded;
    AppendKafkaOffsets(encoded, map);
    Result<KafkaOffsets> again = DecodeKafkaOffsets(encoded);
    Check(again.ok(), "encoded Kafka offsets decode");
  }
}

}  // namespace searchsync::fuzz
