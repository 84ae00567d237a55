// The Typesense encoder: JSONL import bodies and import-result parsing, no I/O.
//   bench_encode [documents]

#include "bench/bench_common.h"
#include "sinks/typesense_encode.h"

int main(int argc, char** argv) {
  using namespace searchsync;
  using namespace searchsync::bench;
  const size_t documents = argc > 1 ? std::stoul(argv[1]) : 1'000'000;
  constexpr size_t kBatch = 10'000;
  PrintHeader("bench_encode", std::to_string(documents) + " documents, 6 fields, batches of 10000",
              0);
  Batch batch;
  for (size_t i = 0; i < kBatch; ++i) {
    batch.events.push_back({.id = "product-" + std::to_string(i),
                            .document = {{"name", "\"product name " + std::to_string(i) + "\""},
                                         {"price", "19.99"},
                                         {"tags", "[\"tag1\",\"all\"]"},
                                         {"popularity", std::to_string(i)},
                                         {"updated_at", "\"2026-11-21T05:00:00.123456Z\""},
                                         {"in_stock", "true"}}});
  }
  size_t bytes = 0;
  Stopwatch encode_watch;
  ImportBody body;
  for (size_t done = 0; done < documents; done += kBatch) {
    body = EncodeUpserts(batch);
    bytes += body.jsonl.size();
  }
  Report("encode jsonl", documents, bytes, encode_watch.Seconds());

  std::string response;
  for (size_t i = 0; i < kBatch; ++i) response += i ? "\n{\"success\":true}" : "{\"success\":true}";
  Stopwatch parse_watch;
  for (size_t done = 0; done < documents; done += kBatch) {
    auto report = ParseImportResponse(response, body.line_events);
    if (!report.ok()) return 1;
  }
  Report("parse import results", documents, response.size() * (documents / kBatch),
         parse_watch.Seconds());
}
