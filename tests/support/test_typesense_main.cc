// test-typesense: the Typesense-compatible test server as a process, for the demo, benchmarks and
// tests that need a separate server. Runs until SIGTERM or SIGINT, then prints its counters and
// exits 0 (saving its state first with --data-dir). With the write-queue model, SIGUSR1 adds
// --spike-batches chunks to the queue, as a burst of writes from other clients would: writes are
// refused with 503 in windows until the queue drains below --healthy-write-lag.
//
//   test-typesense --port 0 --port-file /tmp/ts.port --write-503-rate 0.1 --seed 7
//   test-typesense --port 8108 --data-dir /tmp/ts --queue-drain 100 --healthy-write-lag 500

#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "tests/support/typesense_server.h"

namespace {

// Writes `port` to `path` through a rename, so a poller never reads a half-written file.
bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp);
    out << port << "\n";
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  searchsync::test::TypesenseServerOptions options;
  options.port = 8108;
  double write_503_rate = 0;
  double drop_rate = 0;
  int latency_ms = 0;
  int jitter_ms = 0;
  double drained_per_second = 0;
  searchsync::test::TypesenseWriteQueueModel queue;
  std::string port_file;
  int64_t spike_batches = 0;

  CLI::App app{"Typesense-compatible test server (a fixture, not Typesense)"};
  app.add_option("--port", options.port, "Port to listen on; 0 picks a free one")
      ->check(CLI::Range(0, 65535));
  app.add_option("--host", options.host, "Address to listen on");
  app.add_option("--api-key", options.api_key, "API key clients must send");
  app.add_flag("--discard", options.discard, "Validate and answer writes, but store nothing");
  app.add_option("--write-503-rate", write_503_rate, "Fraction of writes answered 503")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--drop-rate", drop_rate, "Fraction of writes whose connection is cut")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--latency-ms", latency_ms, "Delay added to every request")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--jitter-ms", jitter_ms, "Random delay up to this, before and after each request")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--queue-drain", drained_per_second,
                 "Model the write queue: chunks indexed per second (0 = no model)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--healthy-write-lag", queue.healthy_write_lag,
                 "With --queue-drain: writes 503 while more chunks than this wait");
  app.add_option("--spike-batches", spike_batches,
                 "With --queue-drain: chunks each SIGUSR1 adds to the write queue")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--data-dir", options.data_dir,
                 "Load the state from DIR/state.json at start, save it there on exit")
      ->check(CLI::ExistingDirectory);
  app.add_option("--seed", options.seed, "Seed for the fault switches' random choices");
  app.add_option("--port-file", port_file, "Write the port here once listening");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  // Block the stop signals before the server starts its threads, so only sigwait() sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  searchsync::test::TypesenseServer server(options);
  server.SetWriteUnavailableRate(write_503_rate);
  server.SetDropRate(drop_rate);
  server.SetLatency(std::chrono::milliseconds(latency_ms));
  server.SetJitter(std::chrono::milliseconds(jitter_ms));
  if (drained_per_second > 0) {
    queue.drained_per_second = drained_per_second;
    server.SetWriteQueueModel(queue);
  }
  if (!port_file.empty() && !WritePortFile(port_file, server.port())) {
    std::cerr << "test-typesense: cannot write " << port_file << "\n";
    return 1;
  }
  std::cout << "listening on " << server.url() << std::endl;

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGUSR1) {
    if (drained_per_second > 0 && spike_batches > 0) server.AddPendingWriteBatches(spike_batches);
  }
  const searchsync::test::TypesenseServerCounters counters = server.Counters();
  std::cout << "stopping: served " << counters.unavailable << " 503s, "
            << counters.Requests(searchsync::test::TypesenseRoute::kImport) << " imports, "
            << counters.documents_written << " documents written, " << counters.documents_deleted
            << " deleted" << std::endl;
  return 0;  // the server's destructor saves the state
}
