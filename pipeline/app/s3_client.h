#pragma once
// S3Client: the few S3 calls backups need (put, get, list, delete), against AWS or any
// S3-compatible server, over HttpClient with libcurl's AWS SigV4 signing.
//
// Requests use path-style URLs (`<endpoint>/<bucket>/<key>`), which every S3-compatible server
// accepts, and send `x-amz-content-sha256: UNSIGNED-PAYLOAD` so a file can be streamed without
// hashing it twice (the backup's own SHA-256 in its manifest covers the content end to end).
//
// Uploads stream from a file of known length: one PUT up to `multipart_threshold`, above it a
// multipart upload of `part_size` parts, each part a PUT of a range of the file. Nothing is
// held whole in memory. Transient failures (connection errors, 429, 5xx) are retried a few times
// with backoff; a multipart upload that fails is aborted so no parts are left billed.
//
// Thread safety: calls may run from any thread at once (HttpClient keeps a handle per call).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/net/http_client.h"
#include "pipeline/status.h"

namespace searchsync {

struct S3ClientOptions {
  std::string endpoint;  // "http(s)://host:port", no trailing slash needed
  std::string region;    // as configured: S3Options::region
  Secret access_key_id;
  Secret secret_access_key;
  // AWS refuses a single PUT above 5 GiB and parts below 5 MiB (except the last).
  uint64_t multipart_threshold = uint64_t{1} << 30;
  uint64_t part_size = uint64_t{64} << 20;
  Millis timeout{60 * 60 * 1000};  // one request, whole
};

// "s3://bucket/some/prefix" -> {bucket, "some/prefix"} (no leading or trailing '/').
struct S3Url {
  std::string bucket;
  std::string prefix;
};
// kInvalidArgument when `url` is not s3://BUCKET[/PREFIX].
Result<S3Url> ParseS3Url(std::string_view url);

// The text of every <tag>...</tag> in an S3 XML answer, in order, with the five predefined
// entities decoded. S3's answers are flat enough that no nesting is needed.
std::vector<std::string> XmlValues(std::string_view xml, std::string_view tag);

class S3Client {
 public:
  explicit S3Client(S3ClientOptions options);

  // Uploads the whole file at `path` as `key`.
  Status PutFile(const std::string& bucket, const std::string& key, const std::string& path);
  Status PutBytes(const std::string& bucket, const std::string& key, std::string_view bytes);
  // Downloads `key` into the file at `path` (created or truncated), streamed.
  // kNotFound when there is no such object.
  Status GetToFile(const std::string& bucket, const std::string& key, const std::string& path);
  // A small object, whole. kNotFound when there is no such object.
  Result<std::string> GetBytes(const std::string& bucket, const std::string& key);
  // Every key under `prefix` (all pages of ListObjectsV2), in S3's order (UTF-8 binary).
  Result<std::vector<std::string>> List(const std::string& bucket, const std::string& prefix);
  // Deleting a key that does not exist is fine (S3 answers 204 either way).
  Status Delete(const std::string& bucket, const std::string& key);

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::string etag;  // the ETag header, quotes included (multipart parts need it)
  };
  struct Request {
    std::string method;
    std::string bucket;
    std::string key;
    std::string query;        // canonical: sorted, each value percent-encoded
    std::string_view body;    // in-memory body (PUT/POST), or
    std::string upload_path;  // a byte range of this file is the body
    uint64_t upload_offset = 0;
    uint64_t upload_length = 0;
    std::string download_path;  // 2xx body streamed into this file
  };
  // One request with retries of transient failures; any status that arrived is returned.
  Result<Response> Send(const Request& request);
  Result<Response> SendOnce(const Request& request);
  // Send, and an error naming the call for anything but 2xx.
  Result<Response> Call(const Request& request);
  Status PutMultipart(const std::string& bucket, const std::string& key, const std::string& path,
                      uint64_t size);

  const S3ClientOptions options_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace searchsync
