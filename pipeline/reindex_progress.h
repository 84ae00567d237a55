#pragma once
// What a reindex reports while it runs and when it ended: the admin API shows it
// (pipeline/admin_server.h); the reindex itself is the application's (pipeline/app/reindex.h).

#include <cstdint>
#include <string>

namespace searchsync {

struct ReindexProgress {
  std::string id;  // unique per reindex, e.g. "products-20261121T031500Z"
  std::string pipeline;
  std::string state;       // running | succeeded | failed | cancelled
  std::string phase;       // full_read | catching_up | verifying | swapping | done
  std::string collection;  // the new collection
  uint64_t rows_written = 0;
  uint64_t rows_expected = 0;  // 0 when the source cannot count
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;  // 0 while running
  std::string error;
};

}  // namespace searchsync
