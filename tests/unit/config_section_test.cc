#include "pipeline/config_section.h"

#include <catch2/catch.hpp>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace searchsync {
namespace {

using namespace std::chrono_literals;

// One field of each kind a key can fill, with defaults unlike the neutral values (empty, 0,
// false), so a field left alone is told apart from one the table overwrote.
struct ExampleOptions {
  std::string host = "localhost";
  Secret password;
  bool tls = true;
  int port = 5432;
  size_t page_size = 500;
  size_t buffer = 4 * 1024 * 1024;
  Millis poll_interval{90'000};
  Millis margin{0};
  std::optional<Millis> give_up_after;
  std::vector<std::string> primary_key{"tenant", "id"};
  std::string hand_read = "untouched";
};

constexpr Key<ExampleOptions> kExampleKeyList[] = {
    {"host", KeyType::kString, &ExampleOptions::host, false, "server host"},
    {"password", KeyType::kSecret, &ExampleOptions::password, true, "its password"},
    {"tls", KeyType::kBool, &ExampleOptions::tls, false, ""},
    {"port", KeyType::kInt, &ExampleOptions::port, false, ""},
    {"page_size", KeyType::kInt, &ExampleOptions::page_size, false, ""},
    {"buffer", KeyType::kSize, &ExampleOptions::buffer, false, ""},
    {"poll_interval", KeyType::kDuration, &ExampleOptions::poll_interval, false, ""},
    {"margin", KeyType::kDuration, &ExampleOptions::margin, false, ""},
    {"give_up_after", KeyType::kDuration, &ExampleOptions::give_up_after, false, ""},
    {"primary_key", KeyType::kStringList, &ExampleOptions::primary_key, false, ""},
    {"nested", KeyType::kMapping, kReadByHand, false, "read by hand"},
};
constinit const KeyTable<ExampleOptions> kExampleKeys(kExampleKeyList);

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_CASE("A key table's defaults are its struct's, written as YAML would write them", "[config]") {
  std::vector<std::string> defaults;
  for (const KeySpec& spec : kExampleKeys.specs()) defaults.emplace_back(spec.default_value);
  CHECK(defaults == std::vector<std::string>{"localhost", "", "true", "5432", "500", "4MiB", "90s",
                                             "0s", "", "tenant,id", ""});
  const KeySpec& password = kExampleKeys.specs()[1];
  CHECK(password.name == "password");
  CHECK(password.type == KeyType::kSecret);
  CHECK(password.required);
  CHECK(password.help == "its password");
  // The rendered text reads back as the same value.
  CHECK(ParseDuration(kExampleKeys.specs()[6].default_value) == ExampleOptions{}.poll_interval);
  CHECK(ParseSize(kExampleKeys.specs()[5].default_value) == ExampleOptions{}.buffer);
}

TEST_CASE("DefaultText picks the largest whole unit", "[config]") {
  CHECK(DefaultText(KeyType::kDuration, Millis(60 * 60 * 1000)) == "1h");
  CHECK(DefaultText(KeyType::kDuration, Millis(90 * 60 * 1000)) == "90m");
  CHECK(DefaultText(KeyType::kDuration, Millis(1500)) == "1500ms");
  CHECK(DefaultText(KeyType::kDuration, Millis(2 * 86'400'000)) == "2d");
  CHECK(DefaultText(KeyType::kSize, size_t{64} << 20) == "64MiB");
  CHECK(DefaultText(KeyType::kSize, size_t{1000}) == "1000");
  CHECK(DefaultText(KeyType::kInt, size_t{1} << 20) == "1048576");  // an integer stays one
  CHECK(DefaultText(KeyType::kDuration, std::optional<Millis>()).empty());
}

TEST_CASE("A key table leaves absent keys at their defaults and fills the present ones",
          "[config]") {
  SECTION("absent: every field as the struct's initialiser has it") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load("password: pw\n"), "src", kExampleKeys.specs(),
                          errors);
    const ExampleOptions options = kExampleKeys.Read(section);
    INFO(errors.ToString());
    CHECK(errors.empty());
    const ExampleOptions defaults;
    CHECK(options.host == defaults.host);
    CHECK(options.password.value() == "pw");
    CHECK(options.tls == defaults.tls);
    CHECK(options.port == defaults.port);
    CHECK(options.page_size == defaults.page_size);
    CHECK(options.buffer == defaults.buffer);
    CHECK(options.poll_interval == defaults.poll_interval);
    CHECK(options.margin == defaults.margin);
    CHECK_FALSE(options.give_up_after);
    CHECK(options.primary_key == defaults.primary_key);
    CHECK(options.hand_read == "untouched");
    // The Section getters, used for keys read by hand, agree with the struct.
    CHECK(section.Duration("poll_interval") == defaults.poll_interval);
    CHECK(section.StringList("primary_key") == defaults.primary_key);
  }
  SECTION("present: every field takes the value written") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load(R"(
host: db.internal
password: pw
tls: false
port: 6543
page_size: 20
buffer: 1KiB
poll_interval: 250ms
margin: 2s
give_up_after: 10m
primary_key: sku
nested: { a: b }
)"),
                          "src", kExampleKeys.specs(), errors);
    const ExampleOptions options = kExampleKeys.Read(section);
    INFO(errors.ToString());
    CHECK(errors.empty());
    CHECK(options.host == "db.internal");
    CHECK(options.password.value() == "pw");
    CHECK_FALSE(options.tls);
    CHECK(options.port == 6543);
    CHECK(options.page_size == 20);
    CHECK(options.buffer == 1024);
    CHECK(options.poll_interval == 250ms);
    CHECK(options.margin == 2s);
    CHECK(options.give_up_after == 10min);
    CHECK(options.primary_key == std::vector<std::string>{"sku"});
    CHECK(options.hand_read == "untouched");
  }
  SECTION("`key:` with no value counts as absent") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load("password: pw\nport:\nhost:\n"), "src",
                          kExampleKeys.specs(), errors);
    const ExampleOptions options = kExampleKeys.Read(section);
    CHECK(errors.empty());
    CHECK(options.port == 5432);
    CHECK(options.host == "localhost");
  }
  SECTION("an integer beyond its field's range is clamped to it; the parse function checks") {
    ConfigErrors errors;
    const Section section("s.yaml", YAML::Load("password: pw\nport: 99999999999\npage_size: -3\n"),
                          "src", kExampleKeys.specs(), errors);
    const ExampleOptions options = kExampleKeys.Read(section);
    CHECK(errors.empty());
    CHECK(options.port == std::numeric_limits<int>::max());
    CHECK(options.page_size == 0);
  }
}

TEST_CASE("A key table refuses unknown keys and bad values, and names the fix", "[config]") {
  ConfigErrors errors;
  const Section section("s.yaml", YAML::Load(R"(password: pw
pol_interval: 5s
colour: blue
port: five
)"),
                        "src", kExampleKeys.specs(), errors);
  const ExampleOptions options = kExampleKeys.Read(section);
  CHECK(options.port == ExampleOptions{}.port);  // the bad value's error is recorded; default kept
  CHECK(options.poll_interval == ExampleOptions{}.poll_interval);
  CHECK(Lines(errors.ToString()) ==
        std::vector<std::string>{
            "s.yaml:2:1: unknown key 'pol_interval' (did you mean 'poll_interval'?)",
            "s.yaml:3:1: unknown key 'colour' in src; allowed keys: host, password, tls, port, "
            "page_size, buffer, poll_interval, margin, give_up_after, primary_key, nested",
            "s.yaml:4:7: src.port: expected an integer, got \"five\"",
        });
}

TEST_CASE("A key table's required key is still required", "[config]") {
  ConfigErrors errors;
  const Section section("s.yaml", YAML::Load("host: h\n"), "src", kExampleKeys.specs(), errors);
  CHECK(errors.ToString() == "s.yaml:1:1: src: missing required key 'password' (its password)");
}

}  // namespace
}  // namespace searchsync
