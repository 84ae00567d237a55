#pragma once
// The `postgres` source: polls a table, view or query by (updated_at, primary key).
//
// Each Poll reads one keyset page, `ORDER BY updated_at, pk...`, of the rows whose updated_at is
// below a safe *horizon* (see the comment at the top of postgres.cc: a transaction that commits
// late never has its rows skipped). Deletes come from a soft-delete column or a tombstone table
// polled the same way; the two streams are merged by timestamp, a tombstone first on a tie.
//
// Events:
//   - a row: kUpsert whose document holds every column of the row (or of the query) except the
//     soft-delete column, each encoded as JSON (see PostgresValueToJson);
//   - a row whose soft-delete column is true (a boolean column) or not NULL (any other type,
//     e.g. a deleted_at timestamp): kDelete;
//   - a tombstone row: kDelete of the id in its id_column.
// Event::id is the primary key: the text form of a single column; for a composite key every
// part with `\` and `|` escaped by a `\`, joined by `|` (see JoinKeyParts). A tombstone's
// id_column must hold that same text.
//
// The checkpoint is JSON text, e.g.
//   {"rows":["2026-11-21 05:00:00.123456+00","42"],"tombstones":["2026-11-21 04:59:59+00","17"]}
// or, while the rows whose updated_at is NULL are read (they come first, by key), {"rows":[null,
// "42"],...}. With relations, "relations":{"categories":{"rows":[...],"tombstones":[...]}}
// follows, with "upto" and "after" during a fan-out (see PostgresRelationCursor).
// "rows" is the (updated_at, pk...) of the last row read, "tombstones" the (deleted_at, id) of the
// last tombstone read, each in PostgreSQL's text form (session TimeZone UTC, DateStyle ISO; a
// `timestamp` column's value as written, without an offset); an empty list means "from the
// beginning". A part that is not valid UTF-8 (a key in a SQL_ASCII database) is written
// {"hex":"636166e9"} so the checkpoint stays JSON; the row itself is dead-lettered (a Typesense
// id must be UTF-8), and the pipeline goes on past it.
//
// Requirements on the database: updated_at is a timestamptz, or a timestamp written in the
// server's TimeZone (now(), a trigger) or in updated_at_time_zone, that every write sets; an
// index on (updated_at, pk...) keeps each page cheap; the role can see other sessions'
// xact_start in pg_stat_activity (superuser, same role, or pg_read_all_stats).

#include <chrono>
#include <cstdint>
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

// The source's key table, for the registry and its section (its defaults rendered on first
// use; callable from any static initialiser).
std::span<const KeySpec> PostgresKeys();

// Reads PostgresOptions from `section`; nullptr when they had errors.
SourceFactory ParsePostgresSource(const Section& section, std::string_view pipeline);

// Reads a libpq DSN (URI or key=value) as libpq will, before any connection, and refuses with
// kInvalidArgument what libpq would refuse only when connecting (a malformed string, an
// unknown option, a port that is no number) or read differently from what was meant (a URI
// password holding an unencoded '/', '?', '#' or '@'). Messages never quote the password. On
// success, the password in every form a message could carry it.
Result<std::vector<std::string>> CheckPostgresDsn(const std::string& dsn);

struct PostgresTombstoneOptions {
  std::string table;              // may be schema-qualified: audit.deleted_products
  std::string id_column;          // the deleted document's id (the joined key for composite keys)
  std::string deleted_at_column;  // when it was deleted: timestamptz or timestamp
  std::string deleted_at_time_zone;  // a `timestamp` deleted_at's zone; empty: the server's
};

// A table whose changes change documents (see "Relations" at the top of postgres.cc).
struct PostgresRelationOptions {
  std::string table;                           // may be schema-qualified
  std::string updated_at;                      // set by every insert and update of its rows
  std::vector<std::string> primary_key{"id"};  // orders its rows; a list for a composite key
  // Exactly one: SQL returning the ids of the documents that show the changed rows, whose $1
  // is the array of their primary keys (single-column keys only); or a column of the row that
  // holds the document id.
  std::string documents;
  std::string document_key;
  // Rows deleted from the table (a link table's rows): each names a document to re-read.
  std::optional<PostgresTombstoneOptions> tombstones;
};

struct PostgresOptions {
  Secret dsn;  // libpq URI or key=value string

  // Exactly one of `table` (a table or view, optionally schema-qualified, e.g. "shop.products")
  // or `query` (any SELECT; it becomes a subquery, so its output column names are what
  // primary_key and updated_at refer to).
  std::string table;
  std::string query;
  std::vector<std::string> primary_key;  // one column, or several for a composite key
  std::string updated_at;                // set by every insert and update
  // For a `timestamp` (no zone) updated_at: the zone its values are written in (an IANA name).
  // Empty: the server's TimeZone as a new session sees it, which is what now() writes. Other
  // `timestamp` values in documents are read in the same zone.
  std::string updated_at_time_zone;

  // How long the pipeline waits after a poll that found nothing new.
  Millis poll_interval{30'000};
  // Rows per keyset page (and per Poll). Larger pages mean fewer round trips and more memory.
  size_t page_size = 10'000;
  // Subtracted from the horizon. 0 is safe when updated_at comes from the database (now(),
  // clock_timestamp(), a trigger); set it to the worst clock skew plus commit latency when
  // applications write updated_at from their own clocks.
  Millis commit_margin{0};
  // LISTEN on this channel (a second connection) and poll as soon as a NOTIFY arrives, e.g. from
  // a trigger calling pg_notify('products_changed', ''). poll_interval stays the fallback; a
  // lost listening connection is re-established, and a poll follows every reconnect.
  std::string notify_channel;

  std::string soft_delete_column;  // empty: none
  std::optional<PostgresTombstoneOptions> tombstones;

  // Tables whose changes change documents; each changed row's documents are re-read through
  // `query` restricted to their ids (found: upsert; gone: delete). Needs a single-column
  // primary_key.
  std::vector<PostgresRelationOptions> relations;

  std::string log_component = "source=postgres";  // names this source in log lines
};

// A live source for `options`; connects on first use, and again after a lost connection.
// Source thread only. REQUIRES: options are valid (as ParsePostgresSource checks them).
std::unique_ptr<Source> MakePostgresSource(PostgresOptions options);

// ---- Pure helpers, exposed for tests ------------------------------------------------------

// A relation's position: like the main table's, plus an unfinished fan-out of a `documents`
// relation. `rows` (and `tombstones`) of a single part, a timestamp, is a start: rows from that
// instant on (a relation's first cursor is the horizon when it was first polled).
struct PostgresRelationCursor {
  std::vector<std::string> rows;        // (updated_at, pk...) of the last related row done
  std::vector<std::string> tombstones;  // (deleted_at, document id) of the last tombstone done
  // While fanning out the related rows after `rows` up to `upto` (inclusive): the document ids
  // up to `after` (one element; empty: none yet) are read.
  std::vector<std::string> upto;
  std::vector<std::string> after;
  bool operator==(const PostgresRelationCursor&) const = default;
};

// The position the checkpoint token holds (see above).
struct PostgresCursor {
  std::vector<std::string> rows;        // empty, or updated_at followed by each pk column
  std::vector<std::string> tombstones;  // empty, or deleted_at followed by the id
  // rows[0] stands for a NULL updated_at (JSON null in the token; rows[0] is then ""). Rows
  // whose updated_at is NULL come first, in key order: [NULL, pk...] is a position among them,
  // [NULL] alone the position after all of them.
  bool rows_updated_at_null = false;
  std::map<std::string, PostgresRelationCursor> relations;  // by relation table
  bool operator==(const PostgresCursor&) const = default;
};
std::string EncodePostgresCursor(const PostgresCursor& cursor);
// kInvalidArgument when `token` is not a cursor this source wrote. An empty token is the start.
Result<PostgresCursor> DecodePostgresCursor(std::string_view token);

// The JSON for the text form of a value of the PostgreSQL type `type_oid`, as the session
// settings of this source print it (DateStyle ISO, TimeZone UTC, extra_float_digits 3,
// bytea_output hex):
//   int2 int4 int8 oid        -> number               bool        -> true / false
//   numeric                   -> number, exact as text (NaN, ±Infinity -> null)
//   float4 float8             -> number (NaN, ±Infinity -> null)
//   json jsonb                -> the JSON itself, whitespace between tokens removed
//   timestamptz               -> "2026-11-21T05:00:00.123456Z" (RFC 3339)
//   timestamp                 -> "2026-11-21T05:00:00.123456Z": `text` is UTC wall time (the
//                                source converts values written in another zone first)
//   timestamp[tz] infinity, -infinity, BC or past 9999 -> null (no RFC 3339 form)
//   date, time, timetz        -> "2026-11-21", "05:00:00"
//   bytea                     -> base64 string
//   arrays of the above       -> JSON arrays (nested for several dimensions), NULL -> null
//   anything else (text, varchar, char, uuid, enum, interval, inet, ...) -> string
// NULL is `null` and never reaches this function. (The source also maps domains to their base
// type and arrays of other types, e.g. of an enum, to arrays of strings.)
std::string PostgresValueToJson(uint32_t type_oid, std::string_view text);

// Parses an array's text form ("{1,2,NULL}", "{{\"a b\",c}}", "[0:1]={x,y}") and renders it as a
// JSON array whose elements are PostgresValueToJson(element_oid, element). nullopt when
// `literal` is not an array literal.
std::optional<std::string> PostgresArrayToJson(std::string_view literal, uint32_t element_oid);

// A table name as SQL: each dot-separated part double-quoted ("shop.products" ->
// "shop"."products"); parts the user already quoted are kept as written.
std::string QuotePostgresName(std::string_view name);

}  // namespace searchsync
