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

class MysqlFullRead : public FullRead {
 public:
  explicit MysqlFullRead(MysqlFullReadOptions options)
      : options_(std::move(options)), dsn_(ParseMysqlDsn(options_.dsn.value()).value()) {}

  ~MysqlFullRead() override { Close(); }

  // FullRead
  Result<std::vector<Event>> Next(size_t max_events) override;

 private:
  struct Column {
    std::string name;
    MysqlValueKind kind;
  };

  Status Open();
  Result<std::vector<std::string>> TablePrimaryKey(sql::Connection& connection);
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
  std::vector<Column> columns_;
  std::vector<size_t> key_columns_;  // indexes into columns_
  std::vector<std::string> key_parts_;
  uint64_t rows_read_ = 0;
  bool done_ = false;
};

Result<std::vector<std::string>> MysqlFullRead::TablePrimaryKey(sql::Connection& connection) {
  std::unique_ptr<sql::Statement> statement(connection.createStatement());
  std::unique_ptr<sql::ResultSet> result(statement->executeQuery(
      "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = " +
      QuoteString(options_.database) + " AND TABLE_NAME = " + QuoteString(options_.table) +
      " AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"));
  std::vector<std::string> columns;
  while (result->next()) columns.push_back(result->getString(1));
  if (columns.empty()) {
    return FailedPrecondition(options_.log_component + ": table " + options_.database + "." +
                              options_.table + " has no PRIMARY KEY; set primary_key");
  }
  return columns;
}

Status MysqlFullRead::Open() {
  connection_ = Connect(dsn_, options_.database);
  std::vector<std::string> key = options_.primary_key;
  if (key.empty()) {
    Result<std::vector<std::string>> table_key = TablePrimaryKey(*connection_);
    if (!table_key.ok()) return table_key.status();
    key = std::move(*table_key);
  }
  statement_.reset(connection_->createStatement());
  // Forward-only: mysql_use_result, rows streamed off the socket as they are read.
  statement_->setResultSetType(sql::ResultSet::TYPE_FORWARD_ONLY);
  result_.reset(statement_->executeQuery(QueryOf(options_)));
  sql::ResultSetMetaData* meta = result_->getMetaData();
  columns_.clear();
  for (unsigned column = 1; column <= meta->getColumnCount(); ++column) {
    columns_.push_back({meta->getColumnLabel(column), KindOf(*meta, column)});
  }
  key_columns_.clear();
  for (const std::string& name : key) {
    size_t found = columns_.size();
    for (size_t column_idx = 0; column_idx < columns_.size(); ++column_idx) {
      if (columns_[column_idx].name == name) found = column_idx;
    }
    if (found == columns_.size()) {
      return FailedPrecondition(options_.log_component +
                                ": the snapshot query returns no column `" + name +
                                "` of the primary key");
    }
    key_columns_.push_back(found);
  }
  key_parts_.resize(key_columns_.size());
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
    std::string text;
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
      event.op = Op::kUpsert;
      event.document.reserve(columns_.size());
      for (size_t column_idx = 0; column_idx < columns_.size(); ++column_idx) {
        const unsigned index = static_cast<unsigned>(column_idx + 1);
        Field& field = event.document.emplace_back();
        field.name = columns_[column_idx].name;
        if (result_->isNull(index)) {
          field.json = "null";
          continue;
        }
        text = result_->getString(index);
        AppendMysqlValueJson(field.json, columns_[column_idx].kind, text);
      }
      bool key_null = false;
      for (size_t key_idx = 0; key_idx < key_columns_.size(); ++key_idx) {
        const size_t column_idx = key_columns_[key_idx];
        const unsigned index = static_cast<unsigned>(column_idx + 1);
        if (result_->isNull(index)) {
          key_null = true;
          break;
        }
        std::string& part = key_parts_[key_idx];
        part = result_->getString(index);
        // The stream reads key parts from Maxwell's JSON: numbers as written, binary as base64.
        if (columns_[column_idx].kind == MysqlValueKind::kNumber) {
          const std::string& json = event.document[column_idx].json;
          part.assign(json);
        } else if (columns_[column_idx].kind == MysqlValueKind::kBase64) {
          std::string bytes = std::move(part);
          part.clear();
          AppendBase64(part, bytes);
        }
      }
      event.id = key_null ? "" : JoinKeyParts(key_parts_);
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
