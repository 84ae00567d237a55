#pragma once
// TypesenseClient: the HTTP calls searchsync makes to Typesense (through HttpClient), with
// failover across nodes. Every non-2xx outcome goes through ClassifyHttpResult
// (typesense_http_result.h), so each error means one action: kUnavailable retry,
// kFailedPrecondition stop (key refused, collection missing), kInvalidArgument fix the request.
//
// Thread safety: all methods may be called from any number of threads at once. Connections
// are kept alive between calls (HttpClient's handle pool).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/net/http_client.h"
#include "pipeline/status.h"

namespace searchsync {

struct TypesenseClientOptions {
  // "http://host:port", tried in order from the last node that answered; each at most once
  // per call. With none, every call fails with kFailedPrecondition.
  std::vector<std::string> nodes;
  Secret api_key;  // sent as X-TYPESENSE-API-KEY; never logged
  // Whole-call limit for imports, deletes and exports. A timed-out import may still be applied
  // by the server; upserts make the retry harmless.
  Millis timeout{60 * 60 * 1000};
  // Whole-call limit for small calls (health, aliases, collections); capped by `timeout`.
  Millis control_timeout{30'000};
  Millis connect_timeout{5'000};
};

// The client options of a configuration's `typesense` section (default small-call limits).
TypesenseClientOptions ClientOptionsOf(const TypesenseOptions& typesense);

// What GET /collections[/{name}] says of one collection.
struct CollectionInfo {
  std::string name;
  uint64_t num_documents = 0;
  int64_t created_at = 0;   // unix seconds
  std::string schema_json;  // the server's whole answer for this collection (compact JSON)
};

class TypesenseClient {
 public:
  // `component` names the owner in logs, e.g. "pipeline=products sink=typesense".
  TypesenseClient(TypesenseClientOptions options, std::string component);
  ~TypesenseClient();
  TypesenseClient(const TypesenseClient&) = delete;
  TypesenseClient& operator=(const TypesenseClient&) = delete;

  // Which whole-call limit a request gets: control_timeout or timeout.
  enum class Timeout { kControl, kBulk };

  // One request, with failover: when a node's outcome classifies as kUnavailable (connection
  // error, timeout, 429, 5xx), the next node is tried. Returns the first response that is not
  // kUnavailable, whatever its status (the caller decides what a 404 means), or the last
  // kUnavailable status when every node failed. `target` is the path and query, already
  // percent-encoded. `body` is sent when non-empty (or when `method` is POST or PUT).
  Result<HttpResponse> Send(std::string_view method, std::string_view target,
                            std::string_view body = {}, std::string_view content_type = {},
                            Timeout timeout = Timeout::kControl);

  // Send, then ClassifyHttpResult: OK only for 2xx.
  Result<HttpResponse> Call(std::string_view method, std::string_view target,
                            std::string_view body = {}, std::string_view content_type = {},
                            Timeout timeout = Timeout::kControl);

  // GET /health answers {"ok":true} and GET /aliases accepts the API key.
  Status Health();

  // The collection `alias` points to; nullopt when there is no such alias.
  Result<std::optional<std::string>> GetAlias(std::string_view alias);
  // Points `alias` at `collection` (creates or moves it; atomic for readers).
  Status PutAlias(std::string_view alias, std::string_view collection);

  // Whether GET /collections/{name} finds it (a real collection, or an alias to one).
  Result<bool> CollectionExists(std::string_view name);
  // POST /collections with a full schema (including "name"). 409 (exists) is an error.
  Status CreateCollection(std::string_view schema_json);
  // GET /collections/{name}; nullopt when there is none. An alias name resolves to its target.
  Result<std::optional<CollectionInfo>> GetCollection(std::string_view name);
  // GET /collections: every real collection (aliases are not listed).
  Result<std::vector<CollectionInfo>> ListCollections();
  // DELETE /collections/{name} with the real name; a collection already gone is fine. Never
  // pass an alias: Typesense resolves it and drops the collection it points at.
  Status DropCollection(std::string_view name);

  // POST /collections/{c}/documents/import?action=<action> with a JSONL body; returns the
  // response body (one result line per document line) of the 200.
  Result<std::string> Import(std::string_view collection, std::string_view jsonl,
                             std::string_view action = "upsert");
  // DELETE by an already percent-encoded filter_by value (see PlanDeletes).
  Status DeleteByFilter(std::string_view collection, std::string_view encoded_filter);
  // DELETE one document; a document that is already gone is fine.
  Status DeleteDocument(std::string_view collection, std::string_view id);

  // GET /collections/{c}/documents/export, streamed: `on_document` gets each document line
  // (compact JSON) in order. A non-OK status from `on_document` stops the export and is
  // returned. Fails over to another node only before the first document was delivered.
  Status Export(std::string_view collection,
                const std::function<Status(std::string_view document)>& on_document);

 private:
  struct Exchange;
  using BodySink = std::function<bool(std::string_view chunk)>;

  // One attempt against one node. With `on_body`, the body of a 2xx response goes to it as it
  // arrives (returning false aborts the transfer) instead of into Exchange::body.
  Exchange Perform(const std::string& node, std::string_view method, std::string_view target,
                   std::string_view body, std::string_view content_type, Timeout timeout,
                   const BodySink* on_body);
  void LogFailover(const std::string& node, const Status& status);
  Result<HttpResponse> SendVia(std::string_view method, std::string_view target,
                               std::string_view body, std::string_view content_type,
                               Timeout timeout, const BodySink* on_body);

  const TypesenseClientOptions options_;
  const std::string component_;
  std::unique_ptr<HttpClient> http_;
  std::atomic<size_t> preferred_node_{0};  // the last node that answered
  // Failover warnings are logged at most once per interval, with a count.
  std::atomic<int64_t> failovers_{0};
  std::atomic<int64_t> next_failover_log_ms_{0};
};

}  // namespace searchsync
