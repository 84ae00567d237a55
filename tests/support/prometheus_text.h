#pragma once
// A strict reader of the Prometheus text exposition format (0.0.4), for tests of /metrics: it
// checks every line the way a scraper would, and returns the samples.

#include <map>
#include <string>

namespace searchsync::test {

struct Scrape {
  std::string error;  // the first line that breaks the format, with why; empty when valid
  std::map<std::string, std::string> types;  // family -> counter | gauge | ...
  // "name{label=\"value\",...}" exactly as written -> value
  std::map<std::string, double> samples;

  double Value(const std::string& key) const {
    const auto it = samples.find(key);
    return it == samples.end() ? -1 : it->second;
  }
};

// Checks every line: HELP/TYPE comments, metric and label names, label value escapes, values;
// one TYPE per family, before its samples; a family's samples together; counters end in _total.
Scrape ParsePrometheus(const std::string& text);

}  // namespace searchsync::test
