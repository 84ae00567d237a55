#include "pipeline/app/reindex_command.h"

#include <catch2/catch.hpp>

namespace searchsync {
namespace {

ReindexProgress Running(uint64_t written, uint64_t expected) {
  return {.id = "products-20261121T031500Z",
          .pipeline = "products",
          .state = "running",
          .phase = "full_read",
          .collection = "products_20261121T031500Z",
          .rows_written = written,
          .rows_expected = expected};
}

TEST_CASE("Reindex progress lines show rows, rows/s and ETA", "[reindex_command]") {
  CHECK(FormatReindexProgress(Running(250'000, 1'000'000), 50'000, false) ==
        "reindex products-20261121T031500Z: full_read  25% 250,000/1,000,000 rows, 50,000 "
        "rows/s, ETA 0:15");
  // Unknown total, and a rate not known yet.
  CHECK(FormatReindexProgress(Running(1'234, 0), -1, false) ==
        "reindex products-20261121T031500Z: full_read 1,234 rows, - rows/s, ETA -");
  // Hours in the ETA; a finished reindex shows its state instead.
  CHECK(FormatReindexProgress(Running(0, 10'000'000), 1'000, false).ends_with("ETA 2:46:40"));
  ReindexProgress done = Running(1'000'000, 1'000'000);
  done.state = "succeeded";
  done.phase = "done";
  CHECK(FormatReindexProgress(done, 80'000, false) ==
        "reindex products-20261121T031500Z: done 100% 1,000,000/1,000,000 rows, 80,000 rows/s, "
        "succeeded");
}

TEST_CASE("Reindex progress bar fills with the rows and fits the width", "[reindex_command]") {
  const std::string half = FormatReindexProgress(Running(500, 1'000), 100, true, 80);
  CHECK(half.size() == 80);
  CHECK(half.starts_with("[##########"));
  const size_t filled = half.find(' ');
  const size_t bar = half.find(']') - 1;
  CHECK(filled - 1 == bar / 2);  // half of the cells
  CHECK(half.find(" 50% 500/1,000 rows  100 rows/s  ETA 0:05  full_read") != std::string::npos);
  const std::string unknown = FormatReindexProgress(Running(12'000, 0), 100, true, 80);
  CHECK(unknown.size() == 80);
  CHECK(std::count(unknown.begin(), unknown.end(), '#') == 1);  // a moving marker
}

}  // namespace
}  // namespace searchsync
