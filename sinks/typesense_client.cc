#include "sinks/typesense_client.h"

#include <simdjson.h>

#include <algorithm>
#include <mutex>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/metrics.h"
#include "sinks/typesense_encode.h"
#include "sinks/typesense_http_result.h"

namespace searchsync {

namespace {

constexpr std::chrono::milliseconds kFailoverLogInterval{30'000};

// "typesense POST /collections/products/documents/import": the method and path, without the
// query string (a delete filter can be 64 KiB long).
std::string CallContext(std::string_view method, std::string_view target) {
  return "typesense " + std::string(method) + " " + std::string(target.substr(0, target.find('?')));
}

std::string CollectionPath(std::string_view collection) {
  return "/collections/" + PercentEncode(collection);
}

}  // namespace

struct TypesenseClient::Exchange {
  std::string transport_error;  // set when no complete response arrived
  HttpResponse response;
};

TypesenseClient::TypesenseClient(TypesenseClientOptions options, std::string component)
    : options_(std::move(options)),
      component_(std::move(component)),
      http_(std::make_unique<HttpClient>()) {}

TypesenseClientOptions ClientOptionsOf(const TypesenseOptions& typesense) {
  return {.nodes = typesense.nodes, .api_key = typesense.api_key, .timeout = typesense.timeout};
}

TypesenseClient::~TypesenseClient() = default;

TypesenseClient::Exchange TypesenseClient::Perform(const std::string& node, std::string_view method,
                                                   std::string_view target, std::string_view body,
                                                   std::string_view content_type, Timeout timeout,
                                                   const BodySink* on_body) {
  std::string url = node;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += target;
  HttpRequest request{.method = std::string(method),
                      .url = std::move(url),
                      .headers = {"X-TYPESENSE-API-KEY: " + options_.api_key.value()},
                      .body = body,
                      .connect_timeout = options_.connect_timeout,
                      .timeout = timeout == Timeout::kBulk
                                     ? options_.timeout
                                     : std::min(options_.control_timeout, options_.timeout)};
  if (!content_type.empty()) {
    request.headers.push_back("Content-Type: " + std::string(content_type));
  }
  if (on_body != nullptr) request.on_body = *on_body;
  Exchange exchange;
  Result<HttpResponse> response = http_->Send(request);
  if (response.ok()) {
    exchange.response = std::move(*response);
  } else {
    exchange.transport_error = response.status().message();
  }
  if (!exchange.response.aborted) TypesenseResponses().Count(exchange.response.status);
  return exchange;
}

void TypesenseClient::LogFailover(const std::string& node, const Status& status) {
  const int64_t failovers = failovers_.fetch_add(1) + 1;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  int64_t next_ms = next_failover_log_ms_.load();
  if (now_ms < next_ms || !next_failover_log_ms_.compare_exchange_strong(
                              next_ms, now_ms + kFailoverLogInterval.count())) {
    return;
  }
  Log(LogLevel::kWarn, component_,
      "typesense node failed, trying the next one: node=" + node +
          " failovers=" + std::to_string(failovers) + " error=" + JsonString(status.message()));
}

Result<HttpResponse> TypesenseClient::SendVia(std::string_view method, std::string_view target,
                                              std::string_view body, std::string_view content_type,
                                              Timeout timeout, const BodySink* on_body) {
  const std::string context = CallContext(method, target);
  const size_t node_count = options_.nodes.size();
  if (node_count == 0) return FailedPrecondition(context + ": no typesense.nodes configured");

  const size_t first = preferred_node_.load() % node_count;
  Status last_error;
  for (size_t attempt = 0; attempt < node_count; ++attempt) {
    const size_t node_idx = (first + attempt) % node_count;
    const std::string& node = options_.nodes[node_idx];
    Exchange exchange = Perform(node, method, target, body, content_type, timeout, on_body);
    HttpResponse& response = exchange.response;
    if (response.aborted) return HttpResponse{.status = response.status};
    Status status = ClassifyHttpResult(context, exchange.transport_error, response.status,
                                       response.body, response.redirect_to);
    if (status.code() != StatusCode::kUnavailable) {
      preferred_node_.store(node_idx);
      return HttpResponse{.status = response.status, .body = std::move(response.body)};
    }
    const bool can_fail_over = attempt + 1 < node_count && !response.body_delivered;
    if (!can_fail_over) return status;
    LogFailover(node, status);
    last_error = std::move(status);
  }
  return last_error;
}

Result<HttpResponse> TypesenseClient::Send(std::string_view method, std::string_view target,
                                           std::string_view body, std::string_view content_type,
                                           Timeout timeout) {
  return SendVia(method, target, body, content_type, timeout, nullptr);
}

Result<HttpResponse> TypesenseClient::Call(std::string_view method, std::string_view target,
                                           std::string_view body, std::string_view content_type,
                                           Timeout timeout) {
  Result<HttpResponse> response = Send(method, target, body, content_type, timeout);
  if (!response.ok()) return response;
  Status status =
      ClassifyHttpResult(CallContext(method, target), "", response->status, response->body);
  if (!status.ok()) return status;
  return response;
}

Status TypesenseClient::Health() {
  Result<HttpResponse> health = Call("GET", "/health");
  if (!health.ok()) return health.status();
  // The key is checked by any authenticated read; /health itself needs none.
  Result<HttpResponse> aliases = Call("GET", "/aliases");
  if (!aliases.ok()) return aliases.status();
  return Status::Ok();
}

Result<std::optional<std::string>> TypesenseClient::GetAlias(std::string_view alias) {
  const std::string target = "/aliases/" + PercentEncode(alias);
  Result<HttpResponse> response = Send("GET", target);
  if (!response.ok()) return response.status();
  if (response->status == 404) return std::optional<std::string>();
  const std::string context = CallContext("GET", target);
  Status status = ClassifyHttpResult(context, "", response->status, response->body);
  if (!status.ok()) return status;

  simdjson::dom::parser parser;
  simdjson::dom::element element;
  std::string_view collection;
  if (parser.parse(response->body).get(element) != simdjson::SUCCESS ||
      element["collection_name"].get_string().get(collection) != simdjson::SUCCESS) {
    return Unavailable(context + ": answer has no \"collection_name\"");
  }
  return std::optional<std::string>(std::string(collection));
}

Status TypesenseClient::PutAlias(std::string_view alias, std::string_view collection) {
  std::string body = "{\"collection_name\":";
  AppendJsonString(body, collection);
  body.push_back('}');
  return Call("PUT", "/aliases/" + PercentEncode(alias), body, "application/json").status();
}

Result<bool> TypesenseClient::CollectionExists(std::string_view name) {
  const std::string target = CollectionPath(name);
  Result<HttpResponse> response = Send("GET", target);
  if (!response.ok()) return response.status();
  if (response->status == 404) return false;
  Status status =
      ClassifyHttpResult(CallContext("GET", target), "", response->status, response->body);
  if (!status.ok()) return status;
  return true;
}

Status TypesenseClient::CreateCollection(std::string_view schema_json) {
  return Call("POST", "/collections", schema_json, "application/json").status();
}

namespace {

Result<CollectionInfo> ParseCollectionInfo(simdjson::dom::element element,
                                           const std::string& context) {
  CollectionInfo info;
  std::string_view name;
  if (element["name"].get_string().get(name) != simdjson::SUCCESS) {
    return Status(StatusCode::kUnavailable, context + ": collection without a \"name\"");
  }
  info.name = name;
  uint64_t count = 0;
  if (element["num_documents"].get_uint64().get(count) == simdjson::SUCCESS) {
    info.num_documents = count;
  }
  int64_t created = 0;
  if (element["created_at"].get_int64().get(created) == simdjson::SUCCESS) {
    info.created_at = created;
  }
  info.schema_json = simdjson::minify(element);
  return info;
}

}  // namespace

Result<std::optional<CollectionInfo>> TypesenseClient::GetCollection(std::string_view name) {
  const std::string target = CollectionPath(name);
  Result<HttpResponse> response = Send("GET", target);
  if (!response.ok()) return response.status();
  if (response->status == 404) return std::optional<CollectionInfo>();
  const std::string context = CallContext("GET", target);
  if (Status status = ClassifyHttpResult(context, "", response->status, response->body);
      !status.ok()) {
    return status;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  if (parser.parse(response->body).get(element) != simdjson::SUCCESS) {
    return Status(StatusCode::kUnavailable, context + ": answer is not JSON");
  }
  Result<CollectionInfo> info = ParseCollectionInfo(element, context);
  if (!info.ok()) return info.status();
  return std::optional<CollectionInfo>(std::move(*info));
}

Result<std::vector<CollectionInfo>> TypesenseClient::ListCollections() {
  const std::string context = CallContext("GET", "/collections");
  Result<HttpResponse> response = Call("GET", "/collections");
  if (!response.ok()) return response.status();
  simdjson::dom::parser parser;
  simdjson::dom::array array;
  if (parser.parse(response->body).get(array) != simdjson::SUCCESS) {
    return Status(StatusCode::kUnavailable, context + ": answer is not a JSON array");
  }
  std::vector<CollectionInfo> collections;
  for (simdjson::dom::element element : array) {
    Result<CollectionInfo> info = ParseCollectionInfo(element, context);
    if (!info.ok()) return info.status();
    collections.push_back(std::move(*info));
  }
  return collections;
}

Status TypesenseClient::DropCollection(std::string_view name) {
  const std::string target = CollectionPath(name);
  Result<HttpResponse> response = Send("DELETE", target);
  if (!response.ok()) return response.status();
  if (response->status == 404) return Status::Ok();
  return ClassifyHttpResult(CallContext("DELETE", target), "", response->status, response->body);
}

Result<std::string> TypesenseClient::Import(std::string_view collection, std::string_view jsonl,
                                            std::string_view action) {
  Result<HttpResponse> response =
      Call("POST", ImportTarget(collection, action), jsonl, "text/plain", Timeout::kBulk);
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

Status TypesenseClient::DeleteByFilter(std::string_view collection,
                                       std::string_view encoded_filter) {
  return Call("DELETE", FilterDeleteTarget(collection, encoded_filter), {}, {}, Timeout::kBulk)
      .status();
}

Status TypesenseClient::DeleteDocument(std::string_view collection, std::string_view id) {
  const std::string target = DocumentDeleteTarget(collection, id);
  Result<HttpResponse> response = Send("DELETE", target, {}, {}, Timeout::kBulk);
  if (!response.ok()) return response.status();
  // With ignore_not_found a missing document is a 200; servers that ignore the parameter say
  // 404 "Could not find a document with id: ...", which means the same: already gone.
  if (response->status == 404 &&
      response->body.find("Could not find a document") != std::string::npos) {
    return Status::Ok();
  }
  return ClassifyHttpResult(CallContext("DELETE", target), "", response->status, response->body);
}

Status TypesenseClient::Export(
    std::string_view collection,
    const std::function<Status(std::string_view document)>& on_document) {
  std::string pending;  // an incomplete last line, carried to the next chunk
  Status callback_status;
  const BodySink on_body = [&](std::string_view chunk) {
    pending.append(chunk);
    size_t start = 0;
    for (size_t end = pending.find('\n'); end != std::string::npos;
         end = pending.find('\n', start)) {
      const std::string_view line(pending.data() + start, end - start);
      start = end + 1;
      if (line.empty() || line == "\r") continue;
      callback_status = on_document(line);
      if (!callback_status.ok()) return false;
    }
    pending.erase(0, start);
    return true;
  };
  const std::string target = CollectionPath(collection) + "/documents/export";
  Result<HttpResponse> response = SendVia("GET", target, {}, {}, Timeout::kBulk, &on_body);
  if (!callback_status.ok()) return callback_status;
  if (!response.ok()) return response.status();
  Status status =
      ClassifyHttpResult(CallContext("GET", target), "", response->status, response->body);
  if (!status.ok()) return status;
  if (!pending.empty() && pending != "\r") return on_document(pending);
  return Status::Ok();
}

}  // namespace searchsync
