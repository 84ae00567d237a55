#include "pipeline/url.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace searchsync {
namespace {

TEST_CASE("Percent-encoding round-trips and refuses malformed escapes", "[url]") {
  CHECK(PercentEncode("a b/c?d#e@f~g") == "a%20b%2Fc%3Fd%23e%40f~g");
  CHECK(PercentEncodedSize("a b/c") == PercentEncode("a b/c").size());
  CHECK(PercentDecode("a%20b%2fc") == std::optional<std::string>("a b/c"));
  CHECK(PercentDecode(PercentEncode("p@ss/w#rd")) == std::optional<std::string>("p@ss/w#rd"));
  for (const char* malformed : {"%", "%4", "a%zz", "%4g"}) {
    INFO(malformed);
    CHECK_FALSE(PercentDecode(malformed));
  }
}

TEST_CASE("The user info ends at the last '@', and unencoded delimiters make it ambiguous",
          "[url]") {
  const auto plain = FindUrlUserInfo("http://admin:s3cret@db:5984");
  REQUIRE(plain);
  CHECK(plain->user == "admin");
  CHECK(plain->password == std::optional<std::string_view>("s3cret"));
  CHECK_FALSE(plain->ambiguous);
  CHECK_FALSE(FindUrlUserInfo("http://db:5984"));
  CHECK_FALSE(FindUrlUserInfo("db@host:5984"));
  for (const char* url : {"http://admin:pa/ss@db:5984", "http://admin:pa#ss@db:5984",
                          "http://admin:pa?ss@db:5984", "postgresql://u:S3C@PG-1@127.0.0.1/db"}) {
    INFO(url);
    const auto info = FindUrlUserInfo(url);
    REQUIRE(info);
    CHECK(info->ambiguous);
    CHECK(info->user == std::string_view(url).substr(info->begin, info->user.size()));
  }
}

TEST_CASE("RedactUrl masks the password, or all of an ambiguous user info", "[url]") {
  struct Case {
    std::string url;
    std::string shown;
  };
  const std::vector<Case> cases = {
      {"http://admin:s3cret@db:5984", "http://admin:***@db:5984"},
      {"http://user@db:5984", "http://user@db:5984"},
      {"http://db:5984", "http://db:5984"},
      {"http://admin:pa%2Fss@db:5984/x?y=1", "http://admin:***@db:5984/x?y=1"},
      {"http://admin:pa/ss@db:5984", "http://***@db:5984"},
      {"http://admin:pa#ss@db:5984", "http://***@db:5984"},
      {"https://admin:p@ss@db:5984", "https://***@db:5984"},
      // Whether "db:5984/a" is a host and a path or a user and a password, nobody can tell.
      {"http://db:5984/a@b", "http://***@b"},
  };
  for (const Case& c : cases) {
    INFO(c.url);
    CHECK(RedactUrl(c.url) == c.shown);
  }
}

TEST_CASE("UrlSecrets gives the password as written, decoded, and in pieces when ambiguous",
          "[url]") {
  CHECK(UrlSecrets("http://db:5984").empty());
  CHECK(UrlSecrets("http://admin@db:5984").empty());
  CHECK(UrlSecrets("http://admin:pa%2Fss@db") == std::vector<std::string>{"pa%2Fss", "pa/ss"});
  // curl reads "http://admin:S3CRET/tail@db" as host admin, port S3CRET, path /tail@db.
  const std::vector<std::string> pieces = UrlSecrets("http://admin:S3CRET/tail#frag@db");
  CHECK(pieces == std::vector<std::string>{"S3CRET/tail#frag", "S3CRET", "tail", "frag"});
}

TEST_CASE("RedactSecrets masks every occurrence, longest secret first", "[url]") {
  const std::vector<std::string> secrets = {"pw", "", "pw-long"};
  CHECK(RedactSecrets("a pw-long b pw c", secrets) == "a *** b *** c");
  CHECK(RedactSecrets("nothing here", secrets) == "nothing here");
}

}  // namespace
}  // namespace searchsync
