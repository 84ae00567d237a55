#include "transforms/transforms.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"

namespace searchsync {
namespace {

Event Upsert(Document document) {
  return Event{.op = Op::kUpsert, .id = "id-1", .document = std::move(document)};
}

// Parses `yaml` with `parse` and applies the result; fails the test on config errors.
Result<Event> Apply(ParseTransformFn parse, const std::string& yaml, Event event) {
  ConfigErrors errors;
  const Section where("t.yaml", YAML::Node(), "", {}, errors);
  const Transform transform = parse(YAML::Load(yaml), "transforms[0]", where);
  INFO(errors.ToString());
  REQUIRE(errors.empty());
  REQUIRE(transform);
  return transform(std::move(event));
}

// The config errors `parse` records for `yaml`; the transform must come back empty.
std::vector<std::string> ConfigErrorsOf(ParseTransformFn parse, const std::string& yaml) {
  ConfigErrors errors;
  const Section where("t.yaml", YAML::Node(), "", {}, errors);
  const Transform transform = parse(YAML::Load(yaml), "transforms[0]", where);
  CHECK_FALSE(transform);
  std::vector<std::string> out;
  for (const ConfigError& error : errors.all()) out.push_back(error.ToString());
  return out;
}

std::string Fields(const Document& document) {
  std::string out;
  for (const Field& field : document) out += field.name + "=" + field.json + " ";
  return out;
}

struct DocumentCase {
  std::string config;
  Document input;
  Document expected;
};

void RunCases(ParseTransformFn parse, const std::vector<DocumentCase>& cases) {
  for (const DocumentCase& test : cases) {
    INFO(test.config << " on " << Fields(test.input));
    const Result<Event> output = Apply(parse, test.config, Upsert(test.input));
    REQUIRE(output.ok());
    CHECK(output->id == "id-1");
    CHECK(Fields(output->document) == Fields(test.expected));
  }
}

}  // namespace

TEST_CASE("rename renames fields at once and never touches the id", "[transforms]") {
  RunCases(&ParseRename, {
                             {"{ product_name: name }",
                              {{"id", "1"}, {"product_name", R"("Tea")"}, {"price", "4"}},
                              {{"id", "1"}, {"name", R"("Tea")"}, {"price", "4"}}},
                             {"{ missing: name }", {{"a", "1"}}, {{"a", "1"}}},
                             {"{ a: b, b: a }", {{"a", "1"}, {"b", "2"}}, {{"b", "1"}, {"a", "2"}}},
                             {"{ a: b }", {{"a", "1"}, {"b", "2"}}, {{"b", "1"}}},
                             {"{ a: b }", {{"b", "2"}}, {{"b", "2"}}},
                             {"{ id: product_id }", {{"id", "7"}}, {{"product_id", "7"}}},
                         });
}

TEST_CASE("drop removes the listed fields", "[transforms]") {
  RunCases(&ParseDrop, {
                           {"[internal_notes, cost]",
                            {{"name", "1"}, {"internal_notes", "2"}, {"cost", "3"}},
                            {{"name", "1"}}},
                           {"internal_notes", {{"internal_notes", "2"}, {"a", "1"}}, {{"a", "1"}}},
                           {"[absent]", {{"a", "1"}}, {{"a", "1"}}},
                       });
}

TEST_CASE("Transforms pass deletes through untouched", "[transforms]") {
  const Event deletion{.op = Op::kDelete, .id = "id-9", .document = {{"a", R"("x")"}}};
  for (const auto& [parse, config] : std::vector<std::pair<ParseTransformFn, std::string>>{
           {&ParseRename, "{ a: b }"}, {&ParseDrop, "[a]"}, {&ParseCast, "{ a: int32 }"}}) {
    INFO(config);
    const Result<Event> output = Apply(parse, config, deletion);
    REQUIRE(output.ok());
    CHECK(output->op == Op::kDelete);
    CHECK(output->id == "id-9");
    CHECK(Fields(output->document) == Fields(deletion.document));
  }
}

TEST_CASE("cast converts values to Typesense types", "[transforms]") {
  struct Case {
    std::string input;
    CastType type;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // string
      {R"("text")", CastType::kString, R"("text")"},
      {"42", CastType::kString, R"("42")"},
      {"-9223372036854775808", CastType::kString, R"("-9223372036854775808")"},
      {"18446744073709551615", CastType::kString, R"("18446744073709551615")"},
      {"4.50", CastType::kString, R"("4.5")"},
      {"true", CastType::kString, R"("true")"},
      {R"({"a": [1, 2]})", CastType::kString, R"("{\"a\":[1,2]}")"},
      {"[1,2]", CastType::kString, R"("[1,2]")"},
      {"null", CastType::kString, "null"},
      // int32 / int64
      {"42", CastType::kInt32, "42"},
      {R"("42")", CastType::kInt32, "42"},
      {R"(" -42 ")", CastType::kInt32, "-42"},
      {R"("+7")", CastType::kInt64, "7"},
      {"3.0", CastType::kInt32, "3"},
      {R"("3.0")", CastType::kInt64, "3"},
      {"1e3", CastType::kInt64, "1000"},
      {"-2147483648", CastType::kInt32, "-2147483648"},
      {"9223372036854775807", CastType::kInt64, "9223372036854775807"},
      {R"("9007199254740993")", CastType::kInt64, "9007199254740993"},
      {"null", CastType::kInt64, "null"},
      // float
      {"4.5", CastType::kFloat, "4.5"},
      {"4", CastType::kFloat, "4"},
      {"9007199254740993", CastType::kFloat, "9007199254740993"},
      {R"("4.50")", CastType::kFloat, "4.5"},
      {R"("0.1")", CastType::kFloat, "0.1"},
      {R"("1e-7")", CastType::kFloat, "1e-07"},
      {R"("12")", CastType::kFloat, "12"},
      // bool
      {"true", CastType::kBool, "true"},
      {R"("TRUE")", CastType::kBool, "true"},
      {R"("False")", CastType::kBool, "false"},
      {R"("t")", CastType::kBool, "true"},
      {R"("f")", CastType::kBool, "false"},
      {"1", CastType::kBool, "true"},
      {"0", CastType::kBool, "false"},
      {R"("1")", CastType::kBool, "true"},
      // object
      {R"({"a": 1})", CastType::kObject, R"({"a": 1})"},
      // arrays
      {R"(["a", 1, true])", CastType::kStringArray, R"(["a","1","true"])"},
      {R"("one")", CastType::kStringArray, R"(["one"])"},
      {R"("{a,b}")", CastType::kStringArray, R"(["{a,b}"])"},
      {R"([1, "2", 3.0, null])", CastType::kInt32Array, "[1,2,3]"},
      {"[]", CastType::kInt64Array, "[]"},
      {"7", CastType::kInt64Array, "[7]"},
      {R"(["1.5", 2])", CastType::kFloatArray, "[1.5,2]"},
      {R"(["t", "f", true, 0])", CastType::kBoolArray, "[true,false,true,false]"},
      {R"([{"a":1}, {"b":[2]}])", CastType::kObjectArray, R"([{"a":1},{"b":[2]}])"},
      {R"({"a":1})", CastType::kObjectArray, R"([{"a":1}])"},
      {"null", CastType::kStringArray, "null"},
  };
  for (const Case& test : cases) {
    INFO(test.input << " to " << CastTypeName(test.type));
    const Result<std::string> output = CastJson(test.input, test.type);
    INFO(output.status().message());
    REQUIRE(output.ok());
    CHECK(*output == test.expected);
  }
}

TEST_CASE("cast refuses values it cannot convert exactly", "[transforms]") {
  struct Case {
    std::string input;
    CastType type;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"3.5", CastType::kInt32, "cannot be converted to int32 (not an integer): 3.5"},
      {R"("3.5")", CastType::kInt64, R"(cannot be converted to int64 (not an integer): "3.5")"},
      {"3000000000", CastType::kInt32, "cannot be converted to int32 (out of range): 3000000000"},
      {"18446744073709551615", CastType::kInt64,
       "cannot be converted to int64 (out of range): 18446744073709551615"},
      {R"("99999999999999999999")", CastType::kInt64,
       R"(cannot be converted to int64 (out of range): "99999999999999999999")"},
      {"1e300", CastType::kInt64, "cannot be converted to int64 (out of range): 1e300"},
      {R"("abc")", CastType::kInt64, R"(cannot be converted to int64: "abc")"},
      {R"("")", CastType::kInt32, R"(cannot be converted to int32: "")"},
      {"true", CastType::kInt32, "cannot be converted to int32: true"},
      {R"("abc")", CastType::kFloat, R"(cannot be converted to float: "abc")"},
      {R"("nan")", CastType::kFloat, R"(cannot be converted to float: "nan")"},
      {R"({"a":1})", CastType::kFloat, R"(cannot be converted to float: {"a":1})"},
      {R"("yes")", CastType::kBool, R"(cannot be converted to bool: "yes")"},
      {"2", CastType::kBool, "cannot be converted to bool: 2"},
      {"[1]", CastType::kObject, "cannot be converted to object: [1]"},
      {R"([1, "x"])", CastType::kInt32Array,
       R"(cannot be converted to int32[] (element 1 is "x"): [1, "x"])"},
      {"[1, 2.5]", CastType::kInt64Array,
       "cannot be converted to int64[] (element 1: not an integer): [1, 2.5]"},
      {"[1]", CastType::kObjectArray, "cannot be converted to object[] (element 0 is 1): [1]"},
      {"{", CastType::kString, "cannot be converted to string (invalid JSON): {"},
      {'"' + std::string(100, 'x') + '"', CastType::kInt32,
       "cannot be converted to int32: \"" + std::string(63, 'x') + "..."},
  };
  for (const Case& test : cases) {
    INFO(test.input << " to " << CastTypeName(test.type));
    const Result<std::string> output = CastJson(test.input, test.type);
    REQUIRE_FALSE(output.ok());
    CHECK(output.status().code() == StatusCode::kInvalidArgument);
    CHECK(output.status().message() == test.message);
  }
}

TEST_CASE("cast converts the named fields and fails the event on a bad value", "[transforms]") {
  RunCases(&ParseCast,
           {
               {"{ price: float, tags: \"string[]\", stock: int32 }",
                {{"price", R"("4.50")"}, {"tags", R"("tea")"}, {"stock", "null"}, {"name", "1"}},
                {{"price", "4.5"}, {"tags", R"(["tea"])"}, {"stock", "null"}, {"name", "1"}}},
               {"{ absent: int64 }", {{"a", "1"}}, {{"a", "1"}}},
           });
  const Result<Event> output =
      Apply(&ParseCast, "{ price: float }", Upsert({{"price", R"("four")"}}));
  REQUIRE_FALSE(output.ok());
  CHECK(output.status().code() == StatusCode::kInvalidArgument);
  CHECK(output.status().message() == R"(cast: field 'price' cannot be converted to float: "four")");
}

TEST_CASE("cast skips parsing numbers already of the type and gives what the parser gives",
          "[transforms]") {
  // Inputs on both sides of the shortcut's limits: each must come out of the transform exactly
  // as CastJson (which always parses) converts it, or fail the same way.
  const std::vector<std::string> inputs = {
      "0",
      "-0",
      "7",
      "-7",
      "012",
      "1.",
      ".5",
      "1.50",
      "-0.0",
      "123456789",
      "1234567890",
      "-2147483648",
      "2147483647",
      "2147483648",
      "1e3",
      "1E-2",
      "4.0",
      "- 1",
      "12.99",
      "1.5x",
      "",
      "-",
      "999999999999999999",
      "9999999999999999999",
      "123456789012345678901234567890.5",
      "1234567890123456789012345678901",
  };
  for (const char* type : {"int32", "int64", "float"}) {
    for (const std::string& input : inputs) {
      INFO(type << " " << input);
      const Result<std::string> parsed = CastJson(input, *CastTypeFromName(type));
      const Result<Event> output =
          Apply(&ParseCast, std::string("{ v: ") + type + " }", Upsert({{"v", input}}));
      REQUIRE(output.ok() == parsed.ok());
      if (parsed.ok()) CHECK(output->document.at(0).json == *parsed);
    }
  }
}

TEST_CASE("Transform config errors are recorded with a suggestion", "[transforms]") {
  CHECK(ConfigErrorsOf(&ParseCast, "{ price: flaot, n: int, x: text, y: [int32] }") ==
        std::vector<std::string>{
            "t.yaml:1:10: transforms[0].price: unknown type \"flaot\" (did you mean 'float'?)",
            "t.yaml:1:20: transforms[0].n: unknown type \"int\" (did you mean 'int32'?)",
            "t.yaml:1:28: transforms[0].x: unknown type \"text\"; types: string, int32, int64, "
            "float, bool, object, string[], int32[], int64[], float[], bool[], object[]",
            "t.yaml:1:37: transforms[0].y: expected a type name like float or string[], got a "
            "sequence",
        });
  CHECK(ConfigErrorsOf(&ParseCast, "[price]") ==
        std::vector<std::string>{"t.yaml:1:1: transforms[0]: expected a mapping of field: type, "
                                 "like { price: float, tags: \"string[]\" }"});
  CHECK(ConfigErrorsOf(&ParseRename, "{ a: c, b: c, d: [x] }") ==
        std::vector<std::string>{
            "t.yaml:1:9: transforms[0].b: both 'a' and 'b' are renamed to 'c'",
            "t.yaml:1:18: transforms[0].d: expected the new field name",
        });
  CHECK(ConfigErrorsOf(&ParseRename, "[a, b]") ==
        std::vector<std::string>{"t.yaml:1:1: transforms[0]: expected a mapping of field names, "
                                 "like { old_name: new_name }"});
  CHECK(ConfigErrorsOf(&ParseDrop, "{ a: b }") ==
        std::vector<std::string>{"t.yaml:1:1: transforms[0]: expected a list of field names, "
                                 "like [internal_notes]"});
  CHECK(ConfigErrorsOf(&ParseDrop, "[a, {b: c}]") ==
        std::vector<std::string>{"t.yaml:1:5: transforms[0][1]: expected a field name"});
}

}  // namespace searchsync
