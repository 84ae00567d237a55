#include "sources/maxwell.h"

#include <librdkafka/rdkafka.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <set>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "sources/common.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
namespace od = simdjson::ondemand;

// ---- Keys -----------------------------------------------------------------------------------

constexpr Key<MysqlFullReadOptions> kSnapshotKeyList[] = {
    {"dsn", KeyType::kSecret, &MysqlFullReadOptions::dsn, true,
     "MySQL/MariaDB to read from, tcp://user:${MYSQL_PASSWORD}@host:3306/db"},
    {"query", KeyType::kString, &MysqlFullReadOptions::query, false,
     "the SELECT that reads every row; default SELECT * FROM `database`.`table`"},
};
constinit const KeyTable<MysqlFullReadOptions> kSnapshotKeys(kSnapshotKeyList);

constexpr Key<MaxwellRelationOptions> kRelationKeyList[] = {
    {"table", KeyType::kString, &MaxwellRelationOptions::table, true,
     "the related table, in `database`"},
    {"primary_key", KeyType::kStringList, &MaxwellRelationOptions::primary_key, false,
     "its key column, whose values fill the ? of documents (default id)"},
    {"documents", KeyType::kString, &MaxwellRelationOptions::documents, false,
     "SELECT run in MySQL returning the ids of the documents a change touches; ? is the list "
     "of the changed rows' keys, e.g. SELECT id FROM products WHERE category_id IN (?)"},
    {"document_key", KeyType::kString, &MaxwellRelationOptions::document_key, false,
     "or: the column of the row that holds the document id (link tables)"},
    {"updated_at", KeyType::kAny, kReadByHand, false, "postgres only"},
    {"tombstone_table", KeyType::kAny, kReadByHand, false, "postgres only"},
};
constinit const KeyTable<MaxwellRelationOptions> kRelationKeys(kRelationKeyList);

constexpr Key<MaxwellOptions> kMaxwellKeyList[] = {
    {"brokers", KeyType::kString, &MaxwellOptions::brokers, true,
     "Kafka bootstrap servers, host:port[,host:port...]"},
    {"topic", KeyType::kString, &MaxwellOptions::topic, true, "the topic Maxwell writes to"},
    {"group_id", KeyType::kString, &MaxwellOptions::group_id, true,
     "consumer group; its committed offsets are the checkpoint (one group per pipeline)"},
    {"database", KeyType::kString, &MaxwellOptions::database, true,
     "MySQL database whose rows this pipeline takes"},
    {"table", KeyType::kString, &MaxwellOptions::table, true,
     "MySQL table whose rows this pipeline takes; other tables on the topic are skipped"},
    {"primary_key", KeyType::kStringList, &MaxwellOptions::primary_key, false,
     "key columns when messages carry no primary_key_columns; unset: the Kafka key"},
    {"kafka", KeyType::kAny, kReadByHand, false,
     "librdkafka properties passed through, e.g. { security.protocol: SASL_SSL }; values are "
     "treated as secrets"},
    {"snapshot", KeyType::kMapping, kReadByHand, false,
     "{ dsn, query }: full read from MySQL for the first start and every reindex (rows as "
     "Maxwell writes them); unset: backfill with Maxwell's bootstrap"},
    {"relations", KeyType::kSequence, kReadByHand, false,
     "tables whose changes change documents: - { table, primary_key (default id), documents "
     "or document_key }; every document a change touches is re-read through snapshot.query "
     "restricted to its ids"},
};
constinit const KeyTable<MaxwellOptions> kMaxwellKeyTable(kMaxwellKeyList);

// Properties the source sets itself: the at-least-once contract depends on them.
constexpr std::string_view kReservedKafkaSettings[] = {
    "bootstrap.servers",        "metadata.broker.list", "group.id",     "enable.auto.commit",
    "enable.auto.offset.store", "enable.partition.eof", "rebalance_cb", "offset_commit_cb"};

// How long an empty Poll waits for messages before reporting why none came.
constexpr auto kPollWindow = 1s;
// How long one wait for the next message lasts, in an empty Poll.
constexpr std::chrono::milliseconds kPollWait = 100ms;
constexpr auto kFirstAssignmentWindow = 15s;  // joining a group takes a few seconds

std::string_view TrimRight(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

std::string JsonText(std::string_view bytes) {
  if (simdjson::validate_utf8(bytes.data(), bytes.size())) return JsonString(bytes);
  std::string out = "{\"base64\":\"";
  AppendBase64(out, bytes);
  out += "\"}";
  return out;
}

// The text of a scalar JSON value as a key part: strings unescaped, numbers and booleans as
// written. False for null, objects and arrays, and for a value a malformed key does not reach
// (`result` holds that error; converting it to a value would throw).
bool KeyPartText(simdjson::simdjson_result<od::value> result, std::string& out) {
  od::value value;
  if (std::move(result).get(value)) return false;
  od::json_type type;
  if (value.type().get(type)) return false;
  switch (type) {
    case od::json_type::string: {
      std::string_view text;
      if (value.get_string().get(text)) return false;
      out.assign(text);
      return true;
    }
    case od::json_type::number:
    case od::json_type::boolean: {
      out.assign(TrimRight(value.raw_json_token()));
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

std::span<const KeySpec> MaxwellKeys() { return kMaxwellKeyTable.specs(); }

// ---- Offsets ----------------------------------------------------------------------------------

void AppendKafkaOffsets(std::string& out, const std::map<int32_t, int64_t>& offsets) {
  char number[24];
  bool first = true;
  for (const auto& [partition, offset] : offsets) {
    if (!first) out.push_back(',');
    first = false;
    out.append(number, std::to_chars(number, number + sizeof(number), partition).ptr);
    out.push_back(':');
    out.append(number, std::to_chars(number, number + sizeof(number), offset).ptr);
  }
}

const std::string& KafkaOffsetsText::text() {
  if (!stale_) return text_;
  text_.clear();
  digits_.clear();
  char number[24];
  for (const auto& [partition, offset] : offsets_) {
    if (!text_.empty()) text_.push_back(',');
    text_.append(number, std::to_chars(number, number + sizeof(number), partition).ptr);
    text_.push_back(':');
    const size_t start = text_.size();
    text_.append(number, std::to_chars(number, number + sizeof(number), offset).ptr);
    digits_.emplace(partition, Digits{start, text_.size() - start});
  }
  stale_ = false;
  return text_;
}

void KafkaOffsetsText::Set(int32_t partition, int64_t offset) {
  const auto [entry, added] = offsets_.insert_or_assign(partition, offset);
  if (added) stale_ = true;
  if (stale_) return;
  char number[24];
  const size_t size =
      static_cast<size_t>(std::to_chars(number, number + sizeof(number), offset).ptr - number);
  auto digits = digits_.find(partition);
  text_.replace(digits->second.start, digits->second.size, number, size);
  if (size == digits->second.size) return;
  const size_t old_size = std::exchange(digits->second.size, size);
  for (++digits; digits != digits_.end(); ++digits) digits->second.start += size - old_size;
}

void KafkaOffsetsText::Erase(int32_t partition) {
  if (offsets_.erase(partition) > 0) stale_ = true;
}

Result<KafkaOffsets> DecodeKafkaOffsets(std::string_view token) {
  KafkaOffsets offsets;
  const char* pos = token.data();
  const char* end = token.data() + token.size();
  while (pos < end) {
    int32_t partition = 0;
    int64_t offset = 0;
    auto parsed = std::from_chars(pos, end, partition);
    if (parsed.ec != std::errc() || parsed.ptr == end || *parsed.ptr != ':') break;
    parsed = std::from_chars(parsed.ptr + 1, end, offset);
    if (parsed.ec != std::errc() || partition < 0 || offset < 0) break;
    offsets.emplace_back(partition, offset);
    pos = parsed.ptr;
    if (pos == end) return offsets;
    if (*pos != ',') break;
    ++pos;
  }
  if (pos == end && token.empty()) return offsets;
  return InvalidArgument("maxwell checkpoint " + JsonString(token) +
                         " is not one this source wrote (expected partition:offset,...)");
}

// ---- Messages ---------------------------------------------------------------------------------

struct MaxwellDecoder::Impl {
  std::string database;
  std::string table;
  std::vector<std::string> primary_key;

  od::parser parser;       // the message
  od::parser data_parser;  // its `data` object, read after the fields that say what it is
  od::parser key_parser;   // the Kafka key
  std::string buffer;      // the message, padded for simdjson
  std::string key_buffer;
  std::vector<std::string> columns;    // key columns of this message
  std::vector<std::string> parts;      // their values' text (the first columns.size() used)
  std::vector<std::string> key_parts;  // values read from the Kafka key
  std::vector<bool> found;

  // Reads the key values from the Kafka key into `key_parts`; a reason when it cannot.
  const char* KeyFromKafkaKey(std::string_view key);
};

MaxwellDecoder::MaxwellDecoder(std::string database, std::string table,
                               std::vector<std::string> primary_key)
    : impl_(std::make_unique<Impl>()) {
  impl_->database = std::move(database);
  impl_->table = std::move(table);
  impl_->primary_key = std::move(primary_key);
}

MaxwellDecoder::~MaxwellDecoder() = default;

namespace {

void Pad(std::string& buffer, std::string_view bytes) {
  buffer.resize(bytes.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buffer.data(), bytes.data(), bytes.size());
}

bool IsIgnoredType(std::string_view type) {
  return type == "bootstrap-start" || type == "bootstrap-complete" ||
         type.starts_with("database-") || type.starts_with("table-");
}

}  // namespace

const char* MaxwellDecoder::Impl::KeyFromKafkaKey(std::string_view key) {
  if (key.empty()) return "no primary key: no primary_key_columns, none configured, no Kafka key";
  Pad(key_buffer, key);
  od::document doc;
  if (key_parser.iterate(key_buffer.data(), key.size(), key_buffer.size()).get(doc)) {
    return "the Kafka key is not JSON";
  }
  od::json_type type;
  if (doc.type().get(type)) return "the Kafka key is not JSON";
  key_parts.clear();
  std::string part;
  if (type == od::json_type::object) {
    // Hash format: {"database":"shop","table":"orders","pk.id":501}
    od::object object;
    if (doc.get_object().get(object)) return "the Kafka key is not JSON";
    for (auto field : object) {
      std::string_view name;
      if (field.unescaped_key().get(name)) return "the Kafka key is not JSON";
      if (name == "_uuid") return "the Kafka key holds _uuid: the table has no primary key";
      if (!name.starts_with("pk.")) continue;
      if (!KeyPartText(field.value(), part)) return "a pk. value of the Kafka key is not a scalar";
      key_parts.push_back(part);
    }
  } else if (type == od::json_type::array) {
    // Array format: ["shop","orders",[{"id":501}]]
    od::array array;
    if (doc.get_array().get(array)) return "the Kafka key is not JSON";
    size_t index = 0;
    for (auto item : array) {
      od::value value;
      if (item.get(value)) return "the Kafka key is not JSON";
      if (index++ != 2) continue;
      od::array columns_array;
      if (value.get_array().get(columns_array)) return "the Kafka key's third item is not a list";
      for (auto column : columns_array) {
        od::object object;
        if (column.get_object().get(object)) return "the Kafka key's columns are not objects";
        for (auto field : object) {
          if (!KeyPartText(field.value(), part)) return "a value of the Kafka key is not a scalar";
          key_parts.push_back(part);
        }
      }
    }
  } else {
    return "the Kafka key is neither an object nor a list";
  }
  if (key_parts.empty()) return "no primary key: the Kafka key names no pk columns";
  return nullptr;
}

MaxwellDecoder::Outcome MaxwellDecoder::Decode(std::string_view key, std::string_view value,
                                               Event& event, std::string& reason) {
  Impl& s = *impl_;
  const auto bad = [&](std::string_view why) {
    reason.assign(why);
    return Outcome::kBad;
  };
  if (value.empty()) return bad("empty message");
  Pad(s.buffer, value);
  od::document doc;
  od::object root;
  if (s.parser.iterate(s.buffer.data(), value.size(), s.buffer.size()).get(doc)) {
    return bad("not JSON");
  }
  od::json_type root_type;
  if (doc.type().get(root_type)) return bad("not JSON");
  if (root_type != od::json_type::object) return bad("not a JSON object");
  if (doc.get_object().get(root)) return bad("not JSON");

  std::string_view database, table, type, data_json, key_columns_json;
  bool has_database = false, has_table = false, has_type = false;
  for (auto field : root) {
    std::string_view name;
    if (field.unescaped_key().get(name)) return bad("not JSON");
    od::value field_value;
    if (field.value().get(field_value)) return bad("not JSON");
    if (name == "database" || name == "table" || name == "type") {
      std::string_view text;
      if (field_value.get_string().get(text)) {
        return bad("`" + std::string(name) + "` is not a string");
      }
      if (name == "database") {
        database = text, has_database = true;
      } else if (name == "table") {
        table = text, has_table = true;
      } else {
        type = text, has_type = true;
      }
      // Most messages on a shared topic are someone else's: stop reading them early.
      if ((has_database && database != s.database) || (has_table && table != s.table)) {
        return Outcome::kIgnored;
      }
    } else if (name == "data") {
      od::object data;
      if (field_value.get_object().get(data)) return bad("`data` is not an object");
      if (data.raw_json().get(data_json)) return bad("not JSON");
    } else if (name == "primary_key_columns") {
      od::json_type json_type;
      if (field_value.type().get(json_type)) return bad("not JSON");
      if (json_type == od::json_type::null) continue;
      od::array columns;
      if (field_value.get_array().get(columns)) {
        return bad("`primary_key_columns` is not a list");
      }
      if (columns.raw_json().get(key_columns_json)) return bad("not JSON");
    }
  }
  if (!has_type) return bad("no `type`");
  if (IsIgnoredType(type)) return Outcome::kIgnored;
  if (!has_database || !has_table) return bad("no `database` or `table`");
  Op op;
  if (type == "insert" || type == "update" || type == "bootstrap-insert") {
    op = Op::kUpsert;
  } else if (type == "delete") {
    op = Op::kDelete;
  } else {
    return bad("unknown type " + JsonString(type));
  }
  if (data_json.empty()) return bad("no `data`");

  // Which columns make the id.
  size_t column_count = 0;
  if (!key_columns_json.empty()) {
    // A view into `buffer`, whose padding follows the whole message.
    od::document columns_doc;
    od::array columns;
    const size_t capacity = s.buffer.size() - (key_columns_json.data() - s.buffer.data());
    if (s.key_parser.iterate(key_columns_json.data(), key_columns_json.size(), capacity)
            .get(columns_doc) ||
        columns_doc.get_array().get(columns)) {
      return bad("`primary_key_columns` is not a list");
    }
    for (auto column : columns) {
      std::string_view name;
      if (column.get_string().get(name)) return bad("`primary_key_columns` holds a non-string");
      if (s.columns.size() == column_count) s.columns.emplace_back();
      s.columns[column_count++].assign(name);
    }
  }
  if (column_count == 0) {
    for (const std::string& name : s.primary_key) {
      if (s.columns.size() == column_count) s.columns.emplace_back();
      s.columns[column_count++].assign(name);
    }
  }
  const bool key_from_data = column_count > 0;
  if (s.parts.size() < column_count) s.parts.resize(column_count);
  s.found.assign(column_count, false);

  event.op = op;
  event.document.clear();
  event.dead_letter_reason.clear();
  od::document data_doc;
  od::object data;
  const size_t capacity = s.buffer.size() - (data_json.data() - s.buffer.data());
  if (s.data_parser.iterate(data_json.data(), data_json.size(), capacity).get(data_doc) ||
      data_doc.get_object().get(data)) {
    return bad("`data` is not an object");
  }
  for (auto field : data) {
    std::string_view column;
    if (field.unescaped_key().get(column)) return bad("`data` is not valid JSON");
    od::value column_value;
    od::json_type json_type;
    if (field.value().get(column_value) || column_value.type().get(json_type)) {
      return bad("`data` is not valid JSON");
    }
    size_t key_idx = column_count;
    for (size_t column_idx = 0; column_idx < column_count; ++column_idx) {
      if (!s.found[column_idx] && s.columns[column_idx] == column) key_idx = column_idx;
    }
    const bool scalar = json_type != od::json_type::object && json_type != od::json_type::array;
    if (op == Op::kUpsert || (key_idx < column_count && scalar)) {
      // Scalars are peeked (raw_json_token) before a string is read for the key; objects and
      // arrays are consumed whole.
      std::string_view raw;
      if (RawJson(column_value, raw)) return bad("`data` is not valid JSON");
      if (key_idx < column_count && scalar && json_type != od::json_type::null) {
        std::string_view text = raw;
        if (json_type == od::json_type::string && column_value.get_string().get(text)) {
          return bad("`data` is not valid JSON");
        }
        s.parts[key_idx].assign(text);
        s.found[key_idx] = true;
      }
      if (op == Op::kUpsert) event.document.push_back({std::string(column), std::string(raw)});
    }
  }
  std::span<const std::string> parts = std::span(s.parts).first(column_count);
  if (key_from_data) {
    for (size_t column_idx = 0; column_idx < column_count; ++column_idx) {
      if (!s.found[column_idx]) {
        return bad("primary key column `" + s.columns[column_idx] +
                   "` is missing from `data`, null, or not a scalar");
      }
    }
  } else if (const char* why = s.KeyFromKafkaKey(key)) {
    return bad(why);
  } else {
    parts = s.key_parts;
  }
  event.id = JoinKeyParts(parts);
  if (event.id.empty()) return bad("the primary key is empty");
  return Outcome::kChange;
}

Event BadMaxwellMessage(std::string_view topic, int32_t partition, int64_t offset,
                        std::string_view key, std::string_view value, std::string_view reason) {
  Event event;
  event.op = Op::kUpsert;
  event.id = std::string(topic) + "/" + std::to_string(partition) + "/" + std::to_string(offset);
  event.document = {{"topic", JsonString(topic)},
                    {"partition", std::to_string(partition)},
                    {"offset", std::to_string(offset)},
                    {"key", JsonText(key)},
                    {"message", JsonText(value)}};
  event.dead_letter_reason = "maxwell message topic=" + std::string(topic) +
                             " partition=" + std::to_string(partition) +
                             " offset=" + std::to_string(offset) + ": " + std::string(reason);
  return event;
}

// ---- Relations ----------------------------------------------------------------------------
//
// With `relations`, a document shows rows of several tables, and a Maxwell message holds one
// row of one table, so no message is ever the whole document. Every change becomes kRefetch
// events, which the pipeline resolves through ReadDocuments (`snapshot.query` restricted to the
// ids, pipeline/refetch.h):
//   the main table's row          -> its id;
//   a `document_key` relation row -> the id in that column of `data` (and of `old`, when an
//                                    update moved the row to another document); a delete's
//                                    `data` is the deleted row, so link-table deletes need no
//                                    tombstones;
//   a `documents` relation row    -> the ids its `documents` SQL returns for the row's key (and
//                                    its old key), read from MySQL in pages (a fan-out).
// A fan-out can be larger than a Poll: the source keeps the message (FanOut) and goes on with it
// in the next Poll. Until it ends, event positions hold the partition's offset *of* that message
// (it is read again after a restart) and a mark with the last document id given:
//
//   ... m41 [m42: category 7 -> d1 d2 ... d200000] m43 ...     (partition 3)
//   d1..d1000     "3:42#3:d1000"   (Poll 1)     commits offset 42: m42 is not done
//   d1001..d2000  "3:42#3:d2000"   (Poll 2)
//   ... d200000   "3:43"           (last page: the message is done)
//
// A restart from "3:42#3:d2000" reads m42 again and resumes its fan-out after d2000, so the
// offset committed is never ahead of the documents acknowledged, and no document is skipped.

namespace {

struct RelationChange {
  size_t relation = 0;  // into MaxwellOptions::relations
  // document_key: the ids of the documents the row names; documents: its keys as SQL literals.
  std::vector<std::string> values;
};

// Reads the messages of the related tables.
class RelationDecoder {
 public:
  RelationDecoder(std::string database, std::span<const MaxwellRelationOptions> relations)
      : database_(std::move(database)), relations_(relations.begin(), relations.end()) {}

  // kChange: `change` says what the message asks for (its values may be empty: nothing);
  // kIgnored: not a row change of a related table; kBad: `reason` says why.
  MaxwellDecoder::Outcome Decode(std::string_view message, RelationChange& change,
                                 std::string& reason) {
    const auto bad = [&](std::string why) {
      reason = std::move(why);
      return MaxwellDecoder::Outcome::kBad;
    };
    buffer_ = simdjson::padded_string(message);
    od::document doc;
    od::object root;
    if (parser_.iterate(buffer_).get(doc) || doc.get_object().get(root)) {
      return bad("not a JSON object");
    }
    std::string_view database, table, type, data, old;
    for (auto field : root) {
      std::string_view name;
      od::value value;
      if (field.unescaped_key().get(name) || field.value().get(value)) return bad("not JSON");
      if (name == "database" || name == "table" || name == "type") {
        std::string_view text;
        if (value.get_string().get(text)) return bad("`" + std::string(name) + "` is not a string");
        (name == "database" ? database : name == "table" ? table : type) = text;
      } else if (name == "data" || name == "old") {
        od::object object;
        std::string_view raw;
        if (value.get_object().get(object) || object.raw_json().get(raw)) {
          return bad("`" + std::string(name) + "` is not an object");
        }
        (name == "data" ? data : old) = raw;
      }
    }
    if (database != database_) return MaxwellDecoder::Outcome::kIgnored;
    const auto relation = std::find_if(relations_.begin(), relations_.end(),
                                       [&](const auto& entry) { return entry.table == table; });
    if (relation == relations_.end() || IsIgnoredType(type)) {
      return MaxwellDecoder::Outcome::kIgnored;
    }
    if (type != "insert" && type != "update" && type != "delete" && type != "bootstrap-insert") {
      return bad("unknown type " + JsonString(type));
    }
    if (data.empty()) return bad("no `data`");
    change.relation = static_cast<size_t>(relation - relations_.begin());
    change.values.clear();
    const bool literals = relation->document_key.empty();
    const std::string& column = literals ? relation->primary_key.front() : relation->document_key;
    for (const std::string_view image : {data, old}) {
      if (image.empty()) continue;
      if (const char* why = AddValue(image, column, literals, change.values)) return bad(why);
    }
    return MaxwellDecoder::Outcome::kChange;
  }

 private:
  // Adds `column` of the row image `image` (a view into buffer_) to `values` when it is set
  // and not there yet: as a document id, or as an SQL literal. A reason when it cannot.
  const char* AddValue(std::string_view image, const std::string& column, bool literal,
                       std::vector<std::string>& values) {
    const char* end = buffer_.data() + buffer_.size() + simdjson::SIMDJSON_PADDING;
    od::document doc;
    od::object object;
    if (image_parser_.iterate(image.data(), image.size(), static_cast<size_t>(end - image.data()))
            .get(doc) ||
        doc.get_object().get(object)) {
      return "a row image is not an object";
    }
    for (auto field : object) {
      std::string_view name;
      od::value value;
      od::json_type type;
      if (field.unescaped_key().get(name) || field.value().get(value) || value.type().get(type)) {
        return "a row image is not valid JSON";
      }
      if (name != column) continue;
      std::string_view text;
      if (type == od::json_type::null) return nullptr;
      if (type == od::json_type::number) {
        text = TrimRight(value.raw_json_token());
      } else if (type != od::json_type::string || value.get_string().get(text)) {
        return "a relation's key column holds an object, a list or a boolean";
      }
      std::string entry =
          literal ? MysqlKeyLiteral(text, type == od::json_type::number) : std::string(text);
      if (!entry.empty() && std::find(values.begin(), values.end(), entry) == values.end()) {
        values.push_back(std::move(entry));
      }
      return nullptr;
    }
    return nullptr;
  }

  const std::string database_;
  const std::vector<MaxwellRelationOptions> relations_;
  simdjson::padded_string buffer_;
  od::parser parser_;
  od::parser image_parser_;
};

}  // namespace

Result<std::pair<std::string_view, std::optional<FanOutMark>>> SplitFanOutMark(
    std::string_view token) {
  const size_t hash = token.find('#');
  if (hash == std::string_view::npos) {
    return std::pair(token, std::optional<FanOutMark>());
  }
  const std::string_view mark = token.substr(hash + 1);
  FanOutMark out;
  const auto parsed = std::from_chars(mark.data(), mark.data() + mark.size(), out.partition);
  if (parsed.ec != std::errc() || parsed.ptr == mark.data() + mark.size() || *parsed.ptr != ':' ||
      out.partition < 0) {
    return InvalidArgument("maxwell checkpoint " + JsonString(token) +
                           " has a malformed fan-out mark (expected offsets#partition:id)");
  }
  out.after.assign(parsed.ptr + 1, mark.data() + mark.size());
  return std::pair(token.substr(0, hash), std::optional<FanOutMark>(std::move(out)));
}

// ---- The consumer -------------------------------------------------------------------------

namespace {

bool IsSecretSetting(std::string_view name) {
  return name.find("password") != std::string_view::npos ||
         name.find("secret") != std::string_view::npos || name.ends_with(".pem") ||
         name == "sasl.oauthbearer.config" || name == "sasl.username";
}

// Applies one property; the error never repeats a secret value.
Status SetKafka(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char error[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof(error)) ==
      RD_KAFKA_CONF_OK) {
    return Status::Ok();
  }
  if (IsSecretSetting(name)) return InvalidArgument("invalid value for " + name);
  return InvalidArgument(error);
}

// librdkafka's own threads call this; Log is thread-safe.
void LogFromKafka(const rd_kafka_t* handle, int level, const char* facility, const char* message) {
  Log(level <= 4 ? LogLevel::kWarn : LogLevel::kDebug,
      std::string("source=maxwell client=") + rd_kafka_name(handle),
      std::string("kafka ") + facility + ": " + message);
}

class MaxwellSource : public Source {
 public:
  explicit MaxwellSource(MaxwellOptions options)
      : options_(std::move(options)),
        kafka_component_(options_.log_component),
        decoder_(options_.database, options_.table, options_.primary_key) {
    if (!options_.relations.empty()) {
      documents_ = std::make_unique<MysqlDocuments>(*options_.snapshot);
      relation_decoder_.emplace(options_.database, options_.relations);
    }
  }

  ~MaxwellSource() override {
    if (consumer_ == nullptr) return;
    // Runs the revoke callback, which commits what is acknowledged.
    rd_kafka_consumer_close(consumer_);
    rd_kafka_destroy(consumer_);
  }

  // Source
  Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) override;
  Status Commit(const Checkpoint& upto) override;
  Status HealthCheck() override;
  // Short: an empty Poll has already waited for a message (kPollWait), and a message that
  // arrives during this wait waits for the next Poll.
  std::chrono::milliseconds IdleWait() const override { return 10ms; }
  Result<std::unique_ptr<FullRead>> OpenFullRead() override {
    if (!options_.snapshot) {
      return FailedPrecondition(kafka_component_ +
                                ": no full read without `snapshot: { dsn, query }`; backfill with "
                                "Maxwell's bootstrap (maxwell-bootstrap) instead");
    }
    return MakeMysqlFullRead(*options_.snapshot);
  }
  bool BackfillOnFirstStart() const override { return options_.snapshot.has_value(); }
  Result<std::vector<Event>> ReadDocuments(std::span<const std::string> ids) override {
    if (documents_ == nullptr) return Source::ReadDocuments(ids);
    return documents_->Read(ids);
  }

 private:
  Result<rd_kafka_conf_t*> MakeConf();
  Status Connect();
  bool CaughtUp() const;
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  // Commits `offsets` for the partitions in `only` (all assigned ones when null) that moved.
  Status CommitOffsets(const std::map<int32_t, int64_t>& offsets,
                       const rd_kafka_topic_partition_list_t* only);
  // Poll from a checkpoint that is not where the consumer stands: each partition `from` names
  // moves to its offset, now if assigned, else when it is assigned.
  Status ResumeFrom(const Checkpoint& from);

  // Relations (see "Relations" above). What a message of a related table, or the rest of a
  // fan-out, added to a Poll's events: nothing (as an ignored message: the caller advances the
  // offset), events ending with the one positioned after the message, or a page of a fan-out
  // that goes on (the Poll ends here).
  enum class RelationStep { kNone, kTaken, kPending };
  Result<RelationStep> TakeRelationMessage(int32_t partition, int64_t offset, std::string_view key,
                                           std::string_view value, std::vector<Event>& events,
                                           size_t max_events);
  Result<RelationStep> ContinueFanOut(std::vector<Event>& events, size_t max_events);
  // Where a checkpoint with a fan-out mark resumes that fan-out.
  Status ResumeFanOut(std::string_view token);
  Status CheckRelations();

  static void RebalanceCallback(rd_kafka_t* handle, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    (void)handle;
    static_cast<MaxwellSource*>(opaque)->OnRebalance(err, partitions);
  }
  static void ErrorCallback(rd_kafka_t* handle, int err, const char* reason, void* opaque) {
    (void)handle;
    auto* self = static_cast<MaxwellSource*>(opaque);
    self->last_error_ =
        std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason;
  }

  const MaxwellOptions options_;
  const std::string kafka_component_;
  MaxwellDecoder decoder_;
  rd_kafka_t* consumer_ = nullptr;

  KafkaOffsetsText next_offsets_;            // per partition: after the last message read
  std::map<int32_t, bool> at_end_;           // assigned partitions: partition EOF seen
  std::map<int32_t, int64_t> acknowledged_;  // offsets of the last Commit
  std::map<int32_t, int64_t> committed_;     // what the group holds, as far as we know
  std::map<int32_t, int64_t> resume_;        // where to start partitions not yet assigned
  bool assigned_ = false;                    // an assignment arrived (possibly empty)
  std::string last_emitted_;                 // position of the last event handed out
  size_t fields_per_row_ = 0;                // the most fields a document had so far
  std::string last_error_;
  std::string reason_;

  // A `documents` relation's message whose documents are being given out.
  struct FanOut {
    int32_t partition = 0;
    int64_t offset = 0;
    size_t relation = 0;
    std::vector<std::string> keys;     // SQL literals
    std::optional<std::string> after;  // the last document id given
  };
  std::unique_ptr<MysqlDocuments> documents_;        // with relations
  std::optional<RelationDecoder> relation_decoder_;  // with relations
  std::optional<FanOut> fan_out_;
  // From a checkpoint with a fan-out mark: the message's offset and the last id acknowledged.
  std::optional<std::pair<int64_t, FanOutMark>> resume_fan_out_;
};

Result<rd_kafka_conf_t*> MaxwellSource::MakeConf() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> own[] = {
      {"bootstrap.servers", options_.brokers},
      {"group.id", options_.group_id},
      {"client.id", "searchsync"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},
  };
  for (const auto& [name, value] : own) {
    if (Status status = SetKafka(conf, name, value); !status.ok()) {
      rd_kafka_conf_destroy(conf);
      return status;
    }
  }
  // Bounds on what librdkafka fetches ahead of the pipeline, which has its own queue: by
  // default it would hold up to 64 MiB of messages, plus fetch responses of up to 50 MiB, on top
  // of the change queue. `kafka:` may set them otherwise.
  const std::pair<const char*, const char*> prefetch[] = {
      {"queued.max.messages.kbytes", "16384"},
      {"fetch.max.bytes", "8388608"},
  };
  for (const auto& [name, value] : prefetch) {
    if (Status status = SetKafka(conf, name, value); !status.ok()) {
      rd_kafka_conf_destroy(conf);
      return status;
    }
  }
  for (const KafkaSetting& setting : options_.kafka) {
    if (Status status = SetKafka(conf, setting.name, setting.value.value()); !status.ok()) {
      rd_kafka_conf_destroy(conf);
      return status;
    }
  }
  rd_kafka_conf_set_log_cb(conf, &LogFromKafka);
  return conf;
}

Status MaxwellSource::Connect() {
  Result<rd_kafka_conf_t*> conf = MakeConf();
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_opaque(*conf, this);
  rd_kafka_conf_set_rebalance_cb(*conf, &RebalanceCallback);
  rd_kafka_conf_set_error_cb(*conf, &ErrorCallback);
  char error[512];
  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, error, sizeof(error));
  if (consumer_ == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return InvalidArgument(kafka_component_ + ": kafka consumer: " + error);
  }
  rd_kafka_poll_set_consumer(consumer_);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return InvalidArgument(kafka_component_ + ": subscribe to " + options_.topic + ": " +
                           rd_kafka_err2str(err));
  }
  Log(LogLevel::kInfo, kafka_component_,
      "joining group=" + options_.group_id + " topic=" + options_.topic);
  return Status::Ok();
}

bool MaxwellSource::CaughtUp() const {
  if (!assigned_) return false;
  return std::all_of(at_end_.begin(), at_end_.end(),
                     [](const auto& entry) { return entry.second; });
}

Status MaxwellSource::CommitOffsets(const std::map<int32_t, int64_t>& offsets,
                                    const rd_kafka_topic_partition_list_t* only) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  for (const auto& [partition, offset] : offsets) {
    const bool selected = only ? rd_kafka_topic_partition_list_find(only, options_.topic.c_str(),
                                                                    partition) != nullptr
                               : at_end_.contains(partition);
    if (!selected) continue;
    if (auto it = committed_.find(partition); it != committed_.end() && it->second == offset) {
      continue;
    }
    rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), partition)->offset = offset;
  }
  Status status;
  if (list->cnt > 0) {
    const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_, list, /*async=*/0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status =
          Unavailable("kafka commit to group " + options_.group_id + ": " + rd_kafka_err2str(err));
    } else {
      for (int i = 0; i < list->cnt; ++i) {
        if (list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          committed_[list->elems[i].partition] = list->elems[i].offset;
        } else if (status.ok()) {
          status =
              Unavailable("kafka commit partition " + std::to_string(list->elems[i].partition) +
                          ": " + rd_kafka_err2str(list->elems[i].err));
        }
      }
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return status;
}

void MaxwellSource::OnRebalance(rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(consumer_), "COOPERATIVE") == 0;
  std::string names;
  for (int i = 0; i < partitions->cnt; ++i) {
    if (!names.empty()) names += ",";
    names += std::to_string(partitions->elems[i].partition);
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < partitions->cnt; ++i) {
      rd_kafka_topic_partition_t& assigned = partitions->elems[i];
      at_end_[assigned.partition] = false;
      committed_.erase(assigned.partition);
      // Once only: a partition revoked and assigned again later starts at the group's offset,
      // which the revoke committed.
      if (auto resume = resume_.find(assigned.partition); resume != resume_.end()) {
        assigned.offset = resume->second;
        next_offsets_.Set(assigned.partition, resume->second);
        resume_.erase(resume);
      }
    }
    assigned_ = true;
    Log(LogLevel::kInfo, kafka_component_, "assigned partitions=[" + names + "]");
    if (cooperative) {
      if (rd_kafka_error_t* error = rd_kafka_incremental_assign(consumer_, partitions)) {
        rd_kafka_error_destroy(error);
      }
    } else {
      rd_kafka_assign(consumer_, partitions);
    }
    return;
  }
  // Revoked (or lost): hand over what is acknowledged before giving the partitions up. When
  // they were lost, another member may own them already and the commit is refused: harmless.
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(consumer_)) {
    if (Status status = CommitOffsets(acknowledged_, partitions); !status.ok()) {
      Log(LogLevel::kWarn, kafka_component_, "commit before revoke: " + status.message());
    }
  }
  for (int i = 0; i < partitions->cnt; ++i) {
    const int32_t partition = partitions->elems[i].partition;
    at_end_.erase(partition);
    next_offsets_.Erase(partition);
    committed_.erase(partition);
    if (fan_out_ && fan_out_->partition == partition) fan_out_.reset();  // read again
  }
  Log(LogLevel::kInfo, kafka_component_, "revoked partitions=[" + names + "]");
  if (cooperative) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_unassign(consumer_, partitions)) {
      rd_kafka_error_destroy(error);
    }
  } else {
    rd_kafka_assign(consumer_, nullptr);
    assigned_ = false;
  }
}

Status MaxwellSource::ResumeFrom(const Checkpoint& from) {
  Result<KafkaOffsets> offsets = DecodeKafkaOffsets(from.token.substr(0, from.token.find('#')));
  if (!offsets.ok()) return offsets.status();
  if (Status status = ResumeFanOut(from.token); !status.ok()) return status;
  resume_ = std::map<int32_t, int64_t>(offsets->begin(), offsets->end());
  if (consumer_ == nullptr) {  // applied when the partitions are assigned
    last_emitted_ = from.token;
    return Status::Ok();
  }
  rd_kafka_topic_partition_list_t* seek = rd_kafka_topic_partition_list_new(8);
  for (auto it = resume_.begin(); it != resume_.end();) {
    if (!at_end_.contains(it->first)) {
      ++it;
      continue;
    }
    rd_kafka_topic_partition_list_add(seek, options_.topic.c_str(), it->first)->offset = it->second;
    next_offsets_.Set(it->first, it->second);
    at_end_[it->first] = false;
    it = resume_.erase(it);
  }
  Status status;
  if (seek->cnt > 0) {
    if (rd_kafka_error_t* error = rd_kafka_seek_partitions(consumer_, seek, 10'000)) {
      status = Unavailable(kafka_component_ + ": kafka seek to checkpoint " + from.token + ": " +
                           rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
  }
  rd_kafka_topic_partition_list_destroy(seek);
  if (status.ok()) last_emitted_ = from.token;  // else the next Poll tries again
  return status;
}

Result<std::vector<Event>> MaxwellSource::Poll(const Checkpoint& from, size_t max_events) {
  // `from` is honoured: the usual next Poll passes the position of the last event given, where
  // the consumer already stands; any other checkpoint (the state store's, at a restart; a
  // rewound one) moves the partitions it names there. Partitions it does not name start at the
  // group's committed offset (the earliest when there is none). The state store's checkpoint is
  // never behind the group's offsets: Commit runs only after the checkpoint is stored.
  if (from.token != last_emitted_) {
    if (Status status = ResumeFrom(from); !status.ok()) return status;
  }
  if (consumer_ == nullptr) {
    if (Status status = Connect(); !status.ok()) return status;
  }
  std::vector<Event> events;
  bool position_stale = false;  // ignored messages were read after events.back()
  if (fan_out_) {
    Result<RelationStep> step = ContinueFanOut(events, max_events);
    if (!step.ok()) return step.status();
    if (*step == RelationStep::kPending) {
      last_emitted_ = events.back().position.token;
      return events;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        (assigned_ || !committed_.empty() ? kPollWindow : kFirstAssignmentWindow);
  while (events.size() < max_events) {
    rd_kafka_message_t* message =
        rd_kafka_consumer_poll(consumer_, events.empty() ? kPollWait.count() : 0);
    if (message == nullptr) {
      if (!events.empty() || CaughtUp()) break;
      if (std::chrono::steady_clock::now() < deadline) continue;
      char fatal[256];
      if (rd_kafka_fatal_error(consumer_, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return FailedPrecondition(kafka_component_ + ": kafka: " + fatal);
      }
      return Unavailable(kafka_component_ + ": kafka: " +
                         (!assigned_
                              ? "waiting for a partition assignment from group " + options_.group_id
                              : "no messages and not at the end of every partition") +
                         (last_error_.empty() ? "" : " (last error: " + last_error_ + ")"));
    }
    const int32_t partition = message->partition;
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (auto it = at_end_.find(partition); it != at_end_.end()) it->second = true;
      } else {
        last_error_ = rd_kafka_message_errstr(message);
      }
      rd_kafka_message_destroy(message);
      continue;
    }
    const int64_t offset = message->offset;
    if (auto it = at_end_.find(partition); it != at_end_.end()) it->second = false;
    const std::string_view key(static_cast<const char*>(message->key), message->key_len);
    const std::string_view value(static_cast<const char*>(message->payload), message->len);
    Event event;
    // Room for as many fields as the last row had: growing the vector field by field would
    // allocate several times per message.
    event.document.reserve(fields_per_row_);
    switch (decoder_.Decode(key, value, event, reason_)) {
      case MaxwellDecoder::Outcome::kChange:
        if (relation_decoder_) {  // the document shows other tables' rows too: read it whole
          event.op = Op::kRefetch;
          event.document.clear();
        }
        break;
      case MaxwellDecoder::Outcome::kIgnored:
        if (relation_decoder_) {
          if (position_stale) {
            events.back().position.token = next_offsets_.text();
            position_stale = false;
          }
          Result<RelationStep> step =
              TakeRelationMessage(partition, offset, key, value, events, max_events);
          if (!step.ok() || *step != RelationStep::kNone) {
            rd_kafka_message_destroy(message);
            if (step.ok() && *step == RelationStep::kTaken) continue;
            if (events.empty()) return step.status();  // the fan-out is tried again
            last_emitted_ = events.back().position.token;
            return events;
          }
        }
        next_offsets_.Set(partition, offset + 1);
        position_stale = !events.empty();
        rd_kafka_message_destroy(message);
        continue;
      case MaxwellDecoder::Outcome::kBad:
        event = BadMaxwellMessage(options_.topic, partition, offset, key, value, reason_);
        break;
    }
    rd_kafka_message_destroy(message);
    if (position_stale) {
      // The previous event also covers the ignored messages read since.
      events.back().position.token = next_offsets_.text();
      position_stale = false;
    }
    next_offsets_.Set(partition, offset + 1);
    event.position.token = next_offsets_.text();
    fields_per_row_ = std::max(fields_per_row_, event.document.size());
    events.push_back(std::move(event));
  }
  if (position_stale) {
    events.back().position.token = next_offsets_.text();
  }
  if (!events.empty()) last_emitted_ = events.back().position.token;
  return events;
}

Status MaxwellSource::Commit(const Checkpoint& upto) {
  if (consumer_ == nullptr) return Status::Ok();
  if (upto.token == last_emitted_) {
    // Everything handed out is acknowledged: what was read after it was ignored, so the
    // offsets read so far can all be committed.
    acknowledged_ = next_offsets_.offsets();
  } else {
    Result<KafkaOffsets> offsets = DecodeKafkaOffsets(upto.token.substr(0, upto.token.find('#')));
    if (!offsets.ok()) return offsets.status();
    acknowledged_ = std::map<int32_t, int64_t>(offsets->begin(), offsets->end());
  }
  return CommitOffsets(acknowledged_, nullptr);
}

Status MaxwellSource::HealthCheck() {
  Result<rd_kafka_conf_t*> conf = MakeConf();
  if (!conf.ok()) return conf.status();
  char error[512];
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, error, sizeof(error));
  if (handle == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return InvalidArgument(kafka_component_ + ": kafka consumer: " + error);
  }
  rd_kafka_topic_t* topic = rd_kafka_topic_new(handle, options_.topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(handle, 0, topic, &metadata, 10'000);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata->topic_cnt == 1) {
    err = metadata->topics[0].err;
  }
  if (metadata) rd_kafka_metadata_destroy(metadata);
  rd_kafka_topic_destroy(topic);
  rd_kafka_destroy(handle);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Unavailable(kafka_component_ + ": kafka brokers " + options_.brokers + " topic " +
                       options_.topic + ": " + rd_kafka_err2str(err));
  }
  if (options_.snapshot) {
    if (Status status = CheckMysqlFullRead(*options_.snapshot); !status.ok()) return status;
  }
  return CheckRelations();
}

Result<MaxwellSource::RelationStep> MaxwellSource::TakeRelationMessage(
    int32_t partition, int64_t offset, std::string_view key, std::string_view value,
    std::vector<Event>& events, size_t max_events) {
  RelationChange change;
  switch (relation_decoder_->Decode(value, change, reason_)) {
    case MaxwellDecoder::Outcome::kIgnored:
      return RelationStep::kNone;
    case MaxwellDecoder::Outcome::kBad: {
      Event event = BadMaxwellMessage(options_.topic, partition, offset, key, value, reason_);
      next_offsets_.Set(partition, offset + 1);
      event.position.token = next_offsets_.text();
      events.push_back(std::move(event));
      return RelationStep::kTaken;
    }
    case MaxwellDecoder::Outcome::kChange:
      break;
  }
  if (change.values.empty()) return RelationStep::kNone;
  next_offsets_.Set(partition, offset);  // every message before this one is read
  std::optional<std::string> after;
  if (resume_fan_out_ && resume_fan_out_->second.partition == partition) {
    if (resume_fan_out_->first == offset) after = std::move(resume_fan_out_->second.after);
    resume_fan_out_.reset();
  }
  if (options_.relations[change.relation].document_key.empty()) {
    fan_out_ = FanOut{.partition = partition,
                      .offset = offset,
                      .relation = change.relation,
                      .keys = std::move(change.values),
                      .after = std::move(after)};
    return ContinueFanOut(events, max_events);
  }
  // A row names one document (two when an update moved it): all but the last event are
  // positioned before the message, so it is read again unless every one is acknowledged.
  const std::string before = next_offsets_.text();
  next_offsets_.Set(partition, offset + 1);
  for (std::string& id : change.values) {
    Event& event = events.emplace_back();
    event.op = Op::kRefetch;
    event.id = std::move(id);
    event.position.token = before;
  }
  events.back().position.token = next_offsets_.text();
  return RelationStep::kTaken;
}

Result<MaxwellSource::RelationStep> MaxwellSource::ContinueFanOut(std::vector<Event>& events,
                                                                  size_t max_events) {
  FanOut& fan_out = *fan_out_;
  // Offsets with this message not done, then the mark's partition.
  std::string mark = next_offsets_.text();
  mark += "#" + std::to_string(fan_out.partition) + ":";
  const size_t first = events.size();
  while (events.size() < max_events) {
    const size_t room = max_events - events.size();
    Result<std::vector<std::string>> ids = documents_->DocumentIds(
        options_.relations[fan_out.relation].documents, fan_out.keys, fan_out.after, room);
    if (!ids.ok()) return ids.status();
    if (!ids->empty()) fan_out.after = ids->back();
    for (std::string& id : *ids) {
      if (id.empty()) continue;  // no document has an empty id
      Event& event = events.emplace_back();
      event.op = Op::kRefetch;
      event.position.token = mark + id;
      event.id = std::move(id);
    }
    if (ids->size() == room) continue;
    // The message is done.
    next_offsets_.Set(fan_out.partition, fan_out.offset + 1);
    fan_out_.reset();
    if (events.size() == first) return RelationStep::kNone;
    events.back().position.token = next_offsets_.text();
    return RelationStep::kTaken;
  }
  return RelationStep::kPending;
}

Status MaxwellSource::ResumeFanOut(std::string_view token) {
  fan_out_.reset();
  resume_fan_out_.reset();
  Result<std::pair<std::string_view, std::optional<FanOutMark>>> split = SplitFanOutMark(token);
  if (!split.ok()) return split.status();
  if (!split->second) return Status::Ok();
  Result<KafkaOffsets> offsets = DecodeKafkaOffsets(split->first);
  if (!offsets.ok()) return offsets.status();
  for (const auto& [partition, offset] : *offsets) {
    if (partition == split->second->partition) {
      resume_fan_out_.emplace(offset, std::move(*split->second));
      break;
    }
  }
  return Status::Ok();
}

Status MaxwellSource::CheckRelations() {
  if (documents_ == nullptr) return Status::Ok();
  // The restricted query: a single-column key the snapshot query returns.
  if (Result<std::vector<Event>> read = documents_->Read({}); !read.ok()) return read.status();
  std::string problems;
  for (size_t relation_idx = 0; relation_idx < options_.relations.size(); ++relation_idx) {
    const MaxwellRelationOptions& relation = options_.relations[relation_idx];
    const std::string where =
        "relations[" + std::to_string(relation_idx) + "] (" + relation.table + ")";
    const auto problem = [&](const std::string& text) {
      problems += (problems.empty() ? "" : "; ") + where + ": " + text;
    };
    const std::string table = "`" + options_.database + "`.`" + relation.table + "`";
    Result<std::vector<std::string>> columns = documents_->Columns("SELECT * FROM " + table);
    if (!columns.ok()) return columns.status();
    const std::string& column =
        relation.document_key.empty() ? relation.primary_key.front() : relation.document_key;
    if (std::find(columns->begin(), columns->end(), column) == columns->end()) {
      problem((relation.document_key.empty() ? "primary_key" : "document_key") +
              std::string(" column `") + column + "` is not a column of " + options_.database +
              "." + relation.table);
    }
    if (relation.documents.empty()) continue;
    Result<std::vector<std::string>> returned =
        documents_->Columns(BindMysqlList(relation.documents, {}));
    if (!returned.ok()) {
      problem("documents: " + returned.status().message());
    } else if (returned->size() != 1) {
      std::string names;
      for (const std::string& name : *returned) names += (names.empty() ? "" : ", ") + name;
      problem("documents returns " + std::to_string(returned->size()) + " columns (" + names +
              "); it must return one, the document id");
    }
  }
  if (!problems.empty()) return FailedPrecondition(kafka_component_ + ": " + problems);
  return Status::Ok();
}

}  // namespace

std::unique_ptr<Source> MakeMaxwellSource(MaxwellOptions options) {
  return std::make_unique<MaxwellSource>(std::move(options));
}

namespace {

void ParseRelations(const Section& section, MaxwellOptions& options) {
  if (!section.Has("relations")) return;
  if (!options.snapshot) {
    section.Error("relations",
                  "needs snapshot: { dsn, query }: the documents a change touches are re-read "
                  "from MySQL through snapshot.query restricted to their ids");
  }
  if (options.primary_key.size() > 1) {
    section.Error("relations", "needs a single-column primary_key (the document id)");
  }
  const YAML::Node list = section.Node("relations");
  std::set<std::string> tables;
  for (size_t relation_idx = 0; list.IsSequence() && relation_idx < list.size(); ++relation_idx) {
    if (!list[relation_idx].IsMap()) continue;  // reported by the sequence check
    const Section item = section.Item("relations", relation_idx, kRelationKeys.specs());
    MaxwellRelationOptions& relation = options.relations.emplace_back(kRelationKeys.Read(item));
    for (const char* key : {"updated_at", "tombstone_table"}) {
      if (item.Has(key)) {
        item.Error(key,
                   "not used by a maxwell source (messages say what changed, and delete messages "
                   "carry the deleted row); remove it");
      }
    }
    if (item.Has("table") && relation.table == options.table) {
      item.Error("table", "is the pipeline's own table; list only the related tables");
    } else if (item.Has("table") && !tables.insert(relation.table).second) {
      item.Error("table", "names a table listed before; list each related table once");
    }
    if (relation.primary_key.empty()) item.Error("primary_key", "list at least one column");
    if (item.Has("documents") == item.Has("document_key")) {
      item.Error(item.Has("documents") ? "documents" : "table",
                 "set exactly one of 'documents' (SQL returning the document ids of ?, the "
                 "changed rows' keys) or 'document_key' (a column holding the document id)");
    } else if (item.Has("documents") && MysqlPlaceholders(relation.documents).size() != 1) {
      item.Error("documents",
                 "must use ? exactly once (outside quotes), for the list of the changed rows' "
                 "keys, e.g. SELECT id FROM products WHERE category_id IN (?)");
    } else if (item.Has("documents") && relation.primary_key.size() != 1) {
      item.Error("documents",
                 "needs a single-column primary_key; for a composite key (a link table) use "
                 "document_key");
    }
  }
}

}  // namespace

SourceFactory ParseMaxwellSource(const Section& section, std::string_view pipeline) {
  const size_t errors_before = section.errors().all().size();
  MaxwellOptions options = kMaxwellKeyTable.Read(section);
  for (const char* key : {"brokers", "topic", "group_id", "database", "table"}) {
    if (section.Has(key) && section.String(key).empty()) section.Error(key, "cannot be empty");
  }
  if (section.Has("primary_key")) {
    if (options.primary_key.empty()) section.Error("primary_key", "list at least one column");
    for (const std::string& column : options.primary_key) {
      if (column.empty()) section.Error("primary_key", "column names cannot be empty");
    }
  }
  if (section.Has("kafka")) {
    const YAML::Node kafka = section.Node("kafka");
    if (!kafka.IsMap()) {
      section.Error("kafka", "expected a mapping of librdkafka properties");
    } else {
      rd_kafka_conf_t* scratch = rd_kafka_conf_new();
      for (const auto& entry : kafka) {
        const std::string name = entry.first.as<std::string>("");
        if (!entry.second.IsScalar()) {
          section.ErrorAt(entry.second, "kafka." + name + ": expected a scalar value");
          continue;
        }
        if (std::find(std::begin(kReservedKafkaSettings), std::end(kReservedKafkaSettings), name) !=
            std::end(kReservedKafkaSettings)) {
          section.ErrorAt(entry.first, "kafka." + name +
                                           ": set by searchsync itself (brokers, group_id, "
                                           "manual commits, partition EOF); remove it");
          continue;
        }
        const std::string value = entry.second.Scalar();
        if (Status status = SetKafka(scratch, name, value); !status.ok()) {
          section.ErrorAt(entry.second, "kafka." + name + ": " + status.message());
          continue;
        }
        options.kafka.push_back({name, Secret(value)});
      }
      rd_kafka_conf_destroy(scratch);
    }
  }
  options.log_component = "pipeline=" + std::string(pipeline) +
                          " source=maxwell topic=" + options.topic + " table=" + options.database +
                          "." + options.table;
  if (section.Has("snapshot")) {
    const Section snapshot = section.Child("snapshot", kSnapshotKeys.specs());
    MysqlFullReadOptions& full_read = options.snapshot.emplace(kSnapshotKeys.Read(snapshot));
    full_read.database = options.database;
    full_read.table = options.table;
    full_read.primary_key = options.primary_key;
    full_read.log_component = options.log_component + " snapshot";
    if (snapshot.Has("dsn")) {
      // The message says what is wrong and never repeats the DSN (it holds the password).
      if (Result<MysqlDsn> dsn = ParseMysqlDsn(full_read.dsn.value()); !dsn.ok()) {
        snapshot.Error("dsn", dsn.status().message());
      }
    }
    if (snapshot.Has("query") && full_read.query.find_first_not_of(" \t\n") == std::string::npos) {
      snapshot.Error("query", "cannot be empty; omit it to read SELECT * FROM the table");
    }
  }
  ParseRelations(section, options);
  if (section.errors().all().size() != errors_before) return nullptr;
  for (const char* key : {"brokers", "topic", "group_id", "database", "table"}) {
    if (!section.Has(key)) return nullptr;
  }
  return [options = std::move(options)] { return MakeMaxwellSource(options); };
}

}  // namespace searchsync
