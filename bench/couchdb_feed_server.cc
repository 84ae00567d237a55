// couchdb_feed_server: a CouchDB-compatible `_changes` endpoint serving a generated feed of N
// changes, for bench/couchdb_feed.sh. Loading a million documents into pouchdb-server takes
// longer than the benchmark itself, and its feed is slower to serve than searchsync reads it, so
// the benchmark reads a feed generated on the fly instead: each request pays the same generation
// cost whoever reads it (searchsync or curl).
//
//   couchdb_feed_server --changes 1000000 --port 0 --port-file /tmp/feed.port
//
// Change i (1-based) has the CouchDB 3 style sequence "i-g1AAAA..." (a string) and document
// animal-<i> with nested fields; every 20th change deletes an earlier document instead.
// Answers GET /<db>, and GET or POST /<db>/_changes with feed=normal|longpoll|continuous, since
// (the number before '-'), limit, include_docs and heartbeat. Runs until SIGTERM or SIGINT.

#include <httplib.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

namespace {

constexpr std::string_view kSpecies[] = {"cat", "dog", "fox", "owl", "bat"};
constexpr std::string_view kCities[] = {"Berlin", "Lyon", "Oslo", "Porto"};
constexpr int64_t kDeleteEvery = 20;

// Appends change `seq` as one feed row (without a trailing separator).
void AppendRow(int64_t seq, bool include_docs, std::string& out) {
  char rev[40];
  std::snprintf(rev, sizeof(rev), "1-%016llx%016llx",
                static_cast<unsigned long long>(seq * 0x9E3779B97F4A7C15ULL),
                static_cast<unsigned long long>(seq * 0xC2B2AE3D27D4EB4FULL));
  const bool deleted = seq % kDeleteEvery == 0;
  const int64_t doc = deleted ? seq / 2 : seq;
  char row[768];
  int length = std::snprintf(row, sizeof(row),
                             R"({"seq":"%lld-g1AAAAFjeJzLYWBgYMpgTmFQSElKzi9KdUhJMtDLTS3KLElM",)"
                             R"("id":"animal-%lld","changes":[{"rev":"%s"}])",
                             static_cast<long long>(seq), static_cast<long long>(doc), rev);
  out.append(row, static_cast<size_t>(length));
  if (deleted) out += R"(,"deleted":true)";
  if (include_docs) {
    if (deleted) {
      length = std::snprintf(row, sizeof(row),
                             R"(,"doc":{"_id":"animal-%lld","_rev":"%s","_deleted":true})",
                             static_cast<long long>(doc), rev);
    } else {
      length = std::snprintf(
          row, sizeof(row),
          R"(,"doc":{"_id":"animal-%lld","_rev":"%s","name":"Animal %lld","species":"%s",)"
          R"("age":%lld,"tags":["%s","demo"],"owner":{"name":"Owner %lld","city":"%s"}})",
          static_cast<long long>(doc), rev, static_cast<long long>(doc), kSpecies[doc % 5].data(),
          static_cast<long long>(doc % 20), kSpecies[(doc + 1) % 5].data(),
          static_cast<long long>(doc % 1000), kCities[doc % 4].data());
    }
    out.append(row, static_cast<size_t>(length));
  }
  out += "}";
}

std::string SeqToken(int64_t seq) {
  return "\"" + std::to_string(seq) + "-g1AAAAFjeJzLYWBgYMpgTmFQSElKzi9KdUhJMtDLTS3KLElM\"";
}

int64_t ParseSince(const std::string& since) {
  int64_t value = 0;
  for (const char c : since) {
    if (c < '0' || c > '9') break;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp);
    out << port << "\n";
    if (!out) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t changes = 1'000'000;
  int port = 0;
  std::string port_file;
  std::string database = "animals";
  CLI::App app{"Generated CouchDB _changes feed, for benchmarks"};
  app.add_option("--changes", changes, "Changes in the feed")->check(CLI::PositiveNumber);
  app.add_option("--port", port, "Port to listen on; 0 picks a free one");
  app.add_option("--port-file", port_file, "Write the port here once listening");
  app.add_option("--database", database, "Database name");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  httplib::Server server;
  server.Get("/" + database, [&](const httplib::Request&, httplib::Response& reply) {
    reply.set_content(R"({"db_name":")" + database + R"(","update_seq":)" + SeqToken(changes) + "}",
                      "application/json");
  });
  auto changes_handler = [&](const httplib::Request& request, httplib::Response& reply) {
    const std::string feed = request.has_param("feed") ? request.get_param_value("feed") : "normal";
    const int64_t since = ParseSince(request.get_param_value("since"));
    const int64_t limit =
        request.has_param("limit") ? std::stoll(request.get_param_value("limit")) : changes;
    const bool include_docs = request.get_param_value("include_docs") == "true";
    const int64_t first = since + 1;
    const int64_t last = std::min(changes, since + limit);
    if (feed == "continuous") {
      const int heartbeat_ms =
          request.has_param("heartbeat") ? std::stoi(request.get_param_value("heartbeat")) : 60'000;
      reply.set_chunked_content_provider(
          "application/json", [=, next = first](size_t, httplib::DataSink& sink) mutable {
            if (next > last) {
              std::this_thread::sleep_for(std::chrono::milliseconds(heartbeat_ms));
              return sink.write("\n", 1);
            }
            std::string chunk;
            for (int64_t end = std::min(last, next + 999); next <= end; ++next) {
              AppendRow(next, include_docs, chunk);
              chunk += "\n";
            }
            return sink.write(chunk.data(), chunk.size());
          });
      return;
    }
    reply.set_chunked_content_provider(
        "application/json", [=, next = first](size_t, httplib::DataSink& sink) mutable {
          std::string chunk;
          if (next == first) chunk = "{\"results\":[\n";
          if (next > last) {
            chunk += "],\n\"last_seq\":" + SeqToken(std::max(since, last)) +
                     ",\"pending\":" + std::to_string(changes - std::max(since, last)) + "}\n";
            sink.write(chunk.data(), chunk.size());
            sink.done();
            return true;
          }
          for (int64_t end = std::min(last, next + 999); next <= end; ++next) {
            AppendRow(next, include_docs, chunk);
            chunk += next < last ? ",\n" : "\n";
          }
          return sink.write(chunk.data(), chunk.size());
        });
  };
  server.Get("/" + database + "/_changes", changes_handler);
  server.Post("/" + database + "/_changes", changes_handler);

  port = port == 0 ? server.bind_to_any_port("127.0.0.1")
                   : (server.bind_to_port("127.0.0.1", port) ? port : -1);
  if (port < 0) {
    std::cerr << "couchdb_feed_server: cannot listen\n";
    return 1;
  }
  std::thread serving([&] { server.listen_after_bind(); });
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    std::cerr << "couchdb_feed_server: cannot write " << port_file << "\n";
    return 1;
  }
  std::cout << "listening on http://127.0.0.1:" << port << " with " << changes << " changes"
            << std::endl;
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server.stop();
  serving.join();
  return 0;
}
