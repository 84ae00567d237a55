#include <catch2/catch.hpp>

#include "pipeline/config.h"
#include "sources/mysql_full_read.h"

namespace searchsync {
namespace {

std::string ValueJson(MysqlValueKind kind, std::string_view text) {
  std::string out;
  AppendMysqlValueJson(out, kind, text);
  return out;
}

TEST_CASE("MySQL DSNs are taken apart: user, percent-encoded password, host, port, database",
          "[mysql-snapshot]") {
  const auto full = ParseMysqlDsn("tcp://shop%40app:p%40ss:w%2Frd@db.internal:3307/shop");
  REQUIRE(full.ok());
  CHECK(full->user == "shop@app");
  CHECK(full->password == "p@ss:w/rd");
  CHECK(full->host == "db.internal");
  CHECK(full->port == 3307);
  CHECK(full->database == "shop");

  const auto minimal = ParseMysqlDsn("mysql://root@127.0.0.1");
  REQUIRE(minimal.ok());
  CHECK(minimal->user == "root");
  CHECK(minimal->password.empty());
  CHECK(minimal->port == 3306);
  CHECK(minimal->database.empty());

  const auto ipv6 = ParseMysqlDsn("tcp://u:p@[::1]:3306/db");
  REQUIRE(ipv6.ok());
  CHECK(ipv6->host == "::1");
}

TEST_CASE("Bad MySQL DSNs are refused with a reason that never shows the password",
          "[mysql-snapshot]") {
  const std::string password = "hunter2-secret";
  for (const std::string& dsn :
       {"postgresql://u:" + password + "@h/db", "tcp://u:" + password + "@h:notaport/db",
        "tcp://u:" + password + "@h:70000/db", "tcp://u:" + password + "@/db",
        "tcp://:" + password + "@h/db", "tcp://u:" + password + "%zz@h/db",
        "tcp://u:" + password + "@h/db?ssl=1"}) {
    INFO(dsn);
    const auto parsed = ParseMysqlDsn(dsn);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().message().find(password) == std::string::npos);
    CHECK(parsed.status().message().find("expected tcp://") != std::string::npos);
  }
}

TEST_CASE("MySQL values become the JSON Maxwell writes", "[mysql-snapshot]") {
  struct Case {
    MysqlValueKind kind;
    std::string text;
    std::string json;
  };
  const std::vector<Case> cases = {
      {MysqlValueKind::kNumber, "501", "501"},
      {MysqlValueKind::kNumber, "-42", "-42"},
      {MysqlValueKind::kNumber, "0000000005", "5"},  // ZEROFILL
      {MysqlValueKind::kNumber, "0", "0"},
      {MysqlValueKind::kNumber, "19.90", "19.90"},  // DECIMAL keeps its digits
      {MysqlValueKind::kNumber, "0.01", "0.01"},
      {MysqlValueKind::kNumber, "1e300", "1e300"},
      {MysqlValueKind::kNumber, "18446744073709551615", "18446744073709551615"},
      {MysqlValueKind::kString, "2024-11-21 06:20:42", R"("2024-11-21 06:20:42")"},
      {MysqlValueKind::kString, "say \"hi\"\n\\", R"("say \"hi\"\n\\")"},
      {MysqlValueKind::kString, "h\xc3\xa9llo", "\"h\xc3\xa9llo\""},
      {MysqlValueKind::kBase64, std::string("\x00\xff\x01", 3), R"("AP8B")"},
      {MysqlValueKind::kBase64, "ab", R"("YWI=")"},
      {MysqlValueKind::kBase64, "", R"("")"},
      {MysqlValueKind::kSet, "red,blue", R"(["red","blue"])"},
      {MysqlValueKind::kSet, "", "[]"},
      {MysqlValueKind::kJson, R"({"a":[1,2]})", R"({"a":[1,2]})"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(ValueJson(c.kind, c.text) == c.json);
  }
}

}  // namespace
}  // namespace searchsync
