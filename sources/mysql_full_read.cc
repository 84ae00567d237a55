#include "sources/mysql_full_read.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>

#include <charconv>
#include <chrono>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/url.h"
#include "sources/common.h"

namespace searchsync {
namespace {

// A pipeline paused by back-pressure leaves the unbuffered result unread for a while; the
// server drops the connection after net_write_timeout (default 60s) without reads.
constexpr int kNetWriteTimeoutSeconds = 24 * 3600;
constexpr int kConnectTimeoutSeconds = 10;

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out.push_back('`');
    out.push_back(c);
  }
  return out + "`";
}

std::string QuoteString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

MysqlValueKind KindOf(sql::ResultSetMetaData& meta, unsigned column) {
  switch (meta.getColumnType(column)) {
    case sql::DataType::BIT:
    case sql::DataType::TINYINT:
    case sql::DataType::SMALLINT:
    case sql::DataType::MEDIUMINT:
    case sql::DataType::INTEGER:
    case sql::DataType::BIGINT:
    case sql::DataType::REAL:
    case sql::DataType::DOUBLE:
    case sql::DataType::DECIMAL:
    case sql::DataType::NUMERIC:
    case sql::DataType::YEAR:
      return MysqlValueKind::kNumber;
    case sql::DataType::BINARY:
    case sql::DataType::VARBINARY:
    case sql::DataType::LONGVARBINARY:
    case sql::DataType::GEOMETRY:
      return MysqlValueKind::kBase64;
    case sql::DataType::CHAR:
    case sql::DataType::VARCHAR:
    case sql::DataType::LONGVARCHAR:
      // Strings with a binary collation hold bytes: Maxwell base64-encodes them too.
      return meta.getColumnCharset(column) == "binary" ? MysqlValueKind::kBase64
                                                       : MysqlValueKind::kString;
    case sql::DataType::SET:
      return MysqlValueKind::kSet;
    case sql::DataType::JSON:
      return MysqlValueKind::kJson;
    default:
      return MysqlValueKind::kString;
  }
}

// Connector and server errors: transient ones (the connection, the server's load) are retried;
// the rest (SQL errors, access denied) need someone to fix the config.
Status FromSqlError(const sql::SQLException& e, std::string_view context,
                    const std::string& password) {
  const std::string message = RedactSecrets(e.what(), std::span(&password, 1));
  const int code = e.getErrorCode();
  std::string text = std::string(context) + ": " + message;
  if (code != 0) text += " (MySQL error " + std::to_string(code) + ")";
  // 2000-2999: client errors (cannot connect, server gone, lost connection); 1040 too many
  // connections; 1053 shutdown in progress; 1205/1213 lock wait/deadlock; 1927 killed.
  const bool transient = code == 0 || (code >= 2000 && code < 3000) || code == 1040 ||
                         code == 1053 || code == 1205 || code == 1213 || code == 1927;
  return transient ? Unavailable(std::move(text)) : FailedPrecondition(std::move(text));
}

std::unique_ptr<sql::Connection> Connect(const MysqlDsn& dsn, const std::string& database) {
  sql::ConnectOptionsMap connect;
  connect["hostName"] = sql::SQLString(dsn.host);
  connect["port"] = dsn.port;
  connect["userName"] = sql::SQLString(dsn.user);
  connect["password"] = sql::SQLString(dsn.password);
  connect["schema"] = sql::SQLString(dsn.database.empty() ? database : dsn.database);
  connect["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  connect["OPT_CONNECT_TIMEOUT"] = kConnectTimeoutSeconds;
  std::unique_ptr<sql::Connection> connection(
      sql::mysql::get_mysql_driver_instance()->connect(connect));
  std::unique_ptr<sql::Statement> statement(connection->createStatement());
  statement->execute("SET SESSION time_zone = '+00:00', SESSION net_write_timeout = " +
                     std::to_string(kNetWriteTimeoutSeconds));
  return connection;
}

std::string QueryOf(const MysqlFullReadOptions& options) {
  if (!options.query.empty()) return options.query;
  return "SELECT * FROM " + QuoteIdentifier(options.database) + "." +
         QuoteIdentifier(options.table);
}

// How the columns of a result become a document and its id.
struct RowShape {
  struct Column {
    std::string name;
    MysqlValueKind kind;
  };
  std::vector<Column> columns;
  std::vector<size_t> key_columns;  // indexes into columns
};

// The shape of `result` with the key columns `key`; kFailedPrecondition naming a key column the
// query does not return.
Result<RowShape> ShapeOf(sql::ResultSet& result, const std::vector<std::string>& key,
                         const std::string& log_component, std::string_view query_name) {
  RowShape shape;
  sql::ResultSetMetaData* meta = result.getMetaData();
  for (unsigned column = 1; column <= meta->getColumnCount(); ++column) {
    shape.columns.push_back({meta->getColumnLabel(column), KindOf(*meta, column)});
  }
  for (const std::string& name : key) {
    size_t found = shape.columns.size();
    for (size_t column_idx = 0; column_idx < shape.columns.size(); ++column_idx) {
      if (shape.columns[column_idx].name == name) found = column_idx;
    }
    if (found == shape.columns.size()) {
      return FailedPrecondition(log_component + ": the " + std::string(query_name) +
                                " returns no column `" + name + "` of the primary key");
    }
    shape.key_columns.push_back(found);
  }
  return shape;
}

// A key column's value as the stream reads it from Maxwell's JSON: numbers as written, binary as
// base64, strings as they are. `json` is the value's JSON (AppendMysqlValueJson).
void KeyPartOf(MysqlValueKind kind, std::string text, const std::string& json, std::string& part) {
  if (kind == MysqlValueKind::kNumber) {
    part.assign(json);
  } else if (kind == MysqlValueKind::kBase64) {
    part.clear();
    AppendBase64(part, text);
  } else {
    part = std::move(text);
  }
}

// The current row of `result` as an upsert; its id from the key columns, "" when one is NULL.
void ReadRow(sql::ResultSet& result, const RowShape& shape, std::vector<std::string>& key_parts,
             Event& event) {
  event.op = Op::kUpsert;
  event.document.reserve(shape.columns.size());
  for (size_t column_idx = 0; column_idx < shape.columns.size(); ++column_idx) {
    const unsigned index = static_cast<unsigned>(column_idx + 1);
    Field& field = event.document.emplace_back();
    field.name = shape.columns[column_idx].name;
    if (result.isNull(index)) {
      field.json = "null";
      continue;
    }
    const std::string text = result.getString(index);
    AppendMysqlValueJson(field.json, shape.columns[column_idx].kind, text);
  }
  key_parts.resize(shape.key_columns.size());
  for (size_t key_idx = 0; key_idx < shape.key_columns.size(); ++key_idx) {
    const size_t column_idx = shape.key_columns[key_idx];
    const unsigned index = static_cast<unsigned>(column_idx + 1);
    if (result.isNull(index)) {
      event.id.clear();
      return;
    }
    KeyPartOf(shape.columns[column_idx].kind, result.getString(index),
              event.document[column_idx].json, key_parts[key_idx]);
  }
  event.id = JoinKeyParts(key_parts);
}

Result<std::vector<std::string>> TablePrimaryKey(sql::Connection& connection,
                                                 const MysqlFullReadOptions& options) {
  std::unique_ptr<sql::Statement> statement(connection.createStatement());
  std::unique_ptr<sql::ResultSet> result(statement->executeQuery(
      "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = " +
      QuoteString(options.database) + " AND TABLE_NAME = " + QuoteString(options.table) +
      " AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"));
  std::vector<std::string> columns;
  while (result->next()) columns.push_back(result->getString(1));
  if (columns.empty()) {
    return FailedPrecondition(options.log_component + ": table " + options.database + "." +
                              options.table + " has no PRIMARY KEY; set primary_key");
  }
  return columns;
}

class MysqlFullRead : public FullRead {
 public:
  explicit MysqlFullRead(MysqlFullReadOptions options)
      : options_(std::move(options)), dsn_(ParseMysqlDsn(options_.dsn.value()).value()) {}

  ~MysqlFullRead() override { Close(); }

  // FullRead
  Result<std::vector<Event>> Next(size_t max_events) override;

 private:
  Status Open();
  void Close() {
    result_.reset();  // an unfinished unbuffered result is drained here
    statement_.reset();
    connection_.reset();
  }

  const MysqlFullReadOptions options_;
  const MysqlDsn dsn_;
  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::Statement> statement_;
  std::unique_ptr<sql::ResultSet> result_;
  RowShape shape_;
  std::vector<std::string> key_parts_;
  uint64_t rows_read_ = 0;
  bool done_ = false;
};

Status MysqlFullRead::Open() {
  connection_ = Connect(dsn_, options_.database);
  std::vector<std::string> key = options_.primary_key;
  if (key.empty()) {
    Result<std::vector<std::string>> table_key = TablePrimaryKey(*connection_, options_);
    if (!table_key.ok()) return table_key.status();
    key = std::move(*table_key);
  }
  statement_.reset(connection_->createStatement());
  // Forward-only: mysql_use_result, rows streamed off the socket as they are read.
  statement_->setResultSetType(sql::ResultSet::TYPE_FORWARD_ONLY);
  result_.reset(statement_->executeQuery(QueryOf(options_)));
  Result<RowShape> shape = ShapeOf(*result_, key, options_.log_component, "snapshot query");
  if (!shape.ok()) return shape.status();
  shape_ = std::move(*shape);
  rows_read_ = 0;
  Log(LogLevel::kInfo, options_.log_component, "full read started");
  return Status::Ok();
}

Result<std::vector<Event>> MysqlFullRead::Next(size_t max_events) {
  // One unbuffered result stream: after a failure the next call reads it again from the first
  // row (positions are only the row count, for the dead-letter ids).
  std::vector<Event> events;
  if (done_) return events;
  try {
    if (result_ == nullptr) {
      if (Status status = Open(); !status.ok()) {
        Close();
        return status;
      }
    }
    while (events.size() < max_events) {
      if (!result_->next()) {
        done_ = true;
        Close();
        Log(LogLevel::kInfo, options_.log_component,
            "full read done rows=" + std::to_string(rows_read_));
        break;
      }
      ++rows_read_;
      Event& event = events.emplace_back();
      ReadRow(*result_, shape_, key_parts_, event);
      event.position.token = "rows:" + std::to_string(rows_read_);
      if (event.id.empty()) {
        // Not a change the index can take; kept for whoever reads the dead letters.
        event.id = "snapshot/row/" + std::to_string(rows_read_);
        event.dead_letter_reason = options_.log_component + ": row " + std::to_string(rows_read_) +
                                   " of the full read has a NULL or empty primary key";
      }
    }
  } catch (const sql::SQLException& e) {
    Close();
    return FromSqlError(
        e, options_.log_component + ": mysql " + dsn_.host + ":" + std::to_string(dsn_.port),
        dsn_.password);
  }
  return events;
}

}  // namespace

Result<MysqlDsn> ParseMysqlDsn(std::string_view dsn) {
  const auto bad = [](std::string_view why) {
    return InvalidArgument(std::string(why) +
                           " (expected tcp://user:password@host[:port][/database])");
  };
  std::string_view rest;
  if (dsn.starts_with("tcp://")) {
    rest = dsn.substr(6);
  } else if (dsn.starts_with("mysql://")) {
    rest = dsn.substr(8);
  } else {
    return bad("the DSN must start with tcp:// or mysql://");
  }
  MysqlDsn out;
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    std::optional<std::string> user = PercentDecode(userinfo.substr(0, colon));
    if (!user) return bad("the DSN's user has a malformed %-escape");
    out.user = std::move(*user);
    if (colon != std::string_view::npos) {
      std::optional<std::string> password = PercentDecode(userinfo.substr(colon + 1));
      if (!password) return bad("the DSN's password has a malformed %-escape");
      out.password = std::move(*password);
    }
    if (out.user.empty()) return bad("the DSN names no user before '@'");
  }
  const size_t slash = rest.find('/');
  std::string_view host_port = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view database = rest.substr(slash + 1);
    if (database.find_first_of("?/") != std::string_view::npos) {
      return bad("the DSN takes no options or path after the database name");
    }
    out.database = database;
  }
  if (const size_t colon = host_port.rfind(':');
      colon != std::string_view::npos && host_port.find(']', colon) == std::string_view::npos) {
    const std::string_view port = host_port.substr(colon + 1);
    const auto parsed = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (port.empty() || parsed.ec != std::errc() || parsed.ptr != port.data() + port.size() ||
        out.port <= 0 || out.port > 65535) {
      return bad("the DSN's port is not a number between 1 and 65535");
    }
    host_port = host_port.substr(0, colon);
  }
  if (host_port.size() > 2 && host_port.front() == '[' && host_port.back() == ']') {
    host_port = host_port.substr(1, host_port.size() - 2);
  }
  if (host_port.empty()) return bad("the DSN names no host");
  out.host = host_port;
  return out;
}

std::unique_ptr<FullRead> MakeMysqlFullRead(MysqlFullReadOptions options) {
  return std::make_unique<MysqlFullRead>(std::move(options));
}

Status CheckMysqlFullRead(const MysqlFullReadOptions& options) {
  Result<MysqlDsn> dsn = ParseMysqlDsn(options.dsn.value());
  if (!dsn.ok()) return dsn.status();
  try {
    std::unique_ptr<sql::Connection> connection = Connect(*dsn, options.database);
    std::unique_ptr<sql::Statement> statement(connection->createStatement());
    std::unique_ptr<sql::ResultSet> result(
        statement->executeQuery("SELECT * FROM (" + QueryOf(options) + ") AS snapshot LIMIT 0"));
    return Status::Ok();
  } catch (const sql::SQLException& e) {
    return FromSqlError(
        e, options.log_component + ": mysql " + dsn->host + ":" + std::to_string(dsn->port),
        dsn->password);
  }
}

// ---- Documents by id ----------------------------------------------------------------------

struct MysqlDocuments::Impl {
  MysqlFullReadOptions options;
  MysqlDsn dsn;
  std::unique_ptr<sql::Connection> connection;
  // The restricted query's shape and key column, read on first use.
  std::optional<RowShape> shape;
  std::string key_column;
  bool key_is_number = false;
  // Per `documents` SQL: its one column and whether it is a number.
  std::map<std::string, std::pair<std::string, bool>, std::less<>> document_columns;
  std::vector<std::string> key_parts;

  sql::Connection& Connection() {
    if (connection == nullptr) connection = Connect(dsn, options.database);
    return *connection;
  }

  Status Failed(const sql::SQLException& e, std::string_view what) {
    connection.reset();  // a new one next time: the failure may have been the connection's
    return FromSqlError(e,
                        options.log_component + " " + std::string(what) + ": mysql " + dsn.host +
                            ":" + std::to_string(dsn.port),
                        dsn.password);
  }

  // Reads the restricted query's shape (a LIMIT 0) and its key column.
  Status Prepare() {
    std::vector<std::string> key = options.primary_key;
    if (key.empty()) {
      Result<std::vector<std::string>> table_key = TablePrimaryKey(Connection(), options);
      if (!table_key.ok()) return table_key.status();
      key = std::move(*table_key);
    }
    if (key.size() != 1) {
      return FailedPrecondition(options.log_component + ": relations need a single-column " +
                                "primary key (the document id); the table's is " +
                                std::to_string(key.size()) + " columns");
    }
    std::unique_ptr<sql::Statement> statement(Connection().createStatement());
    std::unique_ptr<sql::ResultSet> result(
        statement->executeQuery("SELECT * FROM (" + QueryOf(options) + "\n) AS q LIMIT 0"));
    Result<RowShape> read = ShapeOf(*result, key, options.log_component, "snapshot query");
    if (!read.ok()) return read.status();
    key_column = key.front();
    key_is_number = read->columns[read->key_columns.front()].kind == MysqlValueKind::kNumber;
    shape = std::move(*read);
    return Status::Ok();
  }
};

MysqlDocuments::MysqlDocuments(MysqlFullReadOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->dsn = ParseMysqlDsn(options.dsn.value()).value();
  impl_->options = std::move(options);
}

MysqlDocuments::~MysqlDocuments() = default;

Result<std::vector<Event>> MysqlDocuments::Read(std::span<const std::string> ids) {
  Impl& s = *impl_;
  std::vector<Event> documents;
  try {
    if (!s.shape) {
      if (Status status = s.Prepare(); !status.ok()) return status;
    }
    std::vector<std::string> literals;
    literals.reserve(ids.size());
    for (const std::string& id : ids) literals.push_back(MysqlKeyLiteral(id, s.key_is_number));
    const std::string sql =
        BindMysqlList("SELECT * FROM (" + QueryOf(s.options) + "\n) AS q WHERE q." +
                          QuoteIdentifier(s.key_column) + " IN (?)",
                      literals);
    std::unique_ptr<sql::Statement> statement(s.Connection().createStatement());
    std::unique_ptr<sql::ResultSet> result(statement->executeQuery(sql));
    documents.reserve(ids.size());
    while (result->next()) {
      Event event;
      ReadRow(*result, *s.shape, s.key_parts, event);
      if (!event.id.empty()) documents.push_back(std::move(event));
    }
  } catch (const sql::SQLException& e) {
    return s.Failed(e, "re-reading changed documents");
  }
  return documents;
}

Result<std::vector<std::string>> MysqlDocuments::DocumentIds(
    std::string_view documents, std::span<const std::string> key_literals,
    const std::optional<std::string>& after, size_t limit) {
  Impl& s = *impl_;
  std::vector<std::string> ids;
  try {
    auto column = s.document_columns.find(documents);
    if (column == s.document_columns.end()) {
      std::unique_ptr<sql::Statement> statement(s.Connection().createStatement());
      std::unique_ptr<sql::ResultSet> result(statement->executeQuery(
          "SELECT * FROM (" + BindMysqlList(documents, {}) + "\n) AS d LIMIT 0"));
      sql::ResultSetMetaData* meta = result->getMetaData();
      if (meta->getColumnCount() != 1) {
        return FailedPrecondition(s.options.log_component + ": a relation's documents query " +
                                  "returns " + std::to_string(meta->getColumnCount()) +
                                  " columns; it must return one, the document id");
      }
      column = s.document_columns
                   .emplace(std::string(documents),
                            std::pair(std::string(meta->getColumnLabel(1)),
                                      KindOf(*meta, 1) == MysqlValueKind::kNumber))
                   .first;
    }
    const std::string id_column = "d." + QuoteIdentifier(column->second.first);
    const bool number = column->second.second;
    std::string sql = "SELECT DISTINCT " + id_column + " FROM (" +
                      BindMysqlList(documents, key_literals) + "\n) AS d WHERE " + id_column +
                      " IS NOT NULL";
    if (after) sql += " AND " + id_column + " > " + MysqlKeyLiteral(*after, number);
    sql += " ORDER BY " + id_column + " LIMIT " + std::to_string(limit);
    std::unique_ptr<sql::Statement> statement(s.Connection().createStatement());
    std::unique_ptr<sql::ResultSet> result(statement->executeQuery(sql));
    const MysqlValueKind kind = KindOf(*result->getMetaData(), 1);
    std::string json;
    while (result->next()) {
      std::string text = result->getString(1);
      json.clear();
      AppendMysqlValueJson(json, kind, text);
      KeyPartOf(kind, std::move(text), json, ids.emplace_back());
    }
  } catch (const sql::SQLException& e) {
    return s.Failed(e, "reading the documents of changed related rows");
  }
  return ids;
}

Result<std::vector<std::string>> MysqlDocuments::Columns(const std::string& select) {
  Impl& s = *impl_;
  std::vector<std::string> names;
  try {
    std::unique_ptr<sql::Statement> statement(s.Connection().createStatement());
    std::unique_ptr<sql::ResultSet> result(
        statement->executeQuery("SELECT * FROM (" + select + "\n) AS c LIMIT 0"));
    sql::ResultSetMetaData* meta = result->getMetaData();
    for (unsigned column = 1; column <= meta->getColumnCount(); ++column) {
      names.push_back(meta->getColumnLabel(column));
    }
  } catch (const sql::SQLException& e) {
    return s.Failed(e, "check");
  }
  return names;
}

std::vector<size_t> MysqlPlaceholders(std::string_view sql) {
  std::vector<size_t> found;
  for (size_t pos = 0; pos < sql.size(); ++pos) {
    const char c = sql[pos];
    if (c == '\'' || c == '"' || c == '`') {
      // A quoted string or name: a doubled quote or (not in names) a backslash escapes.
      for (++pos; pos < sql.size(); ++pos) {
        if (c != '`' && sql[pos] == '\\') {
          ++pos;
        } else if (sql[pos] == c) {
          if (pos + 1 < sql.size() && sql[pos + 1] == c) {
            ++pos;
          } else {
            break;
          }
        }
      }
    } else if (c == '#' || (c == '-' && sql.substr(pos).starts_with("-- "))) {
      pos = std::min(sql.find('\n', pos), sql.size());
    } else if (c == '/' && sql.substr(pos).starts_with("/*")) {
      pos = std::min(sql.find("*/", pos + 2), sql.size() - 1) + 1;
    } else if (c == '?') {
      found.push_back(pos);
    }
  }
  return found;
}

std::string BindMysqlList(std::string_view sql, std::span<const std::string> literals) {
  const size_t at = MysqlPlaceholders(sql).front();
  std::string out(sql.substr(0, at));
  if (literals.empty()) out += "NULL";
  for (size_t literal_idx = 0; literal_idx < literals.size(); ++literal_idx) {
    if (literal_idx > 0) out += ", ";
    out += literals[literal_idx];
  }
  out += sql.substr(at + 1);
  return out;
}

namespace {

// -?digits(.digits)?([eE][+-]?digits)?: what may go into SQL as written.
bool IsJsonNumber(std::string_view text) {
  size_t pos = 0;
  const auto digits = [&] {
    const size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return pos > start;
  };
  if (pos < text.size() && text[pos] == '-') ++pos;
  if (!digits()) return false;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (!digits()) return false;
  }
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
    if (!digits()) return false;
  }
  return pos == text.size();
}

}  // namespace

std::string MysqlKeyLiteral(std::string_view text, bool number) {
  if (number && IsJsonNumber(text)) return std::string(text);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "_utf8mb4 X'";
  for (const char c : text) {
    out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 15]);
  }
  out += "'";
  return out;
}

void AppendMysqlValueJson(std::string& out, MysqlValueKind kind, std::string_view text) {
  switch (kind) {
    case MysqlValueKind::kNumber: {
      // ZEROFILL columns print leading zeros, which JSON numbers cannot have.
      size_t start = text.starts_with('-') ? 1 : 0;
      if (start == 1) out.push_back('-');
      while (start + 1 < text.size() && text[start] == '0' && text[start + 1] >= '0' &&
             text[start + 1] <= '9') {
        ++start;
      }
      if (start >= text.size()) {
        out += "null";
        return;
      }
      out.append(text.substr(start));
      return;
    }
    case MysqlValueKind::kString:
      AppendJsonString(out, text);
      return;
    case MysqlValueKind::kBase64:
      out.push_back('"');
      AppendBase64(out, text);
      out.push_back('"');
      return;
    case MysqlValueKind::kSet: {
      out.push_back('[');
      size_t start = 0;
      while (start < text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        if (start > 0) out.push_back(',');
        AppendJsonString(out, text.substr(start, comma - start));
        start = comma + 1;
      }
      out.push_back(']');
      return;
    }
    case MysqlValueKind::kJson:
      out.append(text.empty() ? std::string_view("null") : text);
      return;
  }
}

}  // namespace searchsync
