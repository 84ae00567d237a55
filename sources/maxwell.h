#pragma once
// The `maxwell` source: MySQL row changes as Maxwell's daemon publishes them to Kafka.
//
// A consumer in group `group_id` reads `topic` (librdkafka, enable.auto.commit=false). Each
// message of `database`.`table` becomes one event:
//   insert, update, bootstrap-insert -> kUpsert whose document is `data`, the full row, each
//                                       column's value copied as its raw JSON;
//   delete                           -> kDelete (`data` is the row's last image);
//   bootstrap-start/-complete, DDL (database-*/table-*), other databases and tables -> nothing
//   (several pipelines may share one topic).
// Event::id is the primary key: the columns named by `primary_key_columns` (Maxwell's
// output_primary_key_columns), else the configured `primary_key`, else the Kafka key (hash format
// {"database":..,"table":..,"pk.<col>":..} or array format ["db","table",[{"col":..}]]), each
// value's text read from `data` (or the key). Several columns are joined by '|' with '\' and '|'
// escaped by '\', as the postgres source does (JoinKeyParts): distinct keys, distinct ids.
//
// A message that cannot be turned into a change (not JSON, not an object, a field of the wrong
// type, no primary key, a `_uuid` key) becomes an event with Event::dead_letter_reason set:
// the pipeline stores it in the dead-letter store (id "<topic>/<partition>/<offset>", the raw
// message in the document) and its offset is committed like any other.
//
// Offsets and checkpoints:
//
//   partition 0:  m0 m1 m2 ...      the source keeps next_offset per partition, updated per
//   partition 3:  m0 m1 ...         message read; each event's position is that whole map
//                                   after the event, as text: "0:3,3:2" (partition:next offset)
//
// Messages of partitions interleave, so one event's position tells Commit the next offset of
// every partition up to that event. Commit(upto) commits those offsets (commitSync) for the
// partitions still assigned; a position that is the last one handed out also covers the ignored
// messages read after it. On rebalance the acknowledged offsets of the revoked partitions are
// committed before they are given up; events of theirs still in flight are read again by the new
// owner (at least once). Poll honours `from`: a restart resumes at the state store's checkpoint
// for every partition it names (never behind the group's offsets, which are committed after
// it is stored) and at the group's committed offsets for the others.
//
// An empty Poll means every assigned partition is at its end (partition EOF).
//
// With `relations` (documents built from several tables; see "Relations" in maxwell.cc), every
// change, of the main table or of a related one, becomes kRefetch events: the pipeline re-reads
// those documents from MySQL through `snapshot.query` restricted to their ids.
//
// With `snapshot: { dsn, query }`, OpenFullRead() reads the table from MySQL itself (see
// sources/mysql_full_read.h) for reindexes and for the first start, when the group has no offsets
// yet and Kafka's retention may not hold every row (BackfillOnFirstStart).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/source.h"
#include "pipeline/status.h"
#include "sources/mysql_full_read.h"

namespace searchsync {

// The source's key table, for the registry and its section (its defaults rendered on first
// use; callable from any static initialiser).
std::span<const KeySpec> MaxwellKeys();

// Reads MaxwellOptions from `section`; nullptr when they had errors.
SourceFactory ParseMaxwellSource(const Section& section, std::string_view pipeline);

// One librdkafka property passed through from `kafka:`. Every value is kept as a Secret, so
// none is ever printed.
struct KafkaSetting {
  std::string name;
  Secret value;
};

// A table of `database` whose changes change documents (the `relations` key).
struct MaxwellRelationOptions {
  std::string table;
  // `documents` only: the column whose old and new values are the changed row's keys.
  std::vector<std::string> primary_key{"id"};
  // Exactly one: SQL run in MySQL (snapshot.dsn) returning the ids of the documents that show
  // the changed rows, whose one `?` is the list of their keys (see MysqlDocuments); or a column
  // of the row image that holds the document id.
  std::string documents;
  std::string document_key;
};

struct MaxwellOptions {
  std::string brokers;  // bootstrap.servers, "host:port,host:port"
  std::string topic;
  std::string group_id;  // consumer group; the committed offsets are its checkpoint
  std::string database;  // the MySQL database and table this pipeline takes from the topic
  std::string table;
  // Key columns when messages carry no `primary_key_columns`; empty: the Kafka key.
  std::vector<std::string> primary_key;
  std::vector<KafkaSetting> kafka;  // applied after searchsync's own settings
  // The full read from MySQL (the `snapshot:` key); unset: none (backfill with Maxwell's
  // bootstrap instead).
  std::optional<MysqlFullReadOptions> snapshot;
  // Tables whose changes change documents; needs `snapshot` and a single-column key.
  std::vector<MaxwellRelationOptions> relations;

  std::string log_component = "source=maxwell";  // names this source in log lines
};

// A live source for `options`; connects and joins the group on first use.
// Source thread only. REQUIRES: options are valid (as ParseMaxwellSource checks them).
std::unique_ptr<Source> MakeMaxwellSource(MaxwellOptions options);

// ---- Pure helpers, exposed for tests ------------------------------------------------------

// A checkpoint during a relation's fan-out: the offsets, then '#', the partition whose next
// message is being fanned out, ':', and the last document id given ("0:3,3:2#3:1042").
struct FanOutMark {
  int32_t partition = 0;
  std::string after;
};
// The offsets part of a checkpoint and its fan-out mark, if any. kInvalidArgument when the
// mark is malformed.
Result<std::pair<std::string_view, std::optional<FanOutMark>>> SplitFanOutMark(
    std::string_view token);

// Next offset per partition, in partition order.
using KafkaOffsets = std::vector<std::pair<int32_t, int64_t>>;
// "0:3,3:2"; "" for none.
void AppendKafkaOffsets(std::string& out, const std::map<int32_t, int64_t>& offsets);
// kInvalidArgument when `token` is not one AppendKafkaOffsets wrote.
Result<KafkaOffsets> DecodeKafkaOffsets(std::string_view token);

// The next offset per partition together with its text as AppendKafkaOffsets writes it, kept
// up to date as offsets move, so that a position per message is a copy of the text rather than
// a walk over every partition. An offset that keeps its number of digits is rewritten in place;
// one that grows shifts the text after it; a new or removed partition rebuilds the text.
class KafkaOffsetsText {
 public:
  const std::map<int32_t, int64_t>& offsets() const { return offsets_; }
  const std::string& text();
  void Set(int32_t partition, int64_t offset);
  void Erase(int32_t partition);

 private:
  struct Digits {
    size_t start = 0;  // of the offset's digits in `text_`
    size_t size = 0;
  };
  std::map<int32_t, int64_t> offsets_;
  std::map<int32_t, Digits> digits_;  // valid unless `stale_`
  std::string text_;
  bool stale_ = false;
};

// Turns Maxwell messages into events. Reuses its buffers between calls: no allocation per
// message beyond the event it fills. One thread at a time.
class MaxwellDecoder {
 public:
  enum class Outcome { kChange, kIgnored, kBad };

  MaxwellDecoder(std::string database, std::string table, std::vector<std::string> primary_key);
  ~MaxwellDecoder();
  MaxwellDecoder(const MaxwellDecoder&) = delete;
  MaxwellDecoder& operator=(const MaxwellDecoder&) = delete;

  // kChange: `event` holds op, id and (upserts) document. kIgnored: not a change of this table.
  // kBad: `reason` says what is wrong with the message; `event` is unspecified.
  Outcome Decode(std::string_view key, std::string_view value, Event& event, std::string& reason);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The event that dead-letters a bad message: id "<topic>/<partition>/<offset>", a document with
// topic, partition, offset, key and the raw message (base64 when it is not UTF-8).
Event BadMaxwellMessage(std::string_view topic, int32_t partition, int64_t offset,
                        std::string_view key, std::string_view value, std::string_view reason);

}  // namespace searchsync
