#pragma once
// TypesenseServer: an in-process HTTP server that answers like Typesense, for tests, the demo and
// the benchmarks. It is a fixture, never a product feature.
//
// What it copies from the real server (see /work/shared/typesense/API-NOTES.md):
//   - routes, status codes and exact messages, in the three error-body spacing styles;
//   - the order of checks: route (404) -> readiness gate (503) -> API key (401);
//   - per-line import results (v28+ failure-line shape, return_id, return_doc), `reject`
//     validation of documents against the schema, upsert/update/emplace semantics;
//   - filter_by parsing for delete, export and search (backticks, lists, `*` = everything);
//   - aliases, including `DELETE /collections/<alias>` dropping the target collection;
//   - nested fields (enable_nested_fields): `object`/`object[]` values are type-checked, their
//     leaves are flattened into `brand.name`-style fields that the collection's schema lists
//     (`"nested": true`, typed by the first value seen, later values checked against it), and
//     filters, searches and declared fields read those flattened paths;
//   - URL decoding (`+` is a space) and `&&` kept unencoded inside query values.
// What it leaves out: text relevance (a non-`*` query is a case-insensitive substring match),
// facets, sorting beyond `default_sorting_field`, vectors, API-key scopes.
//
// Fault switches (503s, latency, cut connections), a model of the write queue whose lag refuses
// writes in windows of seconds, and counters let tests check a client's retry, backoff and
// pacing; see the members below.
//
// Thread safety: every public member may be called from any thread at any time. Requests run on
// the server's own worker threads; writes to one collection are applied one request at a time.
// Constructing a server sets SIGPIPE to SIG_IGN for the process: a cut connection makes the
// server's next write fail, and that must not kill a test binary.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace searchsync::test {

struct TypesenseServerOptions {
  std::string api_key = "test-key";
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = pick a free port; read it back with port()
  // Benchmark mode: requests are parsed, validated and answered as usual, but no document is
  // stored. Collections and aliases are still kept (imports need a schema). Every document is
  // treated as new, so `create` never answers 409 and `update` never answers 404.
  bool discard = false;
  // Seeds the random choices of the fault switches, so a failing test can be replayed.
  uint64_t seed = 1;
  // Non-empty: an existing directory. The server starts with the collections, documents and
  // aliases of <data_dir>/state.json (when it exists; the format of a snapshot's state.json) and
  // saves its state there when destroyed, so a stopped server restarts with its data, as
  // Typesense does. A file that cannot be loaded exits the process with status 1.
  std::string data_dir;
};

// Typesense's write queue (API-NOTES §2): each write that passes the gate adds its raft chunks
// (one per started 196,605 bytes of body) to `pending_write_batches`, and the indexer drains them
// at a fixed rate. Every `refresh_interval` the readiness flags are recomputed from the queue; a
// flag holds until the next refresh, so writes are refused with 503 in windows, never per request
// at random. /stats.json and /status report the queue.
struct TypesenseWriteQueueModel {
  double drained_per_second = 100;  // chunks indexed per second
  int64_t healthy_write_lag = 500;  // writes 503 while more chunks than this wait
  int64_t healthy_read_lag = 1000;  // reads too, past this
  std::chrono::milliseconds refresh_interval{3000};
};

// The kind of route a request matched; counters are kept per kind.
enum class TypesenseRoute {
  kHealth,          // GET/POST /health
  kCollection,      // create, list, get, alter, drop a collection
  kImport,          // POST /collections/{c}/documents/import
  kExport,          // GET /collections/{c}/documents/export
  kSearch,          // GET /collections/{c}/documents/search
  kDocument,        // single-document POST/GET/PATCH/DELETE
  kDeleteByFilter,  // DELETE /collections/{c}/documents?filter_by=...
  kUpdateByFilter,  // PATCH /collections/{c}/documents?filter_by=...
  kAlias,           // /aliases and /aliases/{a}
  kOperations,      // POST /operations/snapshot
  kStats,           // /stats.json, /metrics.json, /status, /debug
  kNotFound,        // no such route: 404 {"message": "Not Found"}
};
const char* TypesenseRouteName(TypesenseRoute route);  // "import", "delete_by_filter", ...

struct TypesenseServerCounters {
  // Every request seen, by route, including those refused with 503/401 or cut.
  std::map<TypesenseRoute, int64_t> requests;
  int64_t unavailable = 0;           // 503 "Not Ready or Lagging" served (switch or write rate)
  int64_t unauthorized = 0;          // 401 served
  int64_t dropped_before_apply = 0;  // connections cut before the request took effect
  int64_t dropped_after_apply = 0;   // connections cut after the request took effect
  // Documents created, replaced or updated (import lines and single-document writes that
  // succeeded; counted in discard mode too) and documents deleted.
  int64_t documents_written = 0;
  int64_t documents_deleted = 0;
  // The most write requests the server was serving at one moment (received, not yet answered).
  int64_t writes_in_flight_peak = 0;

  int64_t Requests(TypesenseRoute route) const {
    const auto it = requests.find(route);
    return it == requests.end() ? 0 : it->second;
  }
};

// What a proxy in front of the server answers in its place (SetProxyReply).
struct TypesenseProxyReply {
  TypesenseRoute route = TypesenseRoute::kImport;  // the requests it answers
  int status = 301;
  std::string location;       // sent as the Location header when not empty
  std::string body;           // sent as text/html
  size_t min_body_bytes = 0;  // only requests whose body is at least this long (a body limit)
};

// One write request (any non-GET on /collections/** or /aliases/**), whatever its outcome.
struct TypesenseWriteAttempt {
  std::chrono::steady_clock::time_point at;  // when the request arrived
  std::string method;
  std::string path;  // raw, without the query string
  TypesenseRoute route;
  int status = 0;  // HTTP status sent; 0 when the connection was cut
  // The request reached its handler, so whatever it does took effect (also when the connection
  // was cut afterwards). False for 503, 401 and cuts before applying.
  bool handled = false;
};

class TypesenseServer {
 public:
  // Binds and starts serving on worker threads; clients may connect as soon as this returns.
  // If the address cannot be bound, prints the reason to stderr and exits the process with
  // status 1 (a fixture has no useful way to go on).
  explicit TypesenseServer(TypesenseServerOptions options);
  // Stops accepting, interrupts injected latency and joins the workers.
  ~TypesenseServer();
  TypesenseServer(const TypesenseServer&) = delete;
  TypesenseServer& operator=(const TypesenseServer&) = delete;

  int port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"
  const std::string& api_key() const;

  // ---- Fault switches -------------------------------------------------------------------------
  // Fraction [0, 1] of write requests answered 503 {"message": "Not Ready or Lagging"}. Like the
  // real readiness gate this runs before authentication, and reads are not affected.
  void SetWriteUnavailableRate(double rate);
  // While down, every gated request (/collections/**, /aliases/**) gets that 503 and
  // GET /health answers 503 {"ok":false}.
  void SetUnavailable(bool down);
  // Delay added to every request before it is handled.
  void SetLatency(std::chrono::milliseconds latency);
  // Fraction [0, 1] of authenticated write requests whose connection is cut with no response:
  // half of them (chosen at random) before the request takes effect, half after. The client
  // sees a connection error (libcurl: CURLE_GOT_NOTHING or CURLE_RECV_ERROR), never a status,
  // so it cannot tell the two apart and has to retry idempotently.
  void SetDropRate(double rate);
  // A proxy in front of the server: requests of `reply->route` (with a body of at least
  // `min_body_bytes`) get its answer and never reach the server, e.g. 301 to another URL, or
  // 413 for bodies over nginx's client_max_body_size. It answers before the readiness gate and
  // authentication. nullopt removes it.
  void SetProxyReply(std::optional<TypesenseProxyReply> reply);
  // Import lines whose document id is a key of `results` are not applied; that result line is
  // answered instead, e.g. {"code":500,"error":"Could not write to on-disk storage.",
  // "success":false}. The other lines of the import are applied as usual. Empty clears.
  void SetImportLineResults(std::map<std::string, nlohmann::json> results);
  // Each request waits a random time in [0, max] before it reaches the server (the way in), then
  // another before its answer leaves (the way back). Writes take effect one at a time in the
  // order they reach the server, like the raft log: requests sent together may be applied in
  // either order and answered in either order. Zero turns it off.
  void SetJitter(std::chrono::milliseconds max);

  // ---- Write queue (see TypesenseWriteQueueModel) -------------------------------------------
  // Turns the model on (the queue starts empty) or off (nullopt: no lag, nothing refused).
  void SetWriteQueueModel(std::optional<TypesenseWriteQueueModel> model);
  // Adds chunks as if other clients had written them: a load spike. Needs the model on.
  void AddPendingWriteBatches(int64_t chunks);
  int64_t PendingWriteBatches() const;  // what /stats.json reports now
  bool WritesRefusedForLag() const;     // the model's write flag says "lagging" right now

  // ---- Holding imports ----------------------------------------------------------------------
  // While on, every import that passes the gate and takes effect then waits, unanswered, until
  // HoldImports(false) (or the server stops): a test can kill the client while the request is
  // open and know the write landed without an acknowledgement.
  void HoldImports(bool hold);
  int HeldImports() const;  // imports waiting now

  // ---- Counters ---------------------------------------------------------------------------
  TypesenseServerCounters Counters() const;  // a copy
  // Write attempts in arrival order; the oldest are forgotten beyond 100,000 entries.
  std::vector<TypesenseWriteAttempt> WriteAttempts() const;
  void ResetCounters();  // counters and the write-attempt log

  // ---- Inspection (bypasses HTTP, faults and auth) ------------------------------------------
  // Stored documents of a collection, or of the collection an alias points to, keyed by id.
  // nullopt when there is no such collection.
  std::optional<std::map<std::string, nlohmann::json>> Documents(const std::string& name) const;
  std::optional<nlohmann::json> Document(const std::string& name, const std::string& id) const;
  // The collection summary that GET /collections/{name} would return; nullopt when absent.
  std::optional<nlohmann::json> Collection(const std::string& name) const;
  std::vector<std::string> CollectionNames() const;    // real names, sorted
  std::map<std::string, std::string> Aliases() const;  // alias -> collection name

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace searchsync::test
