#include "pipeline/refetch.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

namespace searchsync {
namespace {

Event Refetch(const std::string& id, const std::string& position) {
  return Event{.op = Op::kRefetch, .id = id, .position = {position}};
}

// The source of truth: ids it holds, and every call it was asked.
struct FakeTruth {
  std::map<std::string, std::string> rows;  // id -> name
  std::vector<std::vector<std::string>> calls;
  bool fail = false;

  DocumentReader Reader() {
    return [this](std::span<const std::string> ids) -> Result<std::vector<Event>> {
      calls.emplace_back(ids.begin(), ids.end());
      if (fail) return Unavailable("connection lost");
      std::vector<Event> found;
      for (const std::string& id : ids) {
        if (const auto it = rows.find(id); it != rows.end()) {
          found.push_back(Event{.id = id, .document = {{"name", "\"" + it->second + "\""}}});
        }
      }
      return found;
    };
  }
};

TEST_CASE("Refetches become upserts of what the source holds and deletes of what it lost",
          "[refetch]") {
  FakeTruth truth{.rows = {{"a", "A2"}, {"c", "C"}}};
  std::vector<Event> events = {Refetch("a", "p1"), Refetch("b", "p2"),
                               Event{.op = Op::kUpsert, .id = "x", .position = {"p3"}},
                               Refetch("c", "p4")};
  std::vector<bool> superseded;
  RefetchTotals totals;
  REQUIRE(ResolveRefetches(truth.Reader(), events, 2, superseded, totals).ok());
  CHECK(events[0].op == Op::kUpsert);
  CHECK(events[0].document.at(0).json == "\"A2\"");
  CHECK(events[1].op == Op::kDelete);
  CHECK(events[2].op == Op::kUpsert);  // not a refetch: left alone
  CHECK(events[2].document.empty());
  CHECK(events[3].op == Op::kUpsert);
  CHECK(events[3].position.token == "p4");  // positions kept: acked in order
  // Chunks of at most 2 distinct ids.
  CHECK(truth.calls == std::vector<std::vector<std::string>>{{"a", "b"}, {"c"}});
  CHECK(totals.requested == 3);
  CHECK(totals.found == 2);
  CHECK(totals.gone == 1);
  CHECK(totals.reads == 2);
  CHECK(superseded == std::vector<bool>{false, false, false, false});
}

TEST_CASE("A fan-out reads each id once, earlier duplicates are superseded by the last",
          "[refetch]") {
  FakeTruth truth{.rows = {{"a", "A"}}};
  std::vector<Event> events = {Refetch("a", "p1"), Refetch("b", "p2"), Refetch("a", "p3"),
                               Refetch("b", "p4")};
  std::vector<bool> superseded;
  RefetchTotals totals;
  REQUIRE(ResolveRefetches(truth.Reader(), events, 100, superseded, totals).ok());
  CHECK(truth.calls == std::vector<std::vector<std::string>>{{"a", "b"}});
  CHECK(superseded == std::vector<bool>{true, true, false, false});
  CHECK(events[2].op == Op::kUpsert);
  CHECK(events[3].op == Op::kDelete);
  CHECK(totals.duplicates == 2);
}

TEST_CASE("A failed read leaves the page as it was, to be read again", "[refetch]") {
  FakeTruth truth{.rows = {{"a", "A"}}, .fail = true};
  std::vector<Event> events = {Refetch("a", "p1"), Refetch("b", "p2")};
  std::vector<bool> superseded;
  RefetchTotals totals;
  const Status status = ResolveRefetches(truth.Reader(), events, 1, superseded, totals);
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK(events[0].op == Op::kRefetch);
  CHECK(events[1].op == Op::kRefetch);
  CHECK(totals.requested == 0);
}

}  // namespace
}  // namespace searchsync
