#pragma once
// HttpClient: searchsync's one libcurl wrapper. The Typesense sink, the CouchDB source and the
// S3 client of backups speak HTTP through it, so libcurl is named in one file, http_client.cc.
//
// Why here: code that connectors of both kinds share lives in common/, beside sources/ and
// sinks/ (Envoy keeps `common/` beside the extensions that use it). The engine (pipeline/) never
// includes it, so it stays free of client libraries; common/ depends only on the engine's
// Status, never on a connector.
//
// What it does: one request, one response, with the options the three clients need (timeouts,
// basic or AWS SigV4 authentication, a CA file, a body from memory or streamed from a file, a
// response body streamed to a callback). What it leaves to its callers: retries (pipeline/
// retry.h), what an HTTP status means, and which host to ask (Typesense's failover).
//
// Thread safety: Send may run on any number of threads at once. Each call borrows its own
// libcurl handle from a pool, so connections stay open between calls.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/status.h"

namespace searchsync {

struct HttpRequest {
  std::string method = "GET";        // any verb; GET sends no body
  std::string url;                   // absolute, with its query string
  std::vector<std::string> headers;  // "Name: value"
  // The body for any method but GET (POST and PUT send it even when empty). Must outlive Send.
  std::string_view body;
  // Or, for PUT: `upload_length` bytes streamed from `upload`, from its current position.
  std::FILE* upload = nullptr;
  uint64_t upload_length = 0;

  std::chrono::milliseconds connect_timeout{10'000};
  std::optional<std::chrono::milliseconds> timeout;  // the whole exchange; unset: none
  // Ends a transfer that received no byte for this long (a silent peer); unset: never.
  std::optional<std::chrono::milliseconds> idle_timeout;

  // Basic authentication when set; with `aws_sigv4` ("aws:amz:REGION:SERVICE") they are the
  // access key id and the secret access key of an AWS SigV4 signature instead.
  std::string username;
  std::string password;
  std::string aws_sigv4;
  std::string ca_file;  // PEM bundle to verify the server with; empty: the system's

  // When set, each chunk of a 2xx response's body goes here instead of HttpResponse::body
  // (bodies of other statuses are always collected). False ends the transfer (`aborted`).
  std::function<bool(std::string_view chunk)> on_body;
  // Asked about once a second while the transfer runs; true ends it (`aborted`).
  std::function<bool()> should_abort;
};

struct HttpResponse {
  long status = 0;
  std::string body;             // the whole body, unless on_body took it
  std::string redirect_to;      // where a 3xx points, absolute (redirects are never followed)
  bool body_delivered = false;  // on_body received at least one chunk
  // on_body or should_abort ended the transfer: what arrived is incomplete, `status` is what
  // had arrived (0: none).
  bool aborted = false;
  // Response headers with lower-case names, in the order received.
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of the first header named `name` (lower case), or "".
  std::string Header(std::string_view name) const;
};

// "" when `url` is a URL HttpClient can send to, else what is wrong with it (libcurl's URL
// parser's message, which never repeats the URL).
std::string HttpUrlProblem(const std::string& url);

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The response, whatever its status, or as far as it came when the caller aborted it.
  // Otherwise: kUnavailable when no complete response arrived (connection refused or reset, a
  // timeout; the message is libcurl's), kInvalidArgument for a URL libcurl cannot use
  // (malformed, or an unsupported scheme).
  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  class HandlePool;
  std::unique_ptr<HandlePool> handles_;
};

}  // namespace searchsync
