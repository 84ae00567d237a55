#include "tests/support/prometheus_text.h"

#include <regex>
#include <set>

namespace searchsync::test {

Scrape ParsePrometheus(const std::string& text) {
  Scrape scrape;
  static const std::regex kComment("# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)");
  static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?[0-9]+)?)");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)")re");
  static const std::regex kValue(R"([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf)|NaN)");
  std::set<std::string> finished_families;
  std::string current_family;
  size_t line_number = 0;
  size_t begin = 0;
  if (!text.empty() && text.back() != '\n') scrape.error = "the text does not end with a newline";
  while (begin < text.size() && scrape.error.empty()) {
    const size_t end = text.find('\n', begin);
    const std::string line = text.substr(begin, end - begin);
    begin = end == std::string::npos ? text.size() : end + 1;
    ++line_number;
    const auto fail = [&](const std::string& why) {
      scrape.error = "line " + std::to_string(line_number) + " '" + line + "': " + why;
    };
    std::smatch match;
    if (line.empty()) continue;
    if (line.starts_with("#")) {
      if (!std::regex_match(line, match, kComment)) {
        if (line.starts_with("# HELP") || line.starts_with("# TYPE")) fail("malformed comment");
        continue;
      }
      const std::string family = match[2];
      if (match[1] == "TYPE") {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!kTypes.count(match[3])) fail("unknown type");
        if (scrape.types.count(family)) fail("second TYPE line for the family");
        if (match[3] == "counter" && !family.ends_with("_total")) fail("counter without _total");
        scrape.types[family] = match[3];
      }
      if (family != current_family) {
        if (finished_families.count(family)) fail("family split in two places");
        if (!current_family.empty()) finished_families.insert(current_family);
        current_family = family;
      }
      continue;
    }
    if (!std::regex_match(line, match, kSample)) {
      fail("not a sample line");
      continue;
    }
    const std::string name = match[1];
    if (name != current_family) fail("sample outside its family's block (no TYPE before it?)");
    if (!scrape.types.count(name)) fail("sample before its TYPE line");
    if (match[2].matched) {
      std::string labels = match[3];
      std::set<std::string> seen;
      while (!labels.empty() && scrape.error.empty()) {
        std::smatch label;
        if (!std::regex_search(labels, label, kLabel, std::regex_constants::match_continuous)) {
          fail("bad label near '" + labels + "'");
          break;
        }
        if (!seen.insert(label[1]).second) fail("label repeated");
        labels = labels.substr(static_cast<size_t>(label.length(0)));
        if (labels.starts_with(",")) labels = labels.substr(1);
      }
    }
    const std::string value = match[4];
    if (!std::regex_match(value, kValue)) {
      fail("bad value");
      continue;
    }
    const std::string key = name + (match[2].matched ? std::string(match[2]) : "");
    if (scrape.samples.count(key)) fail("sample repeated");
    scrape.samples[key] = value == "NaN" ? 0 : std::stod(value == "+Inf" ? "inf" : value);
  }
  return scrape;
}

}  // namespace searchsync::test
