// The `postgres` source.
//
// How polling by updated_at can miss nothing
// ------------------------------------------
// PostgreSQL's now() is the time its *transaction started*. A transaction that updates a row and
// commits ten minutes later writes updated_at = (ten minutes ago). A poller that already moved
// its cursor past that time would never see the row. So the source never reads at or beyond a
// *horizon*, computed before every page:
//
//   horizon = min( now() of the horizon statement,
//                  xact_start of the oldest other client transaction in this database
//                  (pg_stat_activity: backend_type = 'client backend',
//                   pid <> pg_backend_pid(), datname = current_database()) )
//             - commit_margin
//
// and each page reads only rows with updated_at < horizon. The horizon is computed in its own
// statement, outside any transaction (READ COMMITTED, so pg_stat_activity is fresh), *before*
// the statement that reads the rows, whose snapshot is therefore later. Any transaction whose
// changes that snapshot cannot see was either running when the horizon was computed, so it
// started at or after the horizon, or it started later still. Either way every row it writes
// with updated_at from now(), clock_timestamp() or a trigger has updated_at >= horizon, and a
// later page reads it once it commits. Rows are read in (updated_at, primary key) order with a
// keyset cursor, so rows sharing one timestamp are neither lost nor read twice.
//
// Consequences an operator sees:
//   - A long transaction in the database, even an idle one ("idle in transaction") or a
//     pg_dump, holds the horizon back: rows changed after it began are synced only once it
//     ends. The source logs a WARN naming the session's pid once a minute while that lasts.
//   - updated_at written by application clocks rather than the database can be older than the
//     writing transaction: set commit_margin to the worst skew plus commit latency.
//   - The role must see other sessions' xact_start: a superuser, the same role as the writers,
//     or a member of pg_read_all_stats. Without it, a session of another role is only known to
//     be in a transaction (backend_xid/backend_xmin); the horizon is then held at the time the
//     source last saw that session outside a transaction, which is a best effort, not a
//     guarantee. HealthCheck warns about this.
//   - Two-phase transactions (PREPARE TRANSACTION) are not covered.
//
// Time zones
// ----------
// A `timestamp` (without time zone) column holds wall-clock times in whatever zone its writer
// used: now() and triggers write the session's TimeZone, which for the writers is the server's
// (what SHOW TimeZone says in a new session); applications that write the value themselves
// often use UTC (updated_at_time_zone). This session runs in UTC, so the horizon is a UTC
// instant; a `timestamp` column is compared with `horizon AT TIME ZONE zone`, its own wall
// time, so the bare column (and its index) orders the pages and the cursor keeps the column's
// text. The epoch used to merge rows with tombstones is the true instant (`col AT TIME ZONE
// zone`). Documents carry every `timestamp` value as RFC 3339 UTC, converted by the server.
// A zone with daylight saving time repeats an hour each autumn: rows written during the
// repeated hour sort before rows written just before it and can be missed. Nothing in the data
// tells the two hours apart, so the source says so (a WARN at start and in `check`) rather
// than guess; the fix is timestamptz, or UTC.
//
// Relations
// ---------
// A document built by a query from several tables changes when a related row changes, and the
// main table's updated_at does not say so. Each `relations` entry is polled like the main
// table: its own (updated_at, key) cursor under the same horizon (so a late-committing related
// transaction is not missed either), and its tombstone table's (deleted_at, id) cursor. Its
// changed rows name documents: `document_key` is a column of the row, `documents` is SQL run
// with $1 = the array of the changed rows' keys, read DISTINCT in pages by document id. Each
// document id becomes a kRefetch event, which the pipeline resolves by ReadDocuments: the
// query restricted to those ids (`WHERE t.pk = ANY($1)`), found -> upsert, gone -> delete.
// Relations are read when the main table is caught up. A relation's cursor starts at the
// horizon of its first poll (the main table's first pass reads everything older), and a
// fan-out's position ("upto", "after") is in every event's checkpoint, so a crash in the middle
// resumes after the last acknowledged document, never moving the cursor past an unread one.
//
// Deletes from a tombstone table follow the same rule on (deleted_at, id), and both streams are
// merged by timestamp, a tombstone first on a tie, so "delete, then insert again" ends with the
// row present. When a page comes back full, events past its last timestamp wait for the next
// page, so the merge never emits an event before one it has not read yet.

#include "sources/postgres.h"

#include <libpq-fe.h>
#include <poll.h>
#include <simdjson.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/url.h"
#include "sources/common.h"

namespace searchsync {
namespace {

// ---- Keys -----------------------------------------------------------------------------------

constexpr Key<PostgresTombstoneOptions> kTombstoneKeyList[] = {
    {"table", KeyType::kString, &PostgresTombstoneOptions::table, true,
     "table with one row per deleted document; may be schema-qualified"},
    {"id_column", KeyType::kString, &PostgresTombstoneOptions::id_column, true,
     "column holding the deleted document's id (for a composite key: the joined id)"},
    {"deleted_at_column", KeyType::kString, &PostgresTombstoneOptions::deleted_at_column, true,
     "column holding when it was deleted (timestamptz or timestamp); index (deleted_at, id)"},
    {"deleted_at_time_zone", KeyType::kString, &PostgresTombstoneOptions::deleted_at_time_zone,
     false,
     "for a timestamp (no zone) deleted_at: the IANA zone its values are written in; default: "
     "the server's TimeZone"},
};
constinit const KeyTable<PostgresTombstoneOptions> kTombstoneKeys(kTombstoneKeyList);

constexpr Key<PostgresOptions> kDeletesKeyList[] = {
    {"soft_delete_column", KeyType::kString, &PostgresOptions::soft_delete_column, false,
     "rows where this column is true (boolean) or not NULL (other types) are deleted from the "
     "index; the column is left out of documents"},
    {"tombstone_table", KeyType::kMapping, kReadByHand, false,
     "{ table, id_column, deleted_at_column }: deletions recorded by a trigger"},
};
constinit const KeyTable<PostgresOptions> kDeletesKeys(kDeletesKeyList);

constexpr Key<PostgresRelationOptions> kRelationKeyList[] = {
    {"table", KeyType::kString, &PostgresRelationOptions::table, true,
     "the related table, optionally schema-qualified"},
    {"updated_at", KeyType::kString, &PostgresRelationOptions::updated_at, true,
     "its timestamptz (or timestamp) column set on every insert and update; index "
     "(updated_at, primary_key)"},
    {"primary_key", KeyType::kStringList, &PostgresRelationOptions::primary_key, false,
     "its key column, or a list for a composite key (link tables)"},
    {"documents", KeyType::kString, &PostgresRelationOptions::documents, false,
     "SELECT returning the ids of the documents a change touches; $1 is the array of the "
     "changed rows' keys, e.g. SELECT id FROM products WHERE category_id = ANY($1)"},
    {"document_key", KeyType::kString, &PostgresRelationOptions::document_key, false,
     "or: the column of the row that holds the document id (link tables)"},
    {"tombstone_table", KeyType::kMapping, kReadByHand, false,
     "{ table, id_column, deleted_at_column }: rows deleted from this table; id_column holds "
     "the document id to re-read"},
};
constinit const KeyTable<PostgresRelationOptions> kRelationKeys(kRelationKeyList);

constexpr Key<PostgresOptions> kPostgresKeyList[] = {
    {"dsn", KeyType::kSecret, &PostgresOptions::dsn, true,
     "libpq connection string or URI, e.g. postgresql://user:${PG_PASSWORD}@host/db"},
    {"table", KeyType::kString, &PostgresOptions::table, false,
     "table or view to sync, optionally schema-qualified; or use query"},
    {"query", KeyType::kString, &PostgresOptions::query, false,
     "a SELECT to sync instead of a table; primary_key and updated_at name its output columns"},
    {"primary_key", KeyType::kStringList, &PostgresOptions::primary_key, true,
     "key column, or a list for a composite key (ids are the parts joined by |)"},
    {"updated_at", KeyType::kString, &PostgresOptions::updated_at, true,
     "timestamptz (or timestamp) column set on every insert and update; index (updated_at, "
     "primary_key)"},
    {"updated_at_time_zone", KeyType::kString, &PostgresOptions::updated_at_time_zone, false,
     "for a timestamp (no zone) updated_at: the IANA zone the application writes it in, e.g. "
     "UTC; default: the server's TimeZone (what now() writes). Also the zone of other "
     "timestamp values in documents"},
    {"poll_interval", KeyType::kDuration, &PostgresOptions::poll_interval, false,
     "wait after a poll that found nothing new"},
    {"page_size", KeyType::kInt, &PostgresOptions::page_size, false, "rows per keyset page"},
    {"commit_margin", KeyType::kDuration, &PostgresOptions::commit_margin, false,
     "extra safety below the horizon, for updated_at set by application clocks"},
    {"notify_channel", KeyType::kString, &PostgresOptions::notify_channel, false,
     "LISTEN on this channel and poll at once on a NOTIFY (a trigger calls pg_notify); "
     "poll_interval stays the fallback"},
    {"deletes", KeyType::kMapping, kReadByHand, false,
     "{ soft_delete_column, tombstone_table: { table, id_column, deleted_at_column, "
     "deleted_at_time_zone } }"},
    {"relations", KeyType::kSequence, kReadByHand, false,
     "tables whose changes change documents: - { table, updated_at, primary_key (default id), "
     "documents or document_key, tombstone_table }; the documents they touch are re-read "
     "through the query restricted to their ids"},
};
constinit const KeyTable<PostgresOptions> kPostgresKeyTable(kPostgresKeyList);

// ---- PostgreSQL type OIDs (pg_type.dat) -------------------------------------------------------

namespace oid {
constexpr uint32_t kBool = 16, kBytea = 17, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21,
                   kInt4 = 23, kText = 25, kOid = 26, kJson = 114, kXml = 142, kFloat4 = 700,
                   kFloat8 = 701, kBpchar = 1042, kVarchar = 1043, kDate = 1082, kTime = 1083,
                   kTimestamp = 1114, kTimestampTz = 1184, kInterval = 1186, kTimeTz = 1266,
                   kNumeric = 1700, kUuid = 2950, kJsonb = 3802;
}  // namespace oid

enum class ValueKind { kInteger, kNumber, kBool, kJson, kTimestampTz, kTimestamp, kBytea, kString };

struct ScalarType {
  uint32_t type_oid;
  ValueKind kind;
};
constexpr ScalarType kScalarTypes[] = {
    {oid::kInt2, ValueKind::kInteger},
    {oid::kInt4, ValueKind::kInteger},
    {oid::kInt8, ValueKind::kInteger},
    {oid::kOid, ValueKind::kInteger},
    {oid::kNumeric, ValueKind::kNumber},
    {oid::kFloat4, ValueKind::kNumber},
    {oid::kFloat8, ValueKind::kNumber},
    {oid::kBool, ValueKind::kBool},
    {oid::kJson, ValueKind::kJson},
    {oid::kJsonb, ValueKind::kJson},
    {oid::kTimestampTz, ValueKind::kTimestampTz},
    {oid::kTimestamp, ValueKind::kTimestamp},
    {oid::kBytea, ValueKind::kBytea},
    {oid::kChar, ValueKind::kString},
    {oid::kName, ValueKind::kString},
    {oid::kText, ValueKind::kString},
    {oid::kXml, ValueKind::kString},
    {oid::kBpchar, ValueKind::kString},
    {oid::kVarchar, ValueKind::kString},
    {oid::kDate, ValueKind::kString},
    {oid::kTime, ValueKind::kString},
    {oid::kInterval, ValueKind::kString},
    {oid::kTimeTz, ValueKind::kString},
    {oid::kUuid, ValueKind::kString},
};

struct ArrayType {
  uint32_t type_oid;
  uint32_t element_oid;
};
constexpr ArrayType kArrayTypes[] = {
    {1000, oid::kBool},        {1001, oid::kBytea},     {1002, oid::kChar},    {1003, oid::kName},
    {1005, oid::kInt2},        {1007, oid::kInt4},      {1009, oid::kText},    {1014, oid::kBpchar},
    {1015, oid::kVarchar},     {1016, oid::kInt8},      {1021, oid::kFloat4},  {1022, oid::kFloat8},
    {1028, oid::kOid},         {1115, oid::kTimestamp}, {1182, oid::kDate},    {1183, oid::kTime},
    {1185, oid::kTimestampTz}, {1187, oid::kInterval},  {1231, oid::kNumeric}, {1270, oid::kTimeTz},
    {2951, oid::kUuid},        {199, oid::kJson},       {3807, oid::kJsonb},   {143, oid::kXml},
};

// The kind of a scalar type, or nullopt for a type these tables do not know.
std::optional<ValueKind> KnownKind(uint32_t type_oid) {
  for (const ScalarType& type : kScalarTypes) {
    if (type.type_oid == type_oid) return type.kind;
  }
  return std::nullopt;
}

// The element type of a built-in array type, or 0.
uint32_t KnownArrayElement(uint32_t type_oid) {
  for (const ArrayType& type : kArrayTypes) {
    if (type.type_oid == type_oid) return type.element_oid;
  }
  return 0;
}

ValueKind KindOf(uint32_t type_oid) { return KnownKind(type_oid).value_or(ValueKind::kString); }

// ---- Value encoding ---------------------------------------------------------------------------

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view text) {
  size_t pos = 0;
  const auto digits = [&] {
    const size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
    return pos - start;
  };
  if (pos < text.size() && text[pos] == '-') ++pos;
  if (pos < text.size() && text[pos] == '0') {
    ++pos;
  } else if (digits() == 0) {
    return false;
  }
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (digits() == 0) return false;
  }
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
    if (digits() == 0) return false;
  }
  return pos == text.size();
}

// JSON text without the whitespace between tokens: json values may be pretty-printed, and the
// documents travel one per line.
void AppendCompactJson(std::string& out, std::string_view text) {
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      out.push_back(c);
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out.push_back(c);
      if (c == '"') in_string = true;
    }
  }
}

// A timestamp's text form as RFC 3339: "2026-11-21 05:00:00.5+00" -> "2026-11-21T05:00:00.5Z";
// "...+05:30" keeps its offset, "+05" becomes "+05:00"; a text without an offset (a `timestamp`
// already converted to UTC wall time) gets "Z". nullopt for what RFC 3339 cannot express:
// infinity, -infinity, BC dates and years past 9999.
std::optional<std::string> Rfc3339Timestamp(std::string_view text) {
  const size_t space = text.find(' ');
  if (space != 10 || text.ends_with(" BC") || space + 9 > text.size()) return std::nullopt;
  std::string out(text);
  out[space] = 'T';
  const size_t sign = out.find_first_of("+-", space + 1);
  if (sign == std::string::npos) return out + "Z";
  const std::string offset = out.substr(sign + 1);
  if (offset == "00" || offset == "00:00") return out.substr(0, sign) + "Z";
  if (offset.size() == 2) return out + ":00";
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea in hex output ("\x0aff") as a base64 JSON string; other forms as a plain string.
void AppendByteaJson(std::string& out, std::string_view text) {
  if (!text.starts_with("\\x") || text.size() % 2 != 0) {
    AppendJsonString(out, text);
    return;
  }
  std::string bytes;
  bytes.reserve((text.size() - 2) / 2);
  for (size_t pos = 2; pos < text.size(); pos += 2) {
    const int high = HexValue(text[pos]);
    const int low = HexValue(text[pos + 1]);
    if (high < 0 || low < 0) {
      AppendJsonString(out, text);
      return;
    }
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  out.push_back('"');
  AppendBase64(out, bytes);
  out.push_back('"');
}

// `timestamp` (no zone) values as written -> the same instant as UTC timestamptz text
// ("2026-11-21 05:00:00+00"), for a source whose values are not written in UTC.
using UtcTimestamps = std::unordered_map<std::string, std::string>;

// `utc`: how `timestamp` values convert to UTC; nullptr when they are written in UTC already.
void AppendValueJson(std::string& out, ValueKind kind, std::string_view text,
                     const UtcTimestamps* utc = nullptr) {
  switch (kind) {
    case ValueKind::kInteger:
    case ValueKind::kNumber:
      // NaN and ±Infinity have no JSON form.
      out += IsJsonNumber(text) ? text : std::string_view("null");
      return;
    case ValueKind::kBool:
      out += (text == "t" || text == "true") ? "true" : "false";
      return;
    case ValueKind::kJson:
      AppendCompactJson(out, text);
      return;
    case ValueKind::kTimestamp:
      if (utc != nullptr) {
        const auto found = utc->find(std::string(text));
        if (found != utc->end()) text = found->second;
      }
      [[fallthrough]];
    case ValueKind::kTimestampTz:
      if (const std::optional<std::string> rfc3339 = Rfc3339Timestamp(text)) {
        AppendJsonString(out, *rfc3339);
      } else {
        out += "null";
      }
      return;
    case ValueKind::kBytea:
      AppendByteaJson(out, text);
      return;
    case ValueKind::kString:
      AppendJsonString(out, text);
      return;
  }
}

// An array's text form: '{' elements separated by ',' '}', elements being nested arrays, NULL,
// "double-quoted" strings with backslash escapes, or bare words (which may also use backslash
// escapes). Postgres prints [lower:upper] bounds first when they do not start at 1.
class ArrayLiteralParser {
 public:
  // `utc` as for AppendValueJson; `elements`, when given, also receives every non-NULL element.
  ArrayLiteralParser(std::string_view text, ValueKind element_kind,
                     const UtcTimestamps* utc = nullptr,
                     std::vector<std::string>* elements = nullptr)
      : text_(text), kind_(element_kind), utc_(utc), elements_(elements) {}

  bool Parse(std::string& out) {
    if (Peek() == '[') {  // "[0:2]={...}": bounds carry no data for JSON
      const size_t equals = text_.find('=');
      if (equals == std::string_view::npos) return false;
      pos_ = equals + 1;
    }
    SkipSpace();
    if (!ParseArray(out)) return false;
    SkipSpace();
    return pos_ == text_.size();
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool ParseArray(std::string& out) {
    if (Peek() != '{') return false;
    ++pos_;
    out.push_back('[');
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      out.push_back(']');
      return true;
    }
    while (true) {
      SkipSpace();
      if (Peek() == '{') {
        if (!ParseArray(out)) return false;
      } else if (!ParseElement(out)) {
        return false;
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        out.push_back(',');
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        out.push_back(']');
        return true;
      }
      return false;
    }
  }

  bool ParseElement(std::string& out) {
    std::string element;
    bool escaped_any = false;
    if (Peek() == '"') {
      ++pos_;
      while (true) {
        if (pos_ >= text_.size()) return false;
        const char c = text_[pos_++];
        if (c == '"') break;
        if (c == '\\') {
          if (pos_ >= text_.size()) return false;
          element.push_back(text_[pos_++]);
        } else {
          element.push_back(c);
        }
      }
    } else {
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}') {
        const char c = text_[pos_++];
        if (c == '\\') {
          if (pos_ >= text_.size()) return false;
          element.push_back(text_[pos_++]);
          escaped_any = true;
        } else if (c == '"' || c == '{') {
          return false;
        } else {
          element.push_back(c);
        }
      }
      while (!element.empty() && std::isspace(static_cast<unsigned char>(element.back()))) {
        element.pop_back();
      }
      if (element.empty()) return false;
      if (!escaped_any && element.size() == 4 && strncasecmp(element.c_str(), "NULL", 4) == 0) {
        out += "null";
        return true;
      }
    }
    AppendValueJson(out, kind_, element, utc_);
    if (elements_ != nullptr) elements_->push_back(std::move(element));
    return true;
  }

  std::string_view text_;
  ValueKind kind_;
  const UtcTimestamps* utc_;
  std::vector<std::string>* elements_;
  size_t pos_ = 0;
};

// ---- SQL text ---------------------------------------------------------------------------------

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Microseconds since the epoch of a timestamptz expression; NULL and -infinity sort first,
// infinity last.
std::string EpochMicrosSql(const std::string& instant) {
  const std::string first = "'" + std::to_string(std::numeric_limits<int64_t>::min()) + "'::int8";
  const std::string last = "'" + std::to_string(std::numeric_limits<int64_t>::max()) + "'::int8";
  return "CASE WHEN " + instant + " IS NULL THEN " + first + " WHEN isfinite(" + instant +
         ") THEN (EXTRACT(EPOCH FROM " + instant + ") * 1000000)::int8 WHEN " + instant +
         " < 'epoch' THEN " + first + " ELSE " + last + " END";
}

// Zone names that mean UTC: `timestamp` values written in them need no conversion.
bool IsUtcZone(std::string_view zone) {
  static constexpr std::string_view kUtcNames[] = {"UTC",       "Etc/UTC",       "UCT",  "Etc/UCT",
                                                   "GMT",       "Etc/GMT",       "GMT0", "Etc/GMT0",
                                                   "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
                                                   "Greenwich", "Etc/Greenwich", "Z"};
  for (const std::string_view name : kUtcNames) {
    if (zone.size() == name.size() && strncasecmp(zone.data(), name.data(), name.size()) == 0) {
      return true;
    }
  }
  return false;
}

// "2026-11-21 05:00:00.123456+00" for microseconds since the epoch (proleptic Gregorian).
std::string FormatUtcMicros(int64_t micros) {
  constexpr int64_t kMicrosPerDay = 86'400'000'000;
  int64_t days = micros / kMicrosPerDay;
  int64_t rest = micros % kMicrosPerDay;
  if (rest < 0) {
    rest += kMicrosPerDay;
    --days;
  }
  // civil_from_days (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
  days += 719'468;
  const int64_t era = (days >= 0 ? days : days - 146'096) / 146'097;
  const int64_t day_of_era = days - era * 146'097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_index = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
  const int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  char buffer[64];
  std::snprintf(
      buffer, sizeof(buffer), "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld+00",
      static_cast<long long>(year), static_cast<long long>(month), static_cast<long long>(day),
      static_cast<long long>(rest / 3'600'000'000), static_cast<long long>(rest / 60'000'000 % 60),
      static_cast<long long>(rest / 1'000'000 % 60), static_cast<long long>(rest % 1'000'000));
  return buffer;
}

// ---- Secrets in messages ----------------------------------------------------------------------

bool IsUri(std::string_view dsn) {
  return dsn.starts_with("postgresql://") || dsn.starts_with("postgres://");
}

// Where a DSN keeps its password: the text a libpq message could quote parts of. For a URI,
// the user info's password and any ?password= value; for key=value pairs, what follows
// "password=" up to the next known keyword ("password=S3 CRET dbname=shop" is read by libpq as
// password S3 and a keyword CRET without '=').
std::vector<std::string> PasswordRegions(const std::string& dsn, bool uri) {
  std::vector<std::string> regions = uri ? UrlSecrets(dsn) : std::vector<std::string>{};
  std::set<std::string, std::less<>> keywords;
  if (std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(),
                                                                            &PQconninfoFree);
      defaults != nullptr) {
    for (const PQconninfoOption* option = defaults.get(); option->keyword; ++option) {
      keywords.insert(option->keyword);
    }
  }
  const std::string_view text = dsn;
  for (size_t found = text.find("password"); found != std::string_view::npos;
       found = text.find("password", found + 1)) {
    size_t pos = found + std::strlen("password");
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos >= text.size() || text[pos] != '=') continue;
    const size_t start = pos + 1;
    size_t end = uri ? text.find('&', start) : std::string_view::npos;
    // The next " keyword=" ends a key=value password.
    for (size_t blank = text.find(' ', start); !uri && blank != std::string_view::npos;
         blank = text.find(' ', blank + 1)) {
      const size_t word = text.find_first_not_of(' ', blank);
      const size_t equals = word == std::string_view::npos ? word : text.find('=', word);
      if (equals == std::string_view::npos) break;
      std::string_view keyword = text.substr(word, equals - word);
      while (keyword.ends_with(' ')) keyword.remove_suffix(1);
      if (keywords.contains(keyword)) {
        end = blank;
        break;
      }
    }
    regions.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (uri) {
      if (std::optional<std::string> decoded = PercentDecode(regions.back())) {
        regions.push_back(std::move(*decoded));
      }
    }
  }
  return regions;
}

// A libpq message with each "quoted" part that comes from a password region masked.
std::string MaskQuotedPasswordParts(const std::string& message,
                                    const std::vector<std::string>& regions) {
  std::string out;
  size_t at = 0;
  for (size_t open = message.find('"'); open != std::string::npos; open = message.find('"', at)) {
    const size_t close = message.find('"', open + 1);
    if (close == std::string::npos) break;
    const std::string_view quoted = std::string_view(message).substr(open + 1, close - open - 1);
    const bool secret = quoted != "=" && !quoted.empty() &&
                        std::any_of(regions.begin(), regions.end(), [&](const std::string& r) {
                          return r.find(quoted) != std::string::npos;
                        });
    out.append(message, at, open + 1 - at);
    out += secret ? std::string(Secret::kRedacted) : std::string(quoted);
    out.push_back('"');
    at = close + 1;
  }
  out.append(message, at);
  return out;
}

}  // namespace

Result<std::vector<std::string>> CheckPostgresDsn(const std::string& dsn) {
  const bool uri = IsUri(dsn);
  if (const std::optional<UrlUserInfo> info = FindUrlUserInfo(dsn);
      uri && info && info->ambiguous) {
    return InvalidArgument(
        "the URI's user info (before the last '@') holds '/', '?', '#' or '@', so libpq would "
        "read part of the password as the host or the database; percent-encode them in the "
        "password (%2F, %3F, %23, %40)");
  }
  const std::vector<std::string> regions = PasswordRegions(dsn, uri);
  char* error = nullptr;
  const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(dsn.c_str(), &error), &PQconninfoFree);
  if (options == nullptr) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
      message.pop_back();
    }
    return InvalidArgument("libpq cannot read it: " +
                           RedactSecrets(MaskQuotedPasswordParts(message, regions), regions) +
                           " (quote a value holding spaces or quotes in single quotes, "
                           "password='...')");
  }
  std::vector<std::string> secrets = regions;
  for (const PQconninfoOption* option = options.get(); option->keyword; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    const std::string_view value = option->val;
    if (keyword == "password" && !value.empty()) secrets.emplace_back(value);
    if (keyword != "port") continue;
    // libpq checks ports only when connecting, in a message that quotes the value.
    for (size_t start = 0; start <= value.size();) {
      const size_t comma = std::min(value.find(',', start), value.size());
      const std::string_view port = value.substr(start, comma - start);
      int number = 0;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
      if (!port.empty() &&
          (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)) {
        return InvalidArgument("port " + RedactSecrets(JsonString(port), secrets) +
                               " is not a number between 1 and 65535");
      }
      start = comma + 1;
    }
  }
  return secrets;
}

namespace {

// The password in every form a message could carry it. The config has run CheckPostgresDsn;
// for a DSN it refuses, every region that may hold the password.
std::vector<std::string> DsnSecrets(const std::string& dsn) {
  Result<std::vector<std::string>> secrets = CheckPostgresDsn(dsn);
  if (secrets.ok()) return std::move(secrets).value();
  return PasswordRegions(dsn, IsUri(dsn));
}

// A server or libpq message as one line: the first line for SQL errors ("ERROR:  relation ... "
// without the LINE/caret that follow), every line joined for connection errors.
std::string MessageLine(std::string_view what, bool first_line_only) {
  std::string out;
  size_t start = 0;
  while (start <= what.size()) {
    size_t end = what.find('\n', start);
    if (end == std::string_view::npos) end = what.size();
    std::string_view line = what.substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    if (line.starts_with("ERROR:")) line.remove_prefix(6);
    if (line.starts_with("FATAL:")) line.remove_prefix(6);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!line.empty()) {
      if (!out.empty()) out += "; ";
      out += line;
      if (first_line_only) break;
    }
    start = end + 1;
  }
  return out;
}

}  // namespace

std::span<const KeySpec> PostgresKeys() { return kPostgresKeyTable.specs(); }

// ---- Pure helpers -----------------------------------------------------------------------------

std::string EncodePostgresCursor(const PostgresCursor& cursor) {
  // A part that is not UTF-8 (a key in a SQL_ASCII database) has no JSON string that holds it
  // exactly: it is written as {"hex":"..."}, so the cursor stays JSON and resumes where it was.
  const auto append_part = [](std::string& out, const std::string& part) {
    if (IsValidUtf8(part)) return AppendJsonString(out, part);
    static constexpr char kHex[] = "0123456789abcdef";
    out += "{\"hex\":\"";
    for (const char c : part) {
      out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
      out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
    }
    out += "\"}";
  };
  std::string out = "{\"rows\":[";
  for (size_t part_idx = 0; part_idx < cursor.rows.size(); ++part_idx) {
    if (part_idx > 0) out.push_back(',');
    if (part_idx == 0 && cursor.rows_updated_at_null) {
      out += "null";
    } else {
      append_part(out, cursor.rows[part_idx]);
    }
  }
  const auto append_list = [&](std::string& out, const std::vector<std::string>& parts) {
    out.push_back('[');
    for (size_t part_idx = 0; part_idx < parts.size(); ++part_idx) {
      if (part_idx > 0) out.push_back(',');
      append_part(out, parts[part_idx]);
    }
    out.push_back(']');
  };
  out += "],\"tombstones\":";
  append_list(out, cursor.tombstones);
  if (!cursor.relations.empty()) {
    out += ",\"relations\":{";
    bool first = true;
    for (const auto& [table, relation] : cursor.relations) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(out, table);
      out += ":{\"rows\":";
      append_list(out, relation.rows);
      out += ",\"tombstones\":";
      append_list(out, relation.tombstones);
      if (!relation.upto.empty()) {
        out += ",\"upto\":";
        append_list(out, relation.upto);
        out += ",\"after\":";
        append_list(out, relation.after);
      }
      out.push_back('}');
    }
    out.push_back('}');
  }
  out += "}";
  return out;
}

Result<PostgresCursor> DecodePostgresCursor(std::string_view token) {
  PostgresCursor cursor;
  if (token.empty()) return cursor;
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("postgres checkpoint " + JsonString(token) +
                           " is not one this source "
                           "wrote (" +
                           std::string(why) + ")");
  };
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(token.data(), token.size()).get(root) != simdjson::SUCCESS) {
    return bad("not JSON");
  }
  // A list of parts; `null_first`: the first may be null (a NULL updated_at).
  const auto read_list = [&](simdjson::dom::element value, std::vector<std::string>& target,
                             bool* null_first) -> std::optional<Status> {
    simdjson::dom::array array;
    if (value.get_array().get(array) != simdjson::SUCCESS) return bad("not a list");
    for (const simdjson::dom::element item : array) {
      if (item.is_null() && null_first != nullptr && target.empty()) {
        *null_first = true;
        target.emplace_back();
        continue;
      }
      std::string_view text;
      if (item.get_string().get(text) == simdjson::SUCCESS) {
        target.emplace_back(text);
        continue;
      }
      std::string_view hex;
      if (item["hex"].get_string().get(hex) != simdjson::SUCCESS || hex.size() % 2 != 0) {
        return bad("not a string");
      }
      std::string& bytes = target.emplace_back();
      for (size_t at = 0; at < hex.size(); at += 2) {
        unsigned byte = 0;
        if (std::from_chars(hex.data() + at, hex.data() + at + 2, byte, 16).ptr !=
            hex.data() + at + 2) {
          return bad("bad hex");
        }
        bytes.push_back(static_cast<char>(byte));
      }
    }
    return std::nullopt;
  };
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) return bad("not an object");
  for (const simdjson::dom::key_value_pair field : object) {
    std::optional<Status> error;
    if (field.key == "rows") {
      error = read_list(field.value, cursor.rows, &cursor.rows_updated_at_null);
    } else if (field.key == "tombstones") {
      error = read_list(field.value, cursor.tombstones, nullptr);
    } else if (field.key == "relations") {
      simdjson::dom::object relations;
      if (field.value.get_object().get(relations) != simdjson::SUCCESS) return bad("not an object");
      for (const simdjson::dom::key_value_pair relation : relations) {
        PostgresRelationCursor& target = cursor.relations[std::string(relation.key)];
        simdjson::dom::object parts;
        if (relation.value.get_object().get(parts) != simdjson::SUCCESS) {
          return bad("not an object");
        }
        for (const simdjson::dom::key_value_pair part : parts) {
          if (part.key == "rows") {
            error = read_list(part.value, target.rows, nullptr);
          } else if (part.key == "tombstones") {
            error = read_list(part.value, target.tombstones, nullptr);
          } else if (part.key == "upto") {
            error = read_list(part.value, target.upto, nullptr);
          } else if (part.key == "after") {
            error = read_list(part.value, target.after, nullptr);
          } else {
            return bad("unknown key");
          }
          if (error) return *error;
        }
      }
    } else {
      return bad("unknown key");
    }
    if (error) return *error;
  }
  return cursor;
}

std::string PostgresValueToJson(uint32_t type_oid, std::string_view text) {
  if (const uint32_t element = KnownArrayElement(type_oid); element != 0) {
    if (std::optional<std::string> array = PostgresArrayToJson(text, element)) return *array;
    return JsonString(text);
  }
  std::string out;
  AppendValueJson(out, KindOf(type_oid), text);
  return out;
}

std::optional<std::string> PostgresArrayToJson(std::string_view literal, uint32_t element_oid) {
  std::string out;
  if (!ArrayLiteralParser(literal, KindOf(element_oid)).Parse(out)) return std::nullopt;
  return out;
}

std::string QuotePostgresName(std::string_view name) {
  std::string out;
  size_t pos = 0;
  while (pos < name.size()) {
    if (!out.empty()) out.push_back('.');
    if (name[pos] == '"') {  // already quoted: keep through the closing quote ("" is a quote)
      size_t end = pos + 1;
      while (end < name.size()) {
        if (name[end] == '"') {
          if (end + 1 < name.size() && name[end + 1] == '"') {
            end += 2;
            continue;
          }
          break;
        }
        ++end;
      }
      if (end >= name.size()) {  // unterminated: quote what is there
        out += QuoteIdent(name.substr(pos + 1));
        return out;
      }
      out += name.substr(pos, end + 1 - pos);
      pos = end + 1;
    } else {
      size_t dot = name.find('.', pos);
      if (dot == std::string_view::npos) dot = name.size();
      out += QuoteIdent(name.substr(pos, dot - pos));
      pos = dot;
    }
    if (pos < name.size() && name[pos] == '.') ++pos;
  }
  return out;
}

// ---- The source -------------------------------------------------------------------------------

namespace {

constexpr auto kStallWarnAfter = std::chrono::minutes(1);
constexpr auto kStallWarnInterval = std::chrono::minutes(1);
constexpr int kTypeLookupRounds = 4;  // domains over domains over arrays...
// notify_channel: the longest single wait inside Poll (shutdown waits for it), the re-poll
// interval while the horizon holds back notified rows, and the wait between LISTEN attempts.
constexpr auto kWakeSlice = std::chrono::milliseconds(500);
constexpr auto kHeldBackRepoll = std::chrono::milliseconds(200);
constexpr auto kListenRetry = std::chrono::seconds(1);

// A configuration problem found by looking at the database, e.g. updated_at is not a
// timestamp (the first page would otherwise fail with a vaguer "invalid input syntax").
class ConfigProblem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How one result column becomes JSON.
struct Codec {
  bool array = false;
  ValueKind kind = ValueKind::kString;  // of the value, or of the elements of an array
  bool as_text = false;                 // an array this source cannot parse: the literal text
};

class PostgresSource final : public Source {
 public:
  // `full_read`: the reader behind PostgresFullRead (upserts only, no tombstones).
  explicit PostgresSource(PostgresOptions options, bool full_read = false);
  ~PostgresSource() override = default;

  // Source
  Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) override;
  Result<std::vector<Event>> ReadDocuments(std::span<const std::string> ids) override;
  Status HealthCheck() override;
  // With notify_channel, Poll itself waits (WaitForWake), in slices short enough for shutdown.
  std::chrono::milliseconds IdleWait() const override {
    return options_.notify_channel.empty() || full_read_ ? options_.poll_interval
                                                         : std::chrono::milliseconds(10);
  }
  Result<std::unique_ptr<FullRead>> OpenFullRead() override;
  bool LastPollReachedEnd() const override { return reached_end_; }

  // The documents a full read started now would give (FullRead::CountAll).
  Result<std::optional<uint64_t>> CountAll();

 private:
  Result<std::vector<Event>> PollPage(const Checkpoint& from, size_t max_events);
  // notify_channel: (re)connects the listening connection and LISTENs; false (logged) when
  // that fails.
  bool Listen();
  // notify_channel, once caught up: waits up to kWakeSlice for a notification; true when the
  // source should read now (a notification, a reconnected listener, or the fallback poll due).
  bool WaitForWake();
  Status EnsureConnected();
  // Converts a pqxx or std exception into a Status naming `context`; drops the connection
  // when it may be unusable.
  Status Failure(const std::exception& error, std::string_view context);
  void CheckColumns(pqxx::nontransaction& tx);
  // Which zone each `timestamp` (no zone) column is read in; see "Time zones" at the top.
  void ResolveZones(pqxx::nontransaction& tx);
  void BuildStatements(pqxx::nontransaction& tx);
  std::string KeyColumnsSql() const;     // t.updated_at, t.pk...
  std::string TombstoneKeysSql() const;  // t.deleted_at, t.id
  // Logged once per source at its first connection (and by every HealthCheck).
  void LogZones() const;
  void CheckPrivileges(pqxx::nontransaction& tx);
  // Asks the planner whether the page queries can read an index in order; a WARN otherwise.
  void CheckIndexes();
  void CheckIndexesOrThrow();
  // Rows with updated_at ahead of the database's clock are held back by the horizon until it
  // gets there; a WARN (at most once a minute) says how many and how far ahead.
  void WarnRowsAhead(pqxx::nontransaction& tx);
  // The horizon as text ("2026-11-21 05:00:00.123456+00") for the page statements' $1.
  std::string ReadHorizon(pqxx::nontransaction& tx);
  void ResolveTypes(pqxx::nontransaction& tx, const pqxx::result& result);
  Codec CodecFor(uint32_t type_oid) const;
  uint32_t BaseType(uint32_t type_oid) const;
  // Fills utc_timestamps_ for the `timestamp` values of `rows` (one round trip), unless they are
  // written in UTC.
  void ConvertTimestamps(pqxx::nontransaction& tx, const pqxx::result& rows,
                         const std::vector<Codec>& codecs);
  Result<std::vector<Event>> Merge(const pqxx::result& rows, const std::vector<Codec>& codecs,
                                   const pqxx::result& tombstones, PostgresCursor cursor,
                                   size_t limit, size_t max_events);
  Status RowToEvent(const pqxx::row& row, const std::vector<Codec>& codecs, Event& event,
                    std::vector<std::string>& row_cursor) const;

  // Relations (see "Relations" at the top).
  struct RelationSql {
    // Changed rows: $1 horizon, $2 limit; `next` $3.. the cursor (updated_at, pk...), `start`
    // $3 the start instant. Columns: updated_at, pk..., [document_key].
    std::string rows_first, rows_next, rows_start;
    std::string tombstones_first, tombstones_next, tombstones_start;  // deleted_at, id
    // A fan-out's rows again: the cursor as in rows_next/rows_start, then upto. No horizon.
    std::string fanout_rows_next, fanout_rows_start;
    // Distinct document ids: $1 keys, $2 limit, `next` $3 the last id read.
    std::string documents_first, documents_next;
    std::string documents_check;  // the documents query, $1 = an empty array, LIMIT 0
  };
  void CheckRelations(pqxx::nontransaction& tx);
  void BuildRelationStatements(pqxx::nontransaction& tx);
  // Relation cursors not in the checkpoint yet start at the horizon now.
  void StartRelations(pqxx::nontransaction& tx, PostgresCursor& cursor);
  // kRefetch events for the documents the next changes of the relations touch, after `cursor`;
  // empty when every relation is caught up (the cursor may still have moved: see
  // advanced_from_).
  Result<std::vector<Event>> PollRelations(pqxx::nontransaction& tx, const std::string& horizon,
                                           PostgresCursor& cursor, size_t limit);
  // The index advice of `check` for the restricted query and each `documents` query.
  void CheckRelationPlans(pqxx::work& tx, simdjson::dom::parser& parser);

  const PostgresOptions options_;
  const bool full_read_;
  bool reached_end_ = false;                // the last page read everything below its horizon
  const std::vector<std::string> secrets_;  // scrubbed from every message
  std::string context_;                     // "postgres table=products"
  std::string component_;                   // for log lines
  std::string source_sql_;                  // what follows FROM: a quoted name or (query)

  // Learnt from the database at each connection.
  std::string server_zone_;         // TimeZone as a new session sees it
  std::string rows_zone_;           // updated_at is a `timestamp`: the zone of its values; else ""
  std::string tombstones_zone_;     // the same for the tombstone table's deleted_at
  std::string values_zone_;         // the zone of `timestamp` values in documents
  bool rows_zone_has_dst_ = false;  // clocks in rows_zone_ go back an hour each autumn
  bool tombstones_zone_has_dst_ = false;
  bool updated_at_is_timestamp_ = false;  // a `timestamp` (no zone), not a timestamptz
  bool deleted_at_is_timestamp_ = false;
  bool soft_delete_is_bool_ = false;

  // SQL, built at each connection (it depends on column types and zones).
  std::string rows_first_sql_;   // $1 horizon, $2 limit (full read: $1 limit)
  std::string rows_next_sql_;    // ... $3.. cursor (updated_at, pk...) (full read: $2.. pk...)
  std::string nulls_first_sql_;  // rows whose updated_at is NULL: $1 limit
  std::string nulls_next_sql_;   // ... $2.. cursor (pk...)
  std::string null_count_sql_;
  std::string ahead_sql_;  // how many rows are ahead of now(), and how far
  std::string tombstones_first_sql_;
  std::string tombstones_next_sql_;
  std::string check_rows_sql_;
  std::string check_tombstones_sql_;
  std::string count_sql_;   // $1 horizon
  std::string reread_sql_;  // the rows of $1, an array of document ids (ReadDocuments)
  std::vector<RelationSql> relation_sql_;    // as options_.relations
  std::vector<bool> relation_is_timestamp_;  // updated_at is a `timestamp`, read in server_zone_
  // A poll that moved relation cursors without finding a document (related rows that touch
  // none) returns nothing; the next poll from the same position starts from the moved one.
  std::string advanced_from_;
  std::string advanced_to_;
  size_t key_columns_ = 0;  // leading bookkeeping columns of a row page, before t.*

  std::unique_ptr<pqxx::connection> connection_;
  bool startup_checked_ = false;  // the once-per-source checks and log lines

  struct TypeInfo {
    char type_type = 'b';   // pg_type.typtype: 'd' domain, ...
    uint32_t base = 0;      // typbasetype of a domain
    uint32_t element = 0;   // typelem of an array
    bool is_array = false;  // typcategory 'A' with a ',' delimiter
  };
  std::unordered_map<uint32_t, TypeInfo> types_;  // types outside the built-in tables
  UtcTimestamps utc_timestamps_;                  // of the current page; see ConvertTimestamps

  // Sessions of other roles seen in a transaction whose start we cannot see: pid -> the
  // horizon bound we hold for them (the previous look, when they were not yet seen).
  std::map<int, int64_t> hidden_since_micros_;
  std::optional<int64_t> previous_now_micros_;
  std::chrono::steady_clock::time_point last_stall_warning_{};
  std::chrono::steady_clock::time_point last_ahead_check_{};
  int64_t last_now_micros_ = 0;      // now() of the last horizon statement
  int64_t last_horizon_micros_ = 0;  // and the horizon it gave

  // notify_channel: a second connection LISTENs; Poll waits on it once caught up.
  std::unique_ptr<pqxx::connection> listener_;
  int listener_pid_ = 0;
  bool listen_failing_ = false;  // logged once until it works again
  std::chrono::steady_clock::time_point next_listen_attempt_{};
  std::optional<std::string> caught_up_at_;  // the position the last empty poll started from
  std::chrono::steady_clock::time_point last_poll_{};
  bool notified_ = false;                      // a notification woke the coming poll
  std::optional<int64_t> wake_target_micros_;  // poll often until the horizon passes this
};

PostgresSource::PostgresSource(PostgresOptions options, bool full_read)
    : options_(std::move(options)),
      full_read_(full_read),
      secrets_(DsnSecrets(options_.dsn.value())) {
  context_ = options_.table.empty() ? "postgres query" : "postgres table=" + options_.table;
  component_ = options_.log_component;
  if (!options_.table.empty()) {
    source_sql_ = QuotePostgresName(options_.table);
  } else {
    std::string_view query = options_.query;
    while (!query.empty() &&
           (query.back() == ';' || std::isspace(static_cast<unsigned char>(query.back())))) {
      query.remove_suffix(1);
    }
    source_sql_ = "(" + std::string(query) + "\n)";
  }
  const std::string keys = KeyColumnsSql();
  std::string check = "SELECT " + keys;
  if (!options_.soft_delete_column.empty()) {
    check += ", t." + QuoteIdent(options_.soft_delete_column);
  }
  check_rows_sql_ = check + " FROM " + source_sql_ + " AS t LIMIT 0";
  if (options_.tombstones) {
    check_tombstones_sql_ = "SELECT " + TombstoneKeysSql() + " FROM " +
                            QuotePostgresName(options_.tombstones->table) + " AS t LIMIT 0";
  }
}

std::string PostgresSource::KeyColumnsSql() const {
  std::string keys = "t." + QuoteIdent(options_.updated_at);
  for (const std::string& column : options_.primary_key) keys += ", t." + QuoteIdent(column);
  return keys;
}

std::string PostgresSource::TombstoneKeysSql() const {
  return "t." + QuoteIdent(options_.tombstones->deleted_at_column) + ", t." +
         QuoteIdent(options_.tombstones->id_column);
}

void PostgresSource::BuildStatements(pqxx::nontransaction& tx) {
  // A `timestamp` column is compared with the horizon converted to its zone, never the other
  // way round: the comparison stays on the bare column, so an index on it still serves.
  const auto horizon_in = [&](const std::string& zone) {
    return zone.empty() ? std::string("$1::timestamptz")
                        : "($1::timestamptz AT TIME ZONE " + tx.quote(zone) + ")";
  };
  const auto instant_of = [&](const std::string& column, const std::string& zone) {
    return zone.empty() ? column : "(" + column + " AT TIME ZONE " + tx.quote(zone) + ")";
  };
  const std::string updated_at = "t." + QuoteIdent(options_.updated_at);
  const std::string keys = KeyColumnsSql();
  std::string cursor_params;
  for (size_t part_idx = 0; part_idx <= options_.primary_key.size(); ++part_idx) {
    if (part_idx > 0) cursor_params += ", ";
    cursor_params += "$" + std::to_string(3 + part_idx);
  }
  std::string select = "SELECT " + EpochMicrosSql(instant_of(updated_at, rows_zone_)) + ", " + keys;
  key_columns_ = 2 + options_.primary_key.size();
  if (!options_.soft_delete_column.empty()) {
    select += ", t." + QuoteIdent(options_.soft_delete_column);
    ++key_columns_;
  }
  const std::string below_horizon = updated_at + " < " + horizon_in(rows_zone_);
  select += ", t.* FROM " + source_sql_ + " AS t WHERE ";
  const std::string order = " ORDER BY " + keys + " LIMIT $2";
  rows_first_sql_ = select + below_horizon + order;
  rows_next_sql_ = select + below_horizon + " AND (" + keys + ") > (" + cursor_params + ")" + order;
  if (!options_.relations.empty()) {
    reread_sql_ = select + "t." + QuoteIdent(options_.primary_key.front()) + " = ANY($1)";
    BuildRelationStatements(tx);
  }

  // Rows whose updated_at is NULL, by key: $1 limit, $2.. the key after which to go on. An
  // index on (updated_at, key) serves these too (IS NULL, then key order).
  std::string pk;
  std::string pk_params;
  for (size_t pk_idx = 0; pk_idx < options_.primary_key.size(); ++pk_idx) {
    if (pk_idx > 0) {
      pk += ", ";
      pk_params += ", ";
    }
    pk += "t." + QuoteIdent(options_.primary_key[pk_idx]);
    pk_params += "$" + std::to_string(2 + pk_idx);
  }
  const std::string is_null = updated_at + " IS NULL";
  nulls_first_sql_ = select + is_null + " ORDER BY " + pk + " LIMIT $1";
  nulls_next_sql_ =
      select + is_null + " AND (" + pk + ") > (" + pk_params + ") ORDER BY " + pk + " LIMIT $1";
  if (full_read_) {
    // By primary key alone, whatever updated_at says: a row updated during the read keeps its
    // place, so each row is read once (see OpenFullRead). $1 limit, $2.. the key to go on after.
    rows_first_sql_ = select + "true ORDER BY " + pk + " LIMIT $1";
    rows_next_sql_ = select + "(" + pk + ") > (" + pk_params + ") ORDER BY " + pk + " LIMIT $1";
  }

  count_sql_ = "SELECT count(*) FROM " + source_sql_ + " AS t WHERE (" + below_horizon + " OR " +
               is_null + ")";
  null_count_sql_ = "SELECT count(*) FROM " + source_sql_ + " AS t WHERE " + is_null;
  const std::string db_now =
      rows_zone_.empty() ? "now()" : "(now() AT TIME ZONE " + tx.quote(rows_zone_) + ")";
  ahead_sql_ = "SELECT count(*), EXTRACT(EPOCH FROM max(" + updated_at +
               ") FILTER (WHERE isfinite(" + updated_at + ")) - " + db_now + ")::float8 FROM " +
               source_sql_ + " AS t WHERE " + updated_at + " > " + db_now;
  if (!options_.soft_delete_column.empty()) {
    // The same rule as RowToEvent: a boolean column deletes when true, any other when set.
    const std::string flag = "t." + QuoteIdent(options_.soft_delete_column);
    count_sql_ +=
        soft_delete_is_bool_ ? " AND " + flag + " IS NOT TRUE" : " AND " + flag + " IS NULL";
  }

  if (options_.tombstones) {
    const PostgresTombstoneOptions& tomb = *options_.tombstones;
    const std::string deleted_at = "t." + QuoteIdent(tomb.deleted_at_column);
    const std::string tomb_keys = TombstoneKeysSql();
    const std::string tomb_select =
        "SELECT " + EpochMicrosSql(instant_of(deleted_at, tombstones_zone_)) + ", " + tomb_keys +
        " FROM " + QuotePostgresName(tomb.table) + " AS t WHERE " + deleted_at + " < " +
        horizon_in(tombstones_zone_);
    const std::string tomb_order = " ORDER BY " + tomb_keys + " LIMIT $2";
    tombstones_first_sql_ = tomb_select + tomb_order;
    tombstones_next_sql_ = tomb_select + " AND (" + tomb_keys + ") > ($3, $4)" + tomb_order;
  }
}

Status PostgresSource::Failure(const std::exception& error, std::string_view context) {
  std::string where(context);
  if (const auto* broken = dynamic_cast<const pqxx::broken_connection*>(&error)) {
    connection_.reset();
    const std::string message = RedactSecrets(MessageLine(broken->what(), false), secrets_);
    // libpq refuses an option value it checks only when connecting (sslmode=bogus): no retry
    // will change it.
    if (message.starts_with("invalid ")) return InvalidArgument(where + ": dsn: " + message);
    // A refused login or a missing database will not fix itself by retrying.
    if (message.find("authentication failed") != std::string::npos ||
        message.find("no pg_hba.conf entry") != std::string::npos ||
        (message.find("database") != std::string::npos &&
         message.find("does not exist") != std::string::npos)) {
      return FailedPrecondition(where + ": " + message);
    }
    return Unavailable(where + ": connection failed or lost: " + message);
  }
  if (dynamic_cast<const ConfigProblem*>(&error) != nullptr) {
    return InvalidArgument(where + ": " + error.what());
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string& state = sql->sqlstate();
    const std::string message = RedactSecrets(MessageLine(sql->what(), true), secrets_);
    const auto in_class = [&](std::string_view prefix) { return state.starts_with(prefix); };
    if (state == "42501") {
      return FailedPrecondition(where + ": " + message + " (grant the role SELECT on it)");
    }
    if (in_class("28") || in_class("3D")) return FailedPrecondition(where + ": " + message);
    if (in_class("42") || in_class("22") || in_class("0A") || in_class("2F")) {
      return InvalidArgument(where + ": " + message +
                             " (check table/query, primary_key, updated_at and deletes)");
    }
    // Connection trouble (08), shutdown (57P0x), resources (53), conflicts (40), timeouts.
    if (!in_class("40") && !in_class("57014")) connection_.reset();
    return Unavailable(where + ": " + message + " (SQLSTATE " + state + ")");
  }
  connection_.reset();
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr ||
      dynamic_cast<const pqxx::failure*>(&error) != nullptr) {
    return Unavailable(where + ": " + RedactSecrets(MessageLine(error.what(), false), secrets_));
  }
  return Internal(where + ": " + RedactSecrets(MessageLine(error.what(), false), secrets_));
}

// `dsn` with fallback_application_name=`name` (shown in pg_stat_activity.application_name
// unless the DSN names one). REQUIRES: `name` needs no quoting or percent-encoding.
std::string DsnNamed(std::string dsn, std::string_view name) {
  const bool uri = dsn.starts_with("postgresql://") || dsn.starts_with("postgres://");
  if (uri) {
    dsn += (dsn.find('?') == std::string::npos ? "?" : "&");
  } else {
    dsn += " ";
  }
  return dsn + "fallback_application_name=" + std::string(name);
}

// True when an idle connection has something to read: between queries the server only writes
// to say it is going away (a shutdown or a terminated backend), so the connection is done for.
// Noticing here rather than in the next query gives a clean reconnect (libpqxx 6 also leaks a
// result when a query meets a connection closed under it).
bool IdleConnectionClosed(int socket) {
  if (socket < 0) return true;
  pollfd entry{.fd = socket, .events = POLLIN, .revents = 0};
  return ::poll(&entry, 1, 0) != 0;
}

Status PostgresSource::EnsureConnected() {
  if (connection_ != nullptr && connection_->is_open() &&
      !IdleConnectionClosed(connection_->sock())) {
    return Status::Ok();
  }
  connection_.reset();
  types_.clear();
  const std::string dsn = DsnNamed(options_.dsn.value(), "searchsync");
  try {
    connection_ = std::make_unique<pqxx::connection>(dsn);
    {
      pqxx::nontransaction tx(*connection_);
      // What now() writes into a `timestamp` column in the writers' sessions, before this
      // session changes its own zone.
      server_zone_ = tx.exec1("SHOW TimeZone")[0].c_str();
      // Text forms that round-trip: the cursor compares them back, documents carry them.
      tx.exec(
          "SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; "
          "SET bytea_output = 'hex'; SET IntervalStyle = 'postgres'");
      CheckColumns(tx);
      ResolveZones(tx);
      BuildStatements(tx);
      if (!startup_checked_ && !full_read_) {
        LogZones();
        CheckPrivileges(tx);
      }
    }
    if (!startup_checked_ && !full_read_) CheckIndexes();
    startup_checked_ = true;
  } catch (const std::exception& error) {
    Status status = Failure(error, context_);
    connection_.reset();
    return status;
  }
  return Status::Ok();
}

void PostgresSource::CheckColumns(pqxx::nontransaction& tx) {
  // True for a `timestamp` (no zone), false for a timestamptz.
  const auto require_timestamp = [&](const pqxx::result& result, const std::string& column,
                                     const std::string& key) {
    ResolveTypes(tx, result);
    const uint32_t type = BaseType(result.column_type(0));
    if (type == oid::kTimestampTz || type == oid::kTimestamp) return type == oid::kTimestamp;
    const pqxx::row name =
        tx.exec_params1("SELECT format_type($1::oid, NULL)", std::to_string(result.column_type(0)));
    throw ConfigProblem(key + " column " + QuoteIdent(column) + " has type " + name[0].c_str() +
                        "; it must be timestamptz (or timestamp)");
  };
  const pqxx::result rows = tx.exec(check_rows_sql_);
  updated_at_is_timestamp_ = require_timestamp(rows, options_.updated_at, "updated_at");
  soft_delete_is_bool_ = !options_.soft_delete_column.empty() &&
                         BaseType(rows.column_type(rows.columns() - 1)) == oid::kBool;
  deleted_at_is_timestamp_ = false;
  if (options_.tombstones) {
    try {
      const pqxx::result tombstones = tx.exec(check_tombstones_sql_);
      deleted_at_is_timestamp_ =
          require_timestamp(tombstones, options_.tombstones->deleted_at_column,
                            "deletes.tombstone_table.deleted_at_column");
    } catch (const pqxx::sql_error& error) {
      // Say which table: the message alone would read like a problem with the main table.
      throw pqxx::sql_error("deletes.tombstone_table " + options_.tombstones->table + ": " +
                                MessageLine(error.what(), true),
                            error.query(), error.sqlstate().c_str());
    }
  }
  if (!options_.relations.empty()) CheckRelations(tx);
}

// An array literal of `values` as text ('{"1","a\"b"}'), for a $n the server types from its
// use (`col = ANY($1)`). `values`: any range of strings.
template <typename Strings>
std::string ArrayLiteral(const Strings& values) {
  std::string literal = "{";
  for (const std::string& value : values) {
    if (literal.size() > 1) literal.push_back(',');
    literal.push_back('"');
    for (const char c : value) {
      if (c == '"' || c == '\\') literal.push_back('\\');
      literal.push_back(c);
    }
    literal.push_back('"');
  }
  literal.push_back('}');
  return literal;
}

void PostgresSource::CheckRelations(pqxx::nontransaction& tx) {
  // Each relation's columns, the type of its updated_at, and what its `documents` query gives,
  // against the type of the document id (the main primary key).
  const pqxx::result main = tx.exec("SELECT t." + QuoteIdent(options_.primary_key.front()) +
                                    " FROM " + source_sql_ + " AS t LIMIT 0");
  const uint32_t id_type = BaseType(main.column_type(0));
  const auto type_name = [&](uint32_t type_oid) {
    return std::string(
        tx.exec_params1("SELECT format_type($1::oid, NULL)", std::to_string(type_oid))[0].c_str());
  };
  relation_is_timestamp_.assign(options_.relations.size(), false);
  for (size_t relation_idx = 0; relation_idx < options_.relations.size(); ++relation_idx) {
    const PostgresRelationOptions& relation = options_.relations[relation_idx];
    const std::string where =
        "relations[" + std::to_string(relation_idx) + "] (" + relation.table + ")";
    std::string columns = "t." + QuoteIdent(relation.updated_at);
    for (const std::string& column : relation.primary_key) columns += ", t." + QuoteIdent(column);
    if (!relation.document_key.empty()) columns += ", t." + QuoteIdent(relation.document_key);
    pqxx::result rows;
    try {
      rows = tx.exec("SELECT " + columns + " FROM " + QuotePostgresName(relation.table) +
                     " AS t LIMIT 0");
      if (relation.tombstones) {
        tx.exec("SELECT t." + QuoteIdent(relation.tombstones->deleted_at_column) + ", t." +
                QuoteIdent(relation.tombstones->id_column) + " FROM " +
                QuotePostgresName(relation.tombstones->table) + " AS t LIMIT 0");
      }
    } catch (const pqxx::sql_error& error) {
      throw pqxx::sql_error(where + ": " + MessageLine(error.what(), true), error.query(),
                            error.sqlstate().c_str());
    }
    ResolveTypes(tx, rows);
    const uint32_t updated_at_type = BaseType(rows.column_type(0));
    if (updated_at_type != oid::kTimestampTz && updated_at_type != oid::kTimestamp) {
      throw ConfigProblem(where + ": updated_at column " + QuoteIdent(relation.updated_at) +
                          " has type " + type_name(updated_at_type) +
                          "; it must be timestamptz (or timestamp)");
    }
    relation_is_timestamp_[relation_idx] = updated_at_type == oid::kTimestamp;
    if (relation.documents.empty()) continue;
    pqxx::result documents;
    try {
      documents = tx.exec_params("SELECT * FROM (" + relation.documents + "\n) AS d LIMIT 0",
                                 std::string("{}"));
    } catch (const pqxx::sql_error& error) {
      throw pqxx::sql_error(where + ": documents: " + MessageLine(error.what(), true) +
                                " (run with $1 = an empty array of keys)",
                            error.query(), error.sqlstate().c_str());
    }
    if (documents.columns() != 1) {
      throw ConfigProblem(where + ": documents returns " + std::to_string(documents.columns()) +
                          " columns; it must return one, the document id (" +
                          QuoteIdent(options_.primary_key.front()) + " of the query)");
    }
    ResolveTypes(tx, documents);
    const uint32_t document_type = BaseType(documents.column_type(0));
    if (document_type != id_type) {
      throw ConfigProblem(where + ": documents returns " + type_name(document_type) +
                          " but the document id " + QuoteIdent(options_.primary_key.front()) +
                          " is " + type_name(id_type) +
                          "; cast it (e.g. SELECT id::" + type_name(id_type) + " ...)");
    }
  }
}

void PostgresSource::BuildRelationStatements(pqxx::nontransaction& tx) {
  relation_sql_.clear();
  for (size_t relation_idx = 0; relation_idx < options_.relations.size(); ++relation_idx) {
    const PostgresRelationOptions& relation = options_.relations[relation_idx];
    RelationSql& sql = relation_sql_.emplace_back();
    const bool is_timestamp =
        relation_idx < relation_is_timestamp_.size() && relation_is_timestamp_[relation_idx];
    // A `timestamp` column is written in the server's zone (now(), triggers).
    const std::string horizon =
        is_timestamp ? "($1::timestamptz AT TIME ZONE " + tx.quote(server_zone_) + ")"
                     : std::string("$1::timestamptz");
    const std::string updated_at = "t." + QuoteIdent(relation.updated_at);
    std::string keys = updated_at;
    std::string cursor_params = "$3";
    std::string upto_params;
    for (size_t pk_idx = 0; pk_idx < relation.primary_key.size(); ++pk_idx) {
      keys += ", t." + QuoteIdent(relation.primary_key[pk_idx]);
      cursor_params += ", $" + std::to_string(4 + pk_idx);
    }
    const std::string table = QuotePostgresName(relation.table);
    std::string select = "SELECT " + keys;
    if (!relation.document_key.empty()) select += ", t." + QuoteIdent(relation.document_key);
    select += " FROM " + table + " AS t WHERE " + updated_at + " < " + horizon;
    const std::string order = " ORDER BY " + keys + " LIMIT $2";
    sql.rows_first = select + order;
    sql.rows_next = select + " AND (" + keys + ") > (" + cursor_params + ")" + order;
    sql.rows_start = select + " AND " + updated_at + " >= $3" + order;
    // Fan-out rows again, without the horizon (they were below it): $1 limit, $2.. cursor, then
    // upto.
    const size_t parts = 1 + relation.primary_key.size();
    std::string next_params, upto_after_next, upto_after_start;
    for (size_t part_idx = 0; part_idx < parts; ++part_idx) {
      if (part_idx > 0) {
        next_params += ", ";
        upto_after_next += ", ";
        upto_after_start += ", ";
      }
      next_params += "$" + std::to_string(2 + part_idx);
      upto_after_next += "$" + std::to_string(2 + parts + part_idx);
      upto_after_start += "$" + std::to_string(3 + part_idx);
    }
    const std::string fanout = "SELECT " + keys + " FROM " + table + " AS t WHERE ";
    const std::string fanout_order = " ORDER BY " + keys + " LIMIT $1";
    sql.fanout_rows_next = fanout + "(" + keys + ") > (" + next_params + ") AND (" + keys +
                           ") <= (" + upto_after_next + ")" + fanout_order;
    sql.fanout_rows_start = fanout + updated_at + " >= $2 AND (" + keys + ") <= (" +
                            upto_after_start + ")" + fanout_order;
    if (relation.tombstones) {
      const PostgresTombstoneOptions& tomb = *relation.tombstones;
      const std::string deleted_at = "t." + QuoteIdent(tomb.deleted_at_column);
      const std::string tomb_keys = deleted_at + ", t." + QuoteIdent(tomb.id_column);
      const std::string tomb_select = "SELECT " + tomb_keys + " FROM " +
                                      QuotePostgresName(tomb.table) + " AS t WHERE " + deleted_at +
                                      " < $1::timestamptz";
      const std::string tomb_order = " ORDER BY " + tomb_keys + " LIMIT $2";
      sql.tombstones_first = tomb_select + tomb_order;
      sql.tombstones_next = tomb_select + " AND (" + tomb_keys + ") > ($3, $4)" + tomb_order;
      sql.tombstones_start = tomb_select + " AND " + deleted_at + " >= $3" + tomb_order;
    }
    if (!relation.documents.empty()) {
      const std::string documents = "SELECT DISTINCT d.doc FROM (" + relation.documents +
                                    "\n) AS d(doc) WHERE d.doc IS NOT NULL";
      sql.documents_first = documents + " ORDER BY d.doc LIMIT $2";
      sql.documents_next = documents + " AND d.doc > $3 ORDER BY d.doc LIMIT $2";
    }
  }
}

void PostgresSource::StartRelations(pqxx::nontransaction& tx, PostgresCursor& cursor) {
  std::optional<std::string> horizon;
  for (const PostgresRelationOptions& relation : options_.relations) {
    PostgresRelationCursor& position = cursor.relations[relation.table];
    if (!position.rows.empty()) continue;
    if (!horizon) horizon = ReadHorizon(tx);
    position.rows = {*horizon};
    position.tombstones = {*horizon};
  }
}

Result<std::vector<Event>> PostgresSource::PollRelations(pqxx::nontransaction& tx,
                                                         const std::string& horizon,
                                                         PostgresCursor& cursor, size_t limit) {
  const std::string limit_text = std::to_string(limit);
  std::vector<Event> events;
  const auto emit = [&](std::string id) {
    Event& event = events.emplace_back();
    event.op = Op::kRefetch;
    event.id = std::move(id);
  };
  for (size_t relation_idx = 0; relation_idx < options_.relations.size(); ++relation_idx) {
    const PostgresRelationOptions& relation = options_.relations[relation_idx];
    const RelationSql& sql = relation_sql_[relation_idx];
    PostgresRelationCursor& position = cursor.relations[relation.table];
    const bool at_start = position.rows.size() == 1;

    // Deleted rows (link tables): each names a document.
    if (relation.tombstones) {
      const bool tomb_start = position.tombstones.size() == 1;
      const pqxx::result tombstones =
          position.tombstones.empty() ? tx.exec_params(sql.tombstones_first, horizon, limit_text)
          : tomb_start
              ? tx.exec_params(sql.tombstones_start, horizon, limit_text, position.tombstones[0])
              : tx.exec_params(sql.tombstones_next, horizon, limit_text, position.tombstones[0],
                               position.tombstones[1]);
      for (const pqxx::row& row : tombstones) {
        position.tombstones = {row[0].c_str(), row[1].is_null() ? "" : row[1].c_str()};
        if (row[1].is_null() || row[1].size() == 0) continue;
        emit(std::string(row[1].c_str(), row[1].size()));
        events.back().position.token = EncodePostgresCursor(cursor);
      }
      if (!events.empty()) return events;
    }

    std::vector<std::string> keys;  // of the rows being fanned out (`documents`)
    if (position.upto.empty()) {
      // The next page of changed rows.
      const pqxx::result rows =
          position.rows.empty() ? tx.exec_params(sql.rows_first, horizon, limit_text)
          : at_start ? tx.exec_params(sql.rows_start, horizon, limit_text, position.rows[0])
                     : tx.exec_params(sql.rows_next, horizon, limit_text,
                                      pqxx::prepare::make_dynamic_params(position.rows));
      if (rows.empty()) continue;
      const size_t parts = 1 + relation.primary_key.size();
      std::vector<std::string> row_cursor;
      for (const pqxx::row& row : rows) {
        row_cursor.clear();
        for (size_t part_idx = 0; part_idx < parts; ++part_idx) {
          const pqxx::field field = row[static_cast<pqxx::row_size_type>(part_idx)];
          row_cursor.emplace_back(field.is_null() ? "" : std::string(field.c_str(), field.size()));
        }
        if (!relation.document_key.empty()) {
          position.rows = row_cursor;
          const pqxx::field key = row[static_cast<pqxx::row_size_type>(parts)];
          if (key.is_null() || key.size() == 0) continue;
          emit(std::string(key.c_str(), key.size()));
          events.back().position.token = EncodePostgresCursor(cursor);
        } else {
          keys.push_back(row_cursor[1]);
        }
      }
      if (!relation.document_key.empty()) {
        if (!events.empty()) return events;
        continue;  // rows without a document: the cursor moved past them
      }
      position.upto = row_cursor;
      position.after.clear();
    } else {
      // Resuming a fan-out: the same rows, as the checkpoint bounds them.
      const std::string fanout_limit = std::to_string(options_.page_size);
      std::vector<std::string> params = {fanout_limit};
      params.insert(params.end(), position.rows.begin(), position.rows.end());
      params.insert(params.end(), position.upto.begin(), position.upto.end());
      const pqxx::result rows =
          tx.exec_params(at_start ? sql.fanout_rows_start : sql.fanout_rows_next,
                         pqxx::prepare::make_dynamic_params(params));
      for (const pqxx::row& row : rows) keys.emplace_back(row[1].c_str(), row[1].size());
    }

    // One page of the documents the rows touch, by id.
    const std::string key_array = ArrayLiteral(keys);
    const pqxx::result documents =
        position.after.empty()
            ? tx.exec_params(sql.documents_first, key_array, limit_text)
            : tx.exec_params(sql.documents_next, key_array, limit_text, position.after[0]);
    for (const pqxx::row& row : documents) {
      std::string id(row[0].c_str(), row[0].size());
      position.after = {id};
      emit(std::move(id));
      events.back().position.token = EncodePostgresCursor(cursor);
    }
    if (documents.size() < limit) {
      // The fan-out is complete: the relation's cursor moves past its rows with the last event.
      position.rows = position.upto;
      position.upto.clear();
      position.after.clear();
      if (!events.empty()) events.back().position.token = EncodePostgresCursor(cursor);
    }
    if (!events.empty()) return events;
  }
  return events;
}

void PostgresSource::ResolveZones(pqxx::nontransaction& tx) {
  const auto check_zone = [&](const std::string& zone, const std::string& key) {
    if (zone.empty()) return;
    try {
      tx.exec_params("SELECT now() AT TIME ZONE $1", zone);
    } catch (const pqxx::sql_error& error) {
      if (error.sqlstate() != "22023") throw;
      throw ConfigProblem(key + ": the server knows no time zone " + JsonString(zone) +
                          "; use an IANA name such as UTC or Europe/Berlin (see "
                          "pg_timezone_names)");
    }
  };
  check_zone(options_.updated_at_time_zone, "updated_at_time_zone");
  const std::string tomb_zone =
      options_.tombstones ? options_.tombstones->deleted_at_time_zone : std::string();
  check_zone(tomb_zone, "deletes.tombstone_table.deleted_at_time_zone");
  values_zone_ =
      options_.updated_at_time_zone.empty() ? server_zone_ : options_.updated_at_time_zone;
  rows_zone_ = updated_at_is_timestamp_ ? values_zone_ : "";
  tombstones_zone_ = !deleted_at_is_timestamp_ ? "" : tomb_zone.empty() ? server_zone_ : tomb_zone;
  // Whether a zone's clocks change this year: January and July have different UTC offsets.
  const auto observes_dst = [&](const std::string& zone) {
    if (zone.empty()) return false;
    static constexpr char kSql[] =
        "SELECT (j AT TIME ZONE 'UTC') - (j AT TIME ZONE $1) <> (j2 AT TIME ZONE 'UTC') - "
        "       (j2 AT TIME ZONE $1)"
        "  FROM (SELECT date_trunc('year', now() AT TIME ZONE 'UTC') AS j) AS year,"
        "  LATERAL (SELECT j + interval '6 months' AS j2) AS july";
    return std::string_view(tx.exec_params1(kSql, zone)[0].c_str()) == "t";
  };
  rows_zone_has_dst_ = observes_dst(rows_zone_);
  tombstones_zone_has_dst_ = observes_dst(tombstones_zone_);
}

void PostgresSource::LogZones() const {
  const auto describe = [&](const std::string& key, const std::string& column,
                            const std::string& zone, bool configured, bool has_dst) {
    Log(LogLevel::kInfo, component_,
        key + " column " + QuoteIdent(column) + " is a timestamp without time zone; its values " +
            "are read as " + zone + " time" +
            (configured ? " (" + key + "_time_zone)"
                        : " (the server's TimeZone, which now() writes; set " + key +
                              "_time_zone if the application writes another zone)"));
    if (has_dst) {
      Log(LogLevel::kWarn, component_,
          key + " column " + QuoteIdent(column) + ": " + zone +
              " observes daylight saving time, so its wall clock repeats an hour each autumn "
              "and a row written in that hour can sort before rows already synced and be missed. "
              "Fix: make the column timestamptz (ALTER TABLE ... ALTER COLUMN " +
              QuoteIdent(column) + " TYPE timestamptz USING " + QuoteIdent(column) +
              " AT TIME ZONE '" + zone + "'), or write it in UTC");
    }
  };
  if (!rows_zone_.empty()) {
    describe("updated_at", options_.updated_at, rows_zone_, !options_.updated_at_time_zone.empty(),
             rows_zone_has_dst_);
  }
  if (!tombstones_zone_.empty()) {
    describe("deleted_at", options_.tombstones->deleted_at_column, tombstones_zone_,
             !options_.tombstones->deleted_at_time_zone.empty(), tombstones_zone_has_dst_);
  }
}

// A plan node that sorts by `column`: the page query has no index to read in order.
bool PlanSortsBy(simdjson::dom::element node, std::string_view column) {
  std::string_view type;
  if (node["Node Type"].get_string().get(type) == simdjson::SUCCESS && type == "Sort") {
    simdjson::dom::array keys;
    if (node["Sort Key"].get_array().get(keys) == simdjson::SUCCESS) {
      for (const simdjson::dom::element key : keys) {
        std::string_view text;
        if (key.get_string().get(text) == simdjson::SUCCESS &&
            text.find(column) != std::string_view::npos) {
          return true;
        }
      }
    }
  }
  simdjson::dom::array children;
  if (node["Plans"].get_array().get(children) == simdjson::SUCCESS) {
    for (const simdjson::dom::element child : children) {
      if (PlanSortsBy(child, column)) return true;
    }
  }
  return false;
}

void PostgresSource::CheckIndexes() {
  try {
    CheckIndexesOrThrow();
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception& error) {
    // Advice only: a plan the role may not ask for must not stop the sync.
    Log(LogLevel::kWarn, component_,
        "could not check the indexes: " + RedactSecrets(MessageLine(error.what(), true), secrets_));
  }
}

void PostgresSource::CheckIndexesOrThrow() {
  // The planner's own answer: with sorts and sequential scans priced out, a plan that still
  // sorts by the timestamp has no index to read the pages in order, whatever the table's size.
  pqxx::work tx(*connection_);
  tx.exec("SET LOCAL enable_sort = off; SET LOCAL enable_seqscan = off");
  simdjson::dom::parser parser;
  const auto sorts = [&](const std::string& sql, const std::string& column) {
    const pqxx::row plan = tx.exec_params1("EXPLAIN (FORMAT JSON) " + sql, "infinity",
                                           std::to_string(options_.page_size));
    simdjson::dom::element root;
    if (parser.parse(std::string(plan[0].c_str())).get(root) != simdjson::SUCCESS) return false;
    simdjson::dom::array plans;
    if (root.get_array().get(plans) != simdjson::SUCCESS) return false;
    for (const simdjson::dom::element entry : plans) {
      simdjson::dom::element top;
      if (entry["Plan"].get(top) == simdjson::SUCCESS && PlanSortsBy(top, column)) return true;
    }
    return false;
  };
  // CREATE INDEX only for something that can have one (not a view or a query).
  const auto create_index = [&](const std::string& table,
                                const std::vector<std::string>& columns) -> std::string {
    const pqxx::row kind = tx.exec_params1(
        "SELECT (SELECT c.relkind FROM pg_class AS c WHERE c.oid = to_regclass($1))",
        QuotePostgresName(table));
    const std::string_view relkind = kind[0].is_null() ? "" : kind[0].c_str();
    if (relkind != "r" && relkind != "p" && relkind != "m") return "";
    std::string statement = "CREATE INDEX CONCURRENTLY ON " + QuotePostgresName(table) + " (";
    for (size_t column_idx = 0; column_idx < columns.size(); ++column_idx) {
      if (column_idx > 0) statement += ", ";
      statement += QuoteIdent(columns[column_idx]);
    }
    return statement + ");";
  };
  if (sorts(rows_first_sql_, options_.updated_at)) {
    std::vector<std::string> columns = {options_.updated_at};
    columns.insert(columns.end(), options_.primary_key.begin(), options_.primary_key.end());
    const std::string fix = options_.table.empty() ? "" : create_index(options_.table, columns);
    std::string order = options_.updated_at;
    for (const std::string& column : options_.primary_key) order += ", " + column;
    Log(LogLevel::kWarn, component_,
        "no index serves ORDER BY " + order + ", so every page sorts the whole " +
            (options_.table.empty() ? std::string("query result") : "table") +
            " (slow on a large table). " +
            (fix.empty() ? "Fix: index the underlying table's (updated_at, key) columns"
                         : "Fix: " + fix));
  }
  if (options_.tombstones && sorts(tombstones_first_sql_, options_.tombstones->deleted_at_column)) {
    const PostgresTombstoneOptions& tomb = *options_.tombstones;
    const std::string fix = create_index(tomb.table, {tomb.deleted_at_column, tomb.id_column});
    Log(LogLevel::kWarn, component_,
        "deletes.tombstone_table " + tomb.table + ": no index serves ORDER BY " +
            tomb.deleted_at_column + ", " + tomb.id_column +
            ", so every poll sorts the whole tombstone table. Fix: " +
            (fix.empty() ? "index (" + tomb.deleted_at_column + ", " + tomb.id_column + ")" : fix));
  }
  if (!options_.relations.empty()) CheckRelationPlans(tx, parser);
}

void PostgresSource::WarnRowsAhead(pqxx::nontransaction& tx) {
  const auto steady_now = std::chrono::steady_clock::now();
  if (last_ahead_check_ != std::chrono::steady_clock::time_point{} &&
      steady_now - last_ahead_check_ < kStallWarnInterval) {
    return;
  }
  last_ahead_check_ = steady_now;
  const pqxx::row row = tx.exec1(ahead_sql_);
  const uint64_t count = row[0].as<uint64_t>();
  if (count == 0) return;
  char furthest[32] = "infinity";  // nothing but 'infinity'
  if (!row[1].is_null()) std::snprintf(furthest, sizeof(furthest), "%.1fs", row[1].as<double>());
  Log(LogLevel::kWarn, component_,
      std::to_string(count) +
          " row(s) have updated_at ahead of the database clock, the furthest by " + furthest +
          "; they are held until the clock reaches them. Their writers' clocks run ahead of the "
          "database's" +
          (rows_zone_.empty() ? std::string()
                              : ", or they write another zone than " + rows_zone_ +
                                    " (see updated_at_time_zone)"));
}

void PostgresSource::CheckPrivileges(pqxx::nontransaction& tx) {
  const pqxx::row row = tx.exec1("SELECT pg_has_role('pg_read_all_stats', 'USAGE'), current_user");
  if (std::string_view(row[0].c_str()) == "t") return;
  Log(LogLevel::kWarn, component_,
      "role " + std::string(row[1].c_str()) +
          " cannot see when other roles' transactions started (pg_stat_activity.xact_start); "
          "a late commit by another role may then be missed. Fix: GRANT pg_read_all_stats TO " +
          QuoteIdent(row[1].c_str()));
}

std::string PostgresSource::ReadHorizon(pqxx::nontransaction& tx) {
  static constexpr char kSql[] =
      "SELECT (EXTRACT(EPOCH FROM now()) * 1000000)::int8,"
      "       b.pid, (EXTRACT(EPOCH FROM b.xact_start) * 1000000)::int8, b.xact_start::text,"
      "       b.state,"
      "       (SELECT string_agg(h.pid::text, ',') FROM pg_stat_activity AS h"
      "         WHERE h.backend_type IS NULL AND h.usesysid IS NOT NULL"
      "           AND h.datname = current_database() AND h.pid <> pg_backend_pid()"
      "           AND (h.backend_xid IS NOT NULL OR h.backend_xmin IS NOT NULL))"
      "  FROM (SELECT 1) AS one"
      "  LEFT JOIN LATERAL ("
      "    SELECT a.pid, a.xact_start, a.state FROM pg_stat_activity AS a"
      "     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
      "       AND a.datname = current_database() AND a.xact_start IS NOT NULL"
      "     ORDER BY a.xact_start LIMIT 1) AS b ON true";
  const pqxx::row row = tx.exec1(kSql);
  const int64_t now = row[0].as<int64_t>();
  int64_t bound = now;
  if (!row[2].is_null()) bound = std::min(bound, row[2].as<int64_t>());

  // Sessions of other roles (backend_type is hidden too) that hold an xid or a snapshot.
  std::map<int, int64_t> hidden;
  if (!row[5].is_null()) {
    const std::string_view pids = row[5].c_str();
    size_t start = 0;
    while (start < pids.size()) {
      size_t comma = pids.find(',', start);
      if (comma == std::string_view::npos) comma = pids.size();
      const int pid = std::atoi(std::string(pids.substr(start, comma - start)).c_str());
      const auto known = hidden_since_micros_.find(pid);
      hidden[pid] =
          known != hidden_since_micros_.end() ? known->second : previous_now_micros_.value_or(now);
      start = comma + 1;
    }
  }
  hidden_since_micros_ = std::move(hidden);
  previous_now_micros_ = now;
  std::optional<std::pair<int, int64_t>> oldest_hidden;
  for (const auto& [pid, since] : hidden_since_micros_) {
    if (!oldest_hidden || since < oldest_hidden->second) oldest_hidden = {pid, since};
  }
  if (oldest_hidden) bound = std::min(bound, oldest_hidden->second);

  const auto held_back = std::chrono::microseconds(now - bound);
  const auto steady_now = std::chrono::steady_clock::now();
  if (held_back >= kStallWarnAfter &&
      (last_stall_warning_ == std::chrono::steady_clock::time_point{} ||
       steady_now - last_stall_warning_ >= kStallWarnInterval)) {
    last_stall_warning_ = steady_now;
    const long long seconds = std::chrono::duration_cast<std::chrono::seconds>(held_back).count();
    std::string message;
    if (oldest_hidden && oldest_hidden->second == bound) {
      message = "sync held back " + std::to_string(seconds) +
                "s by pid=" + std::to_string(oldest_hidden->first) +
                ", a session of another role in a transaction since at least " +
                FormatUtcMicros(oldest_hidden->second) +
                " (its xact_start is hidden from this role; GRANT pg_read_all_stats)";
    } else {
      message = "sync held back " + std::to_string(seconds) + "s by pid=" + row[1].c_str() +
                " xact_start=" + row[3].c_str() +
                " state=" + (row[4].is_null() ? "unknown" : row[4].c_str()) +
                ": rows changed after that time are synced only when that transaction ends";
      if (!row[4].is_null() && std::string_view(row[4].c_str()).starts_with("idle in")) {
        message +=
            "; an idle-in-transaction session stalls sync (end it, or set "
            "idle_in_transaction_session_timeout)";
      }
    }
    Log(LogLevel::kWarn, component_, message);
  }
  const int64_t margin =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.commit_margin).count();
  last_now_micros_ = now;
  last_horizon_micros_ = bound - margin;
  return FormatUtcMicros(bound - margin);
}

void PostgresSource::ResolveTypes(pqxx::nontransaction& tx, const pqxx::result& result) {
  std::set<uint32_t> wanted;
  const auto want = [&](uint32_t type_oid) {
    if (type_oid != 0 && !KnownKind(type_oid) && KnownArrayElement(type_oid) == 0 &&
        !types_.contains(type_oid)) {
      wanted.insert(type_oid);
    }
  };
  for (pqxx::row_size_type column = 0; column < result.columns(); ++column) {
    want(result.column_type(column));
  }
  for (int round = 0; round < kTypeLookupRounds && !wanted.empty(); ++round) {
    std::string list = "{";
    for (const uint32_t type_oid : wanted) {
      if (list.size() > 1) list.push_back(',');
      list += std::to_string(type_oid);
    }
    list.push_back('}');
    const pqxx::result types = tx.exec_params(
        "SELECT oid::int8, typtype, typbasetype::int8, typelem::int8,"
        "       typcategory = 'A' AND typdelim = ','"
        "  FROM pg_type WHERE oid = ANY($1::oid[])",
        list);
    for (const uint32_t type_oid : wanted) types_[type_oid] = TypeInfo{};  // even if not found
    wanted.clear();
    for (const pqxx::row& type : types) {
      TypeInfo& info = types_[static_cast<uint32_t>(type[0].as<int64_t>())];
      info.type_type = type[1].c_str()[0];
      info.base = static_cast<uint32_t>(type[2].as<int64_t>());
      info.element = static_cast<uint32_t>(type[3].as<int64_t>());
      info.is_array = std::string_view(type[4].c_str()) == "t" && info.element != 0;
      if (info.type_type == 'd') want(info.base);
      if (info.is_array) want(info.element);
    }
  }
}

void PostgresSource::ConvertTimestamps(pqxx::nontransaction& tx, const pqxx::result& rows,
                                       const std::vector<Codec>& codecs) {
  utc_timestamps_.clear();
  if (IsUtcZone(values_zone_)) return;
  std::set<std::string> values;
  std::vector<std::string> elements;
  std::string ignored;
  for (pqxx::row_size_type column = static_cast<pqxx::row_size_type>(key_columns_);
       column < rows.columns(); ++column) {
    if (codecs[column].kind != ValueKind::kTimestamp) continue;
    for (const pqxx::row& row : rows) {
      const pqxx::field field = row[column];
      if (field.is_null()) continue;
      if (!codecs[column].array) {
        values.emplace(field.c_str(), field.size());
        continue;
      }
      elements.clear();
      ArrayLiteralParser(std::string_view(field.c_str(), field.size()), ValueKind::kString, nullptr,
                         &elements)
          .Parse(ignored);
      values.insert(elements.begin(), elements.end());
    }
  }
  if (values.empty()) return;
  // The server converts: it knows the zone's rules, exactly as it compares the cursor.
  const pqxx::result converted =
      tx.exec_params("SELECT v, (v::timestamp AT TIME ZONE $2)::text FROM unnest($1::text[]) AS v",
                     ArrayLiteral(values), values_zone_);
  for (const pqxx::row& row : converted) {
    utc_timestamps_.emplace(row[0].c_str(), row[1].c_str());
  }
}

uint32_t PostgresSource::BaseType(uint32_t type_oid) const {
  for (int depth = 0; depth < kTypeLookupRounds; ++depth) {
    const auto found = types_.find(type_oid);
    if (found == types_.end() || found->second.type_type != 'd') break;
    type_oid = found->second.base;
  }
  return type_oid;
}

Codec PostgresSource::CodecFor(uint32_t type_oid) const {
  type_oid = BaseType(type_oid);
  if (const uint32_t element = KnownArrayElement(type_oid); element != 0) {
    return Codec{.array = true, .kind = KindOf(element)};
  }
  if (const auto found = types_.find(type_oid); found != types_.end() && found->second.is_array) {
    return Codec{.array = true, .kind = KindOf(BaseType(found->second.element))};
  }
  return Codec{.array = false, .kind = KindOf(type_oid)};
}

Status PostgresSource::RowToEvent(const pqxx::row& row, const std::vector<Codec>& codecs,
                                  Event& event, std::vector<std::string>& row_cursor) const {
  // Assigned in place: the strings of the previous row's cursor are reused.
  row_cursor.resize(1 + options_.primary_key.size());
  row_cursor[0].assign(row[1].is_null() ? "" : row[1].c_str());
  const auto updated_at = [&] { return row[1].is_null() ? std::string("NULL") : row_cursor[0]; };
  for (size_t pk_idx = 0; pk_idx < options_.primary_key.size(); ++pk_idx) {
    const pqxx::field key = row[static_cast<pqxx::row_size_type>(2 + pk_idx)];
    if (key.is_null()) {
      return InvalidArgument(
          context_ + ": primary key column " + QuoteIdent(options_.primary_key[pk_idx]) +
          " is NULL in a row with updated_at=" + updated_at() + "; key columns must never be NULL");
    }
    row_cursor[1 + pk_idx].assign(key.c_str(), key.size());
  }
  if (options_.primary_key.size() == 1) {
    event.id = row_cursor[1];
  } else {
    event.id = JoinKeyParts(std::span(row_cursor).subspan(1));
  }
  if (event.id.empty()) {
    return InvalidArgument(context_ + ": empty primary key in a row with updated_at=" +
                           updated_at() + "; a document id cannot be empty");
  }
  if (!options_.soft_delete_column.empty()) {
    const pqxx::field flag = row[static_cast<pqxx::row_size_type>(key_columns_ - 1)];
    const bool deleted = BaseType(flag.type()) == oid::kBool
                             ? !flag.is_null() && std::string_view(flag.c_str()) == "t"
                             : !flag.is_null();
    if (deleted) {
      event.op = Op::kDelete;
      return Status::Ok();
    }
  }
  event.op = Op::kUpsert;
  const pqxx::result::size_type columns = row.size();
  event.document.reserve(columns - key_columns_);
  const UtcTimestamps* utc = IsUtcZone(values_zone_) ? nullptr : &utc_timestamps_;
  for (pqxx::row_size_type column = static_cast<pqxx::row_size_type>(key_columns_);
       column < columns; ++column) {
    const pqxx::field field = row[column];
    const char* name = field.name();
    if (!options_.soft_delete_column.empty() && options_.soft_delete_column == name) continue;
    Field& out = event.document.emplace_back();
    out.name = name;
    if (field.is_null()) {
      out.json = "null";
      continue;
    }
    const std::string_view text(field.c_str(), field.size());
    const Codec& codec = codecs[column];
    if (!codec.array) {
      AppendValueJson(out.json, codec.kind, text, utc);
    } else if (!ArrayLiteralParser(text, codec.kind, utc).Parse(out.json)) {
      out.json.clear();
      AppendJsonString(out.json, text);
    }
  }
  return Status::Ok();
}

Result<std::vector<Event>> PostgresSource::Merge(const pqxx::result& rows,
                                                 const std::vector<Codec>& codecs,
                                                 const pqxx::result& tombstones,
                                                 PostgresCursor cursor, size_t limit,
                                                 size_t max_events) {
  // A full page may continue past its last timestamp; the next page could hold an event that
  // sorts before something in the other stream. So a full row page bounds the tombstones
  // (deleted_at <= its last updated_at: a tombstone goes first on a tie), and a full tombstone
  // page bounds the rows (updated_at < its last deleted_at).
  //
  //   rows:       r1 r2 r3 | (next page: >= r3)       tombstones: t1 t2 | (next page)
  //   emitted:    every ri with ts < ts(t_last) if the tombstone page is full, and
  //               every tj with ts <= ts(r_last) if the row page is full, in timestamp order.
  constexpr int64_t kNoBound = std::numeric_limits<int64_t>::max();
  const int64_t row_bound = tombstones.size() == limit && limit > 0
                                ? tombstones.back()[0].as<int64_t>()
                                : kNoBound;  // rows must be < row_bound
  const int64_t tomb_bound = rows.size() == limit && limit > 0
                                 ? rows.back()[0].as<int64_t>()
                                 : kNoBound;  // tombstones must be <= tomb_bound
  std::vector<Event> events;
  events.reserve(std::min(max_events, rows.size() + tombstones.size()));
  size_t row_idx = 0;
  size_t tomb_idx = 0;
  while (events.size() < max_events) {
    const bool row_ready = row_idx < rows.size() &&
                           (row_bound == kNoBound || rows[row_idx][0].as<int64_t>() < row_bound);
    const bool tomb_ready =
        tomb_idx < tombstones.size() && tombstones[tomb_idx][0].as<int64_t>() <= tomb_bound;
    if (!row_ready && !tomb_ready) break;
    const bool take_tomb = tomb_ready && (!row_ready || tombstones[tomb_idx][0].as<int64_t>() <=
                                                            rows[row_idx][0].as<int64_t>());
    Event& event = events.emplace_back();
    if (take_tomb) {
      const pqxx::row tomb = tombstones[tomb_idx++];
      if (tomb[2].is_null() || tomb[2].size() == 0) {
        return InvalidArgument(context_ + ": deletes.tombstone_table " +
                               options_.tombstones->table + " has a row with an empty id (" +
                               options_.tombstones->deleted_at_column + "=" + tomb[1].c_str() +
                               ")");
      }
      event.op = Op::kDelete;
      event.id.assign(tomb[2].c_str(), tomb[2].size());
      cursor.tombstones = {tomb[1].c_str(), event.id};
    } else {
      const pqxx::row row = rows[row_idx++];
      if (Status status = RowToEvent(row, codecs, event, cursor.rows); !status.ok()) {
        return status;
      }
      cursor.rows_updated_at_null = row[1].is_null();
    }
    event.position.token = EncodePostgresCursor(cursor);
  }
  return events;
}

Result<std::vector<Event>> PostgresSource::Poll(const Checkpoint& from, size_t max_events) {
  if (!full_read_) {
    if (options_.notify_channel.empty()) return PollPage(from, max_events);
    // Caught up at `from` last time: wait for a notification (or the fallback) before reading.
    if (caught_up_at_ == from.token && !WaitForWake()) return std::vector<Event>{};
    Result<std::vector<Event>> page = PollPage(from, max_events);
    last_poll_ = std::chrono::steady_clock::now();
    if (!page.ok()) {
      caught_up_at_.reset();
      return page;
    }
    // Rows the horizon holds back (commit_margin, another open transaction) send no
    // notification when they become readable: poll again soon until the horizon passes the
    // database time of the first poll after a notification.
    if (notified_) {
      wake_target_micros_ = std::max(wake_target_micros_.value_or(0), last_now_micros_);
      notified_ = false;
    }
    if (wake_target_micros_ && last_horizon_micros_ > *wake_target_micros_) {
      wake_target_micros_.reset();
    }
    if (page->empty()) {
      caught_up_at_ = from.token;
    } else {
      caught_up_at_.reset();
    }
    return page;
  }
  // A full read gives upserts only: soft-deleted rows are skipped (a delete from the full read
  // could erase a row the live stream re-created). A page of nothing but deleted rows is not
  // the end, so read on; the last upsert carries the position after the skipped tail.
  Checkpoint position = from;
  for (;;) {
    Result<std::vector<Event>> page = PollPage(position, max_events);
    if (!page.ok() || page->empty()) return page;
    position = page->back().position;
    std::erase_if(*page, [](const Event& event) { return event.op == Op::kDelete; });
    if (!page->empty()) {
      page->back().position = std::move(position);
      return page;
    }
  }
}

bool PostgresSource::Listen() {
  listener_.reset();
  const std::string dsn = DsnNamed(options_.dsn.value(), "searchsync-listen");
  try {
    auto connection = std::make_unique<pqxx::connection>(dsn);
    pqxx::nontransaction tx(*connection);
    tx.exec("LISTEN " + QuoteIdent(options_.notify_channel));
    listener_pid_ = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
    tx.commit();
    listener_ = std::move(connection);
    if (listen_failing_) {
      Log(LogLevel::kInfo, component_,
          "listening on notify_channel " + options_.notify_channel + " again");
    }
    listen_failing_ = false;
    return true;
  } catch (const std::exception& error) {
    if (!listen_failing_) {
      Log(LogLevel::kWarn, component_,
          "cannot LISTEN on notify_channel " + options_.notify_channel + ": " +
              RedactSecrets(MessageLine(error.what(), false), secrets_) +
              "; polling every poll_interval meanwhile, retrying");
    }
    listen_failing_ = true;
    next_listen_attempt_ = std::chrono::steady_clock::now() + kListenRetry;
    return false;
  }
}

bool PostgresSource::WaitForWake() {
  using std::chrono::steady_clock;
  // A poll follows every (re)connection of the listener: what committed while nobody listened
  // sent its notification to no one.
  if (listener_ == nullptr && steady_clock::now() >= next_listen_attempt_ && Listen()) return true;
  steady_clock::time_point due = last_poll_ + options_.poll_interval;
  if (wake_target_micros_) due = std::min(due, last_poll_ + kHeldBackRepoll);
  const steady_clock::time_point now = steady_clock::now();
  if (now >= due) {
    // The fallback poll; it also finds a listener that died silently (no FIN, no error).
    if (listener_ != nullptr) {
      try {
        pqxx::nontransaction ping(*listener_);
        // Another backend means the library reconnected under us, without our LISTEN.
        const bool same = ping.exec1("SELECT pg_backend_pid()")[0].as<int>() == listener_pid_;
        ping.commit();
        listener_->get_notifs();  // drop what the ping read: this poll covers it
        if (!same) Listen();
      } catch (const std::exception&) {
        listener_.reset();
      }
    }
    return true;
  }
  const auto wait = std::min<steady_clock::duration>(due - now, kWakeSlice);
  const int wait_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
  if (listener_ == nullptr) {
    std::this_thread::sleep_for(wait);
    return steady_clock::now() >= due;
  }
  pollfd entry{.fd = listener_->sock(), .events = POLLIN, .revents = 0};
  if (::poll(&entry, 1, wait_ms) <= 0) return steady_clock::now() >= due;
  try {
    const int notifications = listener_->get_notifs();
    if (!listener_->is_open()) throw pqxx::broken_connection("the server closed the connection");
    if (notifications == 0) return steady_clock::now() >= due;
  } catch (const std::exception& error) {
    Log(LogLevel::kWarn, component_,
        "lost the connection listening on notify_channel " + options_.notify_channel + " (" +
            RedactSecrets(MessageLine(error.what(), false), secrets_) +
            "); reconnecting, then polling");
    listener_.reset();
    Listen();
    return true;  // poll now either way: changes may have been missed meanwhile
  }
  notified_ = true;  // something committed: read now
  return true;
}

// The same table or query read by primary key from the beginning. Each page is its own
// snapshot, but a row keeps its key when it is updated, so it is read once however often the
// application changes it meanwhile (paging by updated_at would move every updated row ahead
// of the cursor and read it again, for ever on a busy table). A row the read passed before it
// changed, or one inserted behind the cursor, is the live stream's: every change committed
// after the shadow was attached reaches the new collection through it, and the create-only
// writes of the full read never overwrite what it wrote.
// The paging cursor stays in here: it is never a checkpoint of the pipeline.
class PostgresFullRead final : public FullRead {
 public:
  explicit PostgresFullRead(PostgresOptions options) : reader_(std::move(options), true) {}

  Result<std::vector<Event>> Next(size_t max_events) override {
    for (;;) {
      Result<std::vector<Event>> page = reader_.Poll(cursor_, max_events);
      if (!page.ok() || page->empty()) return page;
      cursor_ = page->back().position;
      // Soft-deleted rows are gone: not part of a full read. A page of them only reads on.
      std::erase_if(*page, [](const Event& event) { return event.op != Op::kUpsert; });
      if (!page->empty()) return page;
    }
  }
  Result<std::optional<uint64_t>> CountAll() override { return reader_.CountAll(); }

 private:
  PostgresSource reader_;
  Checkpoint cursor_;  // after the last row given
};

Result<std::unique_ptr<FullRead>> PostgresSource::OpenFullRead() {
  PostgresOptions options = options_;
  options.tombstones.reset();
  options.relations.clear();
  options.log_component += " full_read";
  return std::unique_ptr<FullRead>(std::make_unique<PostgresFullRead>(std::move(options)));
}

Result<std::optional<uint64_t>> PostgresSource::CountAll() {
  if (Status status = EnsureConnected(); !status.ok()) return status;
  try {
    pqxx::nontransaction tx(*connection_);
    const std::string horizon = ReadHorizon(tx);
    const pqxx::row row = tx.exec_params1(count_sql_, horizon);
    return std::optional<uint64_t>(row[0].as<uint64_t>());
  } catch (const std::exception& error) {
    return Failure(error, context_ + " count");
  }
}

Result<std::vector<Event>> PostgresSource::PollPage(const Checkpoint& from, size_t max_events) {
  if (max_events == 0) return std::vector<Event>{};
  Result<PostgresCursor> cursor = DecodePostgresCursor(
      !advanced_from_.empty() && advanced_from_ == from.token ? advanced_to_ : from.token);
  if (!cursor.ok()) return cursor.status();
  const bool past_nulls = cursor->rows_updated_at_null && cursor->rows.size() == 1;
  if (!cursor->rows.empty() && !past_nulls &&
      cursor->rows.size() != 1 + options_.primary_key.size()) {
    return InvalidArgument(
        context_ + ": the checkpoint holds a key of " + std::to_string(cursor->rows.size() - 1) +
        " column(s) but primary_key has " + std::to_string(options_.primary_key.size()) +
        "; after changing primary_key, reindex");
  }
  if (!cursor->tombstones.empty() && cursor->tombstones.size() != 2) {
    return InvalidArgument(context_ + ": the checkpoint's tombstone cursor is malformed");
  }
  reached_end_ = false;
  if (Status status = EnsureConnected(); !status.ok()) return status;

  const size_t limit = std::min(options_.page_size, max_events);
  const std::string limit_text = std::to_string(limit);
  std::string_view step = "rows";
  try {
    pqxx::nontransaction tx(*connection_);
    const bool relations = !full_read_ && !options_.relations.empty();
    if (relations) {
      step = "relations";
      StartRelations(tx, *cursor);
      step = "rows";
    }
    const auto to_events = [&](const pqxx::result& rows, const pqxx::result& tombstones) {
      ResolveTypes(tx, rows);
      std::vector<Codec> codecs;
      for (pqxx::row_size_type column = 0; column < rows.columns(); ++column) {
        codecs.push_back(CodecFor(rows.column_type(column)));
      }
      ConvertTimestamps(tx, rows, codecs);
      return Merge(rows, codecs, tombstones, *cursor, limit, max_events);
    };
    if (full_read_) {
      const pqxx::result rows =
          cursor->rows.empty() ? tx.exec_params(rows_first_sql_, limit_text)
                               : tx.exec_params(rows_next_sql_, limit_text,
                                                pqxx::prepare::make_dynamic_params(
                                                    cursor->rows.begin() + 1, cursor->rows.end()));
      return to_events(rows, pqxx::result());
    }
    // Rows whose updated_at is NULL are older than every timestamp: they come first, by key,
    // without tombstones (a tombstone is newer than every one of them).
    if (cursor->rows.empty() || (cursor->rows_updated_at_null && !past_nulls)) {
      const pqxx::result nulls =
          cursor->rows.empty() ? tx.exec_params(nulls_first_sql_, limit_text)
                               : tx.exec_params(nulls_next_sql_, limit_text,
                                                pqxx::prepare::make_dynamic_params(
                                                    cursor->rows.begin() + 1, cursor->rows.end()));
      if (!nulls.empty()) return to_events(nulls, pqxx::result());
      cursor->rows = {""};
      cursor->rows_updated_at_null = true;
    }
    // Three statements, each its own snapshot, in this order: the horizon first (see top).
    step = "horizon";
    const std::string horizon = ReadHorizon(tx);
    step = "rows";
    const pqxx::result rows =
        cursor->rows_updated_at_null
            ? tx.exec_params(rows_first_sql_, horizon, limit_text)
            : tx.exec_params(rows_next_sql_, horizon, limit_text,
                             pqxx::prepare::make_dynamic_params(cursor->rows));
    if (rows.size() < limit && !full_read_) WarnRowsAhead(tx);
    pqxx::result tombstones;
    if (options_.tombstones) {
      step = "tombstones";
      tombstones = cursor->tombstones.empty()
                       ? tx.exec_params(tombstones_first_sql_, horizon, limit_text)
                       : tx.exec_params(tombstones_next_sql_, horizon, limit_text,
                                        cursor->tombstones[0], cursor->tombstones[1]);
    }
    step = "rows";
    Result<std::vector<Event>> events = to_events(rows, tombstones);
    // Short pages, both given out whole: nothing below this horizon is left to read.
    reached_end_ = events.ok() && rows.size() < limit && tombstones.size() < limit &&
                   events->size() == rows.size() + tombstones.size();
    if (!relations || !events.ok() || !events->empty()) {
      if (relations) reached_end_ = false;  // the relations were not read: unknown
      return events;
    }
    // The main table is caught up: the related tables' changes.
    step = "relations";
    Result<std::vector<Event>> related = PollRelations(tx, horizon, *cursor, limit);
    reached_end_ = false;  // a relation's fan-out may go on: only an empty poll counts
    if (related.ok() && related->empty()) {
      advanced_from_ = from.token;
      advanced_to_ = EncodePostgresCursor(*cursor);
    }
    return related;
  } catch (const std::exception& error) {
    std::string where = context_;
    if (step == "relations") where += " relations";
    if (step == "tombstones") where += " deletes.tombstone_table=" + options_.tombstones->table;
    return Failure(error, where);
  }
}

Result<std::vector<Event>> PostgresSource::ReadDocuments(std::span<const std::string> ids) {
  if (options_.relations.empty()) return Source::ReadDocuments(ids);
  if (Status status = EnsureConnected(); !status.ok()) return status;
  try {
    pqxx::nontransaction tx(*connection_);
    const pqxx::result rows = tx.exec_params(reread_sql_, ArrayLiteral(ids));
    ResolveTypes(tx, rows);
    std::vector<Codec> codecs;
    for (pqxx::row_size_type column = 0; column < rows.columns(); ++column) {
      codecs.push_back(CodecFor(rows.column_type(column)));
    }
    ConvertTimestamps(tx, rows, codecs);
    std::vector<Event> documents;
    documents.reserve(rows.size());
    std::vector<std::string> row_cursor;
    for (const pqxx::row& row : rows) {
      Event event;
      if (Status status = RowToEvent(row, codecs, event, row_cursor); !status.ok()) return status;
      if (event.op == Op::kUpsert) documents.push_back(std::move(event));  // soft-deleted: gone
    }
    return documents;
  } catch (const std::exception& error) {
    return Failure(error, context_ + " re-reading changed documents");
  }
}

void PostgresSource::CheckRelationPlans(pqxx::work& tx, simdjson::dom::parser& parser) {
  // With sequential scans priced out, a scan that still compares `= ANY($1)` outside an index
  // (a Filter), or on an index whose leading column is another one, reads a whole table for
  // every chunk of keys: name the column and the index that serves it.
  const auto column_of = [](std::string_view condition) {
    // "(category_id = ANY ('{}'::integer[]))" -> category_id
    std::string_view column = condition.substr(0, condition.find(" = ANY"));
    while (!column.empty() && (column.front() == '(' || column.front() == ' ')) {
      column.remove_prefix(1);
    }
    if (const size_t dot = column.rfind('.'); dot != std::string_view::npos) {
      column.remove_prefix(dot + 1);
    }
    return std::string(column);
  };
  std::function<void(simdjson::dom::element, const std::string&)> warn_scans =
      [&](simdjson::dom::element node, const std::string& what) {
        std::string_view relation, filter, index_condition, index_name;
        const bool has_filter = node["Filter"].get_string().get(filter) == simdjson::SUCCESS &&
                                filter.find("= ANY") != std::string_view::npos;
        const bool has_index_condition =
            node["Index Cond"].get_string().get(index_condition) == simdjson::SUCCESS &&
            index_condition.find("= ANY") != std::string_view::npos;
        std::string column;
        if (has_index_condition &&
            node["Index Name"].get_string().get(index_name) == simdjson::SUCCESS) {
          const pqxx::row leading = tx.exec_params1(
              "SELECT (SELECT a.attname::text FROM pg_index AS i JOIN pg_attribute AS a"
              "          ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
              "         WHERE i.indexrelid = to_regclass($1))",
              QuoteIdent(index_name));
          column = column_of(index_condition);
          if (!leading[0].is_null() && column == leading[0].c_str()) column.clear();
        } else if (has_filter) {
          column = column_of(filter);
        }
        if (!column.empty() &&
            node["Relation Name"].get_string().get(relation) == simdjson::SUCCESS) {
          Log(LogLevel::kWarn, component_,
              what + " reads the whole table " + std::string(relation) + " (" +
                  std::string(has_index_condition ? index_condition : filter) +
                  ") for every chunk of changed keys. Fix: CREATE INDEX CONCURRENTLY ON " +
                  QuotePostgresName(relation) + " (" + QuoteIdent(column) + ");");
        }
        simdjson::dom::array children;
        if (node["Plans"].get_array().get(children) == simdjson::SUCCESS) {
          for (const simdjson::dom::element child : children) warn_scans(child, what);
        }
      };
  const auto explain = [&](const std::string& sql, const std::string& what) {
    const pqxx::row plan = tx.exec_params1("EXPLAIN (FORMAT JSON) " + sql, std::string("{}"));
    simdjson::dom::element root;
    if (parser.parse(std::string(plan[0].c_str())).get(root) != simdjson::SUCCESS) return;
    simdjson::dom::array plans;
    if (root.get_array().get(plans) != simdjson::SUCCESS) return;
    for (const simdjson::dom::element entry : plans) {
      simdjson::dom::element top;
      if (entry["Plan"].get(top) == simdjson::SUCCESS) warn_scans(top, what);
    }
  };
  explain(reread_sql_, "re-reading changed documents (the query restricted to their ids)");
  for (size_t relation_idx = 0; relation_idx < options_.relations.size(); ++relation_idx) {
    const PostgresRelationOptions& relation = options_.relations[relation_idx];
    if (relation.documents.empty()) continue;
    explain(relation.documents,
            "relations[" + std::to_string(relation_idx) + "] (" + relation.table + ") documents");
  }
}

Status PostgresSource::HealthCheck() {
  // EnsureConnected checks the columns, logs the zones and a missing pg_read_all_stats.
  startup_checked_ = false;
  connection_.reset();
  if (Status status = EnsureConnected(); !status.ok()) return status;
  try {
    pqxx::nontransaction tx(*connection_);
    // A full count: `check` only, never on the polling path.
    const uint64_t nulls = tx.exec1(null_count_sql_)[0].as<uint64_t>();
    if (nulls > 0) {
      Log(LogLevel::kWarn, component_,
          std::to_string(nulls) + " row(s) have updated_at " + QuoteIdent(options_.updated_at) +
              " NULL. They are synced as older than every timestamp, by the first sync and every "
              "reindex, but a later change to such a row is seen only once its updated_at is "
              "set. Fix: UPDATE ... SET " +
              QuoteIdent(options_.updated_at) + " = now() WHERE " +
              QuoteIdent(options_.updated_at) +
              " IS NULL, and a default or trigger that sets it on every write");
    }
  } catch (const std::exception& error) {
    return Failure(error, context_);
  }
  return Status::Ok();
}

}  // namespace

std::unique_ptr<Source> MakePostgresSource(PostgresOptions options) {
  return std::make_unique<PostgresSource>(std::move(options));
}

SourceFactory ParsePostgresSource(const Section& section, std::string_view pipeline) {
  const size_t errors_before = section.errors().all().size();
  PostgresOptions options = kPostgresKeyTable.Read(section);
  if (section.Has("dsn")) {
    if (Result<std::vector<std::string>> checked = CheckPostgresDsn(options.dsn.value());
        !checked.ok()) {
      section.Error("dsn", checked.status().message());
    }
  }
  if (section.Has("table") == section.Has("query")) {
    section.Error(section.Has("query") ? "query" : "table",
                  "set exactly one of 'table' or 'query'");
  } else if (section.Has("table") && options.table.empty()) {
    section.Error("table", "must name a table or view");
  } else if (section.Has("query") && options.query.empty()) {
    section.Error("query", "must be a SELECT statement");
  }
  if (section.Has("primary_key")) {
    if (options.primary_key.empty()) section.Error("primary_key", "list at least one column");
    for (const std::string& column : options.primary_key) {
      if (column.empty()) section.Error("primary_key", "column names cannot be empty");
    }
  }
  if (section.Has("updated_at") && options.updated_at.empty()) {
    section.Error("updated_at", "must name a timestamptz column");
  }
  if (section.Has("updated_at_time_zone") && options.updated_at_time_zone.empty()) {
    section.Error("updated_at_time_zone", "must name a time zone such as UTC");
  }
  if (options.page_size < 1) section.Error("page_size", "must be at least 1");
  if (section.Has("notify_channel") && options.notify_channel.empty()) {
    section.Error("notify_channel", "must name a channel, as the trigger's pg_notify does");
  }
  if (options.commit_margin.count() < 0) section.Error("commit_margin", "cannot be negative");
  if (section.Has("deletes")) {
    const Section deletes = section.Child("deletes", kDeletesKeys.specs());
    kDeletesKeys.Fill(deletes, options);
    if (deletes.Has("tombstone_table")) {
      const Section tomb = deletes.Child("tombstone_table", kTombstoneKeys.specs());
      options.tombstones = kTombstoneKeys.Read(tomb);
      if (tomb.Has("deleted_at_time_zone") && options.tombstones->deleted_at_time_zone.empty()) {
        tomb.Error("deleted_at_time_zone", "must name a time zone such as UTC");
      }
    }
    if (!deletes.Has("soft_delete_column") && !deletes.Has("tombstone_table")) {
      section.Error("deletes", "set soft_delete_column, tombstone_table, or both");
    }
  }
  if (section.Has("relations")) {
    const YAML::Node list = section.Node("relations");
    if (options.primary_key.size() > 1) {
      section.Error("relations", "needs a single-column primary_key (the document id)");
    }
    std::set<std::string> tables;
    for (size_t relation_idx = 0; list.IsSequence() && relation_idx < list.size(); ++relation_idx) {
      if (!list[relation_idx].IsMap()) continue;  // reported by the sequence check
      const Section item = section.Item("relations", relation_idx, kRelationKeys.specs());
      PostgresRelationOptions& relation = options.relations.emplace_back(kRelationKeys.Read(item));
      if (item.Has("table") && !tables.insert(relation.table).second) {
        item.Error("table", "names a table listed before; list each related table once");
      }
      if (item.Has("documents") == item.Has("document_key")) {
        item.Error(item.Has("documents") ? "documents" : "table",
                   "set exactly one of 'documents' (SQL returning document ids of $1, the "
                   "changed rows' keys) or 'document_key' (a column holding the document id)");
      } else if (item.Has("documents") && relation.documents.find("$1") == std::string::npos) {
        item.Error("documents",
                   "must use $1, the array of the changed rows' keys, e.g. "
                   "SELECT id FROM products WHERE category_id = ANY($1)");
      } else if (item.Has("documents") && relation.primary_key.size() != 1) {
        item.Error("documents",
                   "needs a single-column primary_key; for a composite key (a "
                   "link table) use document_key");
      }
      if (relation.primary_key.empty()) item.Error("primary_key", "list at least one column");
      if (item.Has("tombstone_table")) {
        const Section tomb = item.Child("tombstone_table", kTombstoneKeys.specs());
        relation.tombstones = kTombstoneKeys.Read(tomb);
      }
    }
  }
  options.log_component = "pipeline=" + std::string(pipeline) + " source=postgres " +
                          (options.table.empty() ? std::string("query") : "table=" + options.table);
  // Missing required keys were recorded when the section was read.
  if (section.errors().all().size() != errors_before || !section.Has("dsn") ||
      !section.Has("primary_key") || !section.Has("updated_at")) {
    return nullptr;
  }
  return [options = std::move(options)] { return MakePostgresSource(options); };
}

}  // namespace searchsync
