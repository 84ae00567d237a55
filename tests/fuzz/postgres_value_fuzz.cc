// Postgres values in text form: the first byte picks a column type, the rest is the value's text.
// For any UTF-8 text the JSON out is valid (json columns: when the text was valid JSON, as the
// server guarantees), and an array literal becomes a JSON array. The checkpoint token round-trips.
#include <cstdint>
#include <string>

#include "sources/postgres.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {
namespace {

struct Type {
  uint32_t oid;
  bool json;  // its values (or elements) are JSON text
};
constexpr Type kTypes[] = {
    {21, false},   {23, false},   {20, false},    {26, false},   {1700, false}, {700, false},
    {701, false},  {16, false},   {114, true},    {3802, true},  {1184, false}, {1114, false},
    {17, false},   {25, false},   {1082, false},  {2950, false}, {1186, false}, {1000, false},
    {1001, false}, {1007, false}, {1009, false},  {1022, false}, {1185, false}, {1231, false},
    {199, true},   {3807, true},  {12345, false},  // an enum or any type the source does not know
};

}  // namespace

void FuzzPostgresValue(std::string_view input) {
  if (input.empty()) return;
  const Type& type = kTypes[static_cast<uint8_t>(input[0]) % std::size(kTypes)];
  const std::string_view text = input.substr(1);
  const bool utf8 = IsUtf8(text);

  const std::string json = PostgresValueToJson(type.oid, text);
  if (utf8 && (!type.json || (type.oid != 199 && type.oid != 3807 && IsJson(text)))) {
    Check(IsJson(json), "a value's JSON is valid");
  }
  if (std::optional<std::string> array = PostgresArrayToJson(text, type.oid)) {
    Check(array->starts_with('[') && array->ends_with(']'), "an array literal is a JSON array");
    if (utf8 && !type.json) Check(IsJson(*array), "an array's JSON is valid");
  }

  if (Result<PostgresCursor> cursor = DecodePostgresCursor(text); cursor.ok()) {
    Result<PostgresCursor> again = DecodePostgresCursor(EncodePostgresCursor(*cursor));
    Check(again.ok() && *again == *cursor, "a checkpoint token round-trips");
  }
  (void)QuotePostgresName(text);
}

}  // namespace searchsync::fuzz
