#pragma once
// The maxwell source's full read: the rows of a MySQL/MariaDB query, as upserts shaped like the
// documents Maxwell's stream gives, so one transform config fits both.
//
// Poll, from an empty checkpoint, runs `query` once on a streaming result set (unbuffered:
// rows come off the socket as they are read, never the whole table in memory) and returns up to
// `max_events` rows per call, then an empty result once every row was read. Each row becomes a
// kUpsert whose id is the primary key, composite keys joined exactly as the stream joins them
// (JoinKeyParts), and whose document holds every column of the row. Values are mapped to JSON as
// Maxwell writes them:
//
//   TINYINT..BIGINT, YEAR, BIT, DECIMAL, FLOAT, DOUBLE   number (DECIMAL keeps its digits)
//   DATETIME, TIMESTAMP                                  "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC)
//   DATE, TIME, CHAR, VARCHAR, TEXT, ENUM                string
//   SET                                                  list of strings
//   BINARY, VARBINARY, BLOB, binary-collated strings     base64 string
//   JSON (MySQL's native type)                           the JSON itself
//   GEOMETRY                                             base64 of the WKB (Maxwell: WKT; use
//                                                        ST_AsText(col) AS col in the query)
//   NULL                                                 null
//
// The primary key is `primary_key` when configured, else the PRIMARY KEY of `database`.`table`
// read from information_schema. The session runs with time_zone '+00:00' (Maxwell writes
// TIMESTAMP in UTC) and a long net_write_timeout, so a pipeline paused by back-pressure does not
// lose the result. A lost connection returns kUnavailable and the next Poll runs the query again
// from the first row (the full read is idempotent: it only upserts). Positions are the count of
// rows read ("rows:N"); they are never stored as the pipeline's checkpoint.
//
// The DSN's password never appears in a message.

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/source.h"
#include "pipeline/status.h"

namespace searchsync {

struct MysqlFullReadOptions {
  // tcp://user:password@host[:port][/database] (mysql:// also accepted); user and password may be
  // percent-encoded. No database: `database`.
  Secret dsn;
  // The SELECT that reads the whole table; empty: SELECT * FROM `database`.`table`.
  std::string query;
  std::string database;
  std::string table;
  std::vector<std::string> primary_key;  // empty: the table's PRIMARY KEY
  std::string log_component = "source=maxwell snapshot";
};

// A DSN taken apart. Build with ParseMysqlDsn.
struct MysqlDsn {
  std::string host;
  int port = 3306;
  std::string user;
  std::string password;
  std::string database;  // empty when the DSN names none
};

// kInvalidArgument with a message that never holds the password when `dsn` is not of the form
// above.
Result<MysqlDsn> ParseMysqlDsn(std::string_view dsn);

// A full read for `options`; connects on the first Next.
// REQUIRES: ParseMysqlDsn(options.dsn) succeeds.
std::unique_ptr<FullRead> MakeMysqlFullRead(MysqlFullReadOptions options);

// Checks that the server answers and `query` (or the table) can be read: a LIMIT 0 of it.
Status CheckMysqlFullRead(const MysqlFullReadOptions& options);

// ---- Documents by id, for `relations` -------------------------------------------------------
//
// With `relations`, the maxwell source says only "these document ids changed" and the pipeline
// re-reads them (pipeline/refetch.h) from MySQL, through the same query the full read runs:
//
//   Read(ids)          SELECT * FROM (<query>) AS q WHERE q.`<primary key>` IN (<ids>)
//   DocumentIds(...)   SELECT DISTINCT d.`<col>` FROM (<documents>) AS d
//                        WHERE d.`<col>` > <after> ORDER BY d.`<col>` LIMIT <limit>
//
// MySQL has no array parameter: the one `?` of a relation's `documents` SQL (outside quotes and
// comments) is replaced by the list of the changed rows' keys as SQL literals, numbers as
// written and strings as _utf8mb4 X'<hex>' (no escaping, whatever the sql_mode), so
// `WHERE category_id IN (?)` becomes `WHERE category_id IN (7, 9)`; an empty list becomes NULL.
// Rows become documents exactly as the full read makes them. One connection, opened on first
// use and again after a failure. One thread at a time.
class MysqlDocuments {
 public:
  // REQUIRES: ParseMysqlDsn(options.dsn) succeeds.
  explicit MysqlDocuments(MysqlFullReadOptions options);
  ~MysqlDocuments();
  MysqlDocuments(const MysqlDocuments&) = delete;
  MysqlDocuments& operator=(const MysqlDocuments&) = delete;

  // The current documents of `ids` (Source::ReadDocuments): a kUpsert per id still returned by
  // the query. Needs a single-column primary key (configured, or the table's PRIMARY KEY).
  Result<std::vector<Event>> Read(std::span<const std::string> ids);

  // Up to `limit` distinct document ids that `documents` gives for `key_literals` (see
  // MysqlKeyLiteral), in the order of the id column, after `after` (nullopt: from the first).
  Result<std::vector<std::string>> DocumentIds(std::string_view documents,
                                               std::span<const std::string> key_literals,
                                               const std::optional<std::string>& after,
                                               size_t limit);

  // The column names `select` returns (a LIMIT 0 of it), for `check`.
  Result<std::vector<std::string>> Columns(const std::string& select);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- Pure helpers, exposed for tests ------------------------------------------------------

// Offsets of the `?` placeholders of `sql` outside quotes, backticks and comments.
std::vector<size_t> MysqlPlaceholders(std::string_view sql);

// `sql` with its single `?` (MysqlPlaceholders) replaced by the literals joined by ", ", or by
// NULL when there are none. REQUIRES: `sql` has exactly one placeholder.
std::string BindMysqlList(std::string_view sql, std::span<const std::string> literals);

// A key value as an SQL literal: `number` true (a JSON number, a numeric column) and the text a
// number: as is; otherwise the string _utf8mb4 X'<hex of the text>'.
std::string MysqlKeyLiteral(std::string_view text, bool number);

// How a result column's text is written as JSON.
enum class MysqlValueKind { kNumber, kString, kBase64, kSet, kJson };

// Appends the JSON for one non-NULL value in MySQL's text protocol form.
void AppendMysqlValueJson(std::string& out, MysqlValueKind kind, std::string_view text);

}  // namespace searchsync
