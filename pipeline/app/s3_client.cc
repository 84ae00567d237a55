#include "pipeline/app/s3_client.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "pipeline/log.h"
#include "pipeline/retry.h"
#include "pipeline/url.h"

namespace searchsync {
namespace {

// Each call tries 5 times, with waits bounded by 200ms, 400ms, 800ms and 1.6s.
constexpr int kMaxAttempts = 5;
constexpr std::chrono::milliseconds kFirstBackoff{200};
constexpr std::chrono::milliseconds kMaxBackoff{1600};
constexpr char kComponent[] = "s3";

// SigV4's URI encoding: everything but unreserved characters, and '/' too unless `keep_slash`.
std::string UriEncode(std::string_view text, bool keep_slash) {
  if (!keep_slash) return PercentEncode(text);
  std::string out;
  for (size_t start = 0;;) {
    const size_t slash = text.find('/', start);
    AppendPercentEncoded(out, text.substr(start, slash - start));
    if (slash == std::string_view::npos) return out;
    out.push_back('/');
    start = slash + 1;
  }
}

std::string XmlUnescape(std::string_view text) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool replaced = false;
    if (text[i] == '&') {
      for (const auto& [entity, c] : kEntities) {
        if (text.substr(i, entity.size()) == entity) {
          out.push_back(c);
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

std::vector<std::string> XmlValues(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string> values;
  for (size_t pos = xml.find(open); pos != std::string_view::npos; pos = xml.find(open, pos)) {
    pos += open.size();
    const size_t end = xml.find(close, pos);
    if (end == std::string_view::npos) break;
    values.push_back(XmlUnescape(xml.substr(pos, end - pos)));
    pos = end + close.size();
  }
  return values;
}

namespace {

std::string XmlValue(std::string_view xml, std::string_view tag) {
  std::vector<std::string> values = XmlValues(xml, tag);
  return values.empty() ? std::string() : values.front();
}

}  // namespace

Result<S3Url> ParseS3Url(std::string_view url) {
  constexpr std::string_view kScheme = "s3://";
  if (!url.starts_with(kScheme)) {
    return InvalidArgument("expected s3://BUCKET/PREFIX, got '" + std::string(url) + "'");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash + 1);
    while (prefix.ends_with('/')) prefix.remove_suffix(1);
    out.prefix = std::string(prefix);
  }
  if (out.bucket.empty()) {
    return InvalidArgument("'" + std::string(url) +
                           "' names no bucket (expected s3://BUCKET/PREFIX)");
  }
  return out;
}

S3Client::S3Client(S3ClientOptions options)
    : options_(std::move(options)), http_(std::make_unique<HttpClient>()) {}

Result<S3Client::Response> S3Client::SendOnce(const Request& request) {
  std::string url = options_.endpoint;
  while (url.ends_with('/')) url.pop_back();
  url += "/" + UriEncode(request.bucket, false);
  if (!request.key.empty()) url += "/" + UriEncode(request.key, true);
  if (!request.query.empty()) url += "?" + request.query;

  // Closes the files of one request however it ends.
  struct Files {
    std::FILE* upload = nullptr;
    std::FILE* download = nullptr;
    ~Files() {
      if (upload != nullptr) std::fclose(upload);
      if (download != nullptr) std::fclose(download);
    }
  } files;
  if (!request.upload_path.empty()) {
    files.upload = std::fopen(request.upload_path.c_str(), "rb");
    if (files.upload == nullptr ||
        fseeko(files.upload, static_cast<off_t>(request.upload_offset), SEEK_SET) != 0) {
      return InvalidArgument("cannot read " + request.upload_path);
    }
  }
  if (!request.download_path.empty()) {
    files.download = std::fopen(request.download_path.c_str(), "wb");
    if (files.download == nullptr) return InvalidArgument("cannot write " + request.download_path);
  }

  HttpRequest http{.method = request.method,
                   .url = std::move(url),
                   .headers = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"},
                   .body = request.body,
                   .upload = files.upload,
                   .upload_length = request.upload_length,
                   .timeout = options_.timeout,
                   .username = options_.access_key_id.value(),
                   .password = options_.secret_access_key.value(),
                   .aws_sigv4 = "aws:amz:" + options_.region + ":s3"};
  bool download_failed = false;
  if (files.download != nullptr) {
    // Only a 2xx body is the object; an error's XML stays in the body for the message.
    http.on_body = [&](std::string_view chunk) {
      download_failed = std::fwrite(chunk.data(), 1, chunk.size(), files.download) != chunk.size();
      return !download_failed;
    };
  }
  Result<HttpResponse> answer = http_->Send(http);
  const std::string context = "s3 " + request.method + " " + request.bucket + "/" + request.key;
  if (files.download != nullptr) {
    const bool closed_ok = std::fclose(files.download) == 0;
    files.download = nullptr;
    if (download_failed || !closed_ok) {
      return FailedPrecondition(context + ": cannot write " + request.download_path);
    }
  }
  if (!answer.ok()) return Unavailable(context + ": " + answer.status().message());
  return Response{
      .status = answer->status, .body = std::move(answer->body), .etag = answer->Header("etag")};
}

Result<S3Client::Response> S3Client::Send(const Request& request) {
  const std::string what = "s3 " + request.method + " " + request.bucket + "/" + request.key;
  Retrier retrier({.initial_backoff = kFirstBackoff, .max_backoff = kMaxBackoff},
                  {.component = kComponent, .what = what, .max_attempts = kMaxAttempts});
  for (;;) {
    Result<Response> response = SendOnce(request);
    // A transient HTTP status is retried like a connection error; when retries end, the
    // response itself goes back to Call, which names the error S3 gave.
    const Status status = !response.ok() ? response.status()
                          : IsRetryableHttpStatus(response->status)
                              ? Unavailable("HTTP " + std::to_string(response->status))
                              : Status::Ok();
    if (status.ok() || !IsRetryable(status)) return response;
    if (std::optional<Status> end = retrier.Failed(status)) {
      return response.ok() ? response : Result<Response>(*end);
    }
  }
}

Result<S3Client::Response> S3Client::Call(const Request& request) {
  Result<Response> response = Send(request);
  if (!response.ok()) return response;
  if (response->status >= 200 && response->status < 300) return response;
  const std::string context = "s3 " + request.method + " " + request.bucket + "/" + request.key;
  std::string detail = XmlValue(response->body, "Code");
  const std::string message = XmlValue(response->body, "Message");
  if (!message.empty()) detail += (detail.empty() ? "" : ": ") + message;
  const std::string text =
      context + ": HTTP " + std::to_string(response->status) + (detail.empty() ? "" : " " + detail);
  if (response->status == 404) return NotFound(text);
  if (IsRetryableHttpStatus(response->status)) return Unavailable(text);
  return FailedPrecondition(text);
}

Status S3Client::PutFile(const std::string& bucket, const std::string& key,
                         const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return InvalidArgument("cannot read " + path + ": " + ec.message());
  if (size > options_.multipart_threshold) return PutMultipart(bucket, key, path, size);
  return Call({.method = "PUT",
               .bucket = bucket,
               .key = key,
               .upload_path = path,
               .upload_length = size})
      .status();
}

Status S3Client::PutMultipart(const std::string& bucket, const std::string& key,
                              const std::string& path, uint64_t size) {
  Result<Response> created =
      Call({.method = "POST", .bucket = bucket, .key = key, .query = "uploads="});
  if (!created.ok()) return created.status();
  const std::string upload_id = XmlValue(created->body, "UploadId");
  if (upload_id.empty()) {
    return Unavailable("s3 POST " + bucket + "/" + key + "?uploads: no UploadId in the answer");
  }
  const std::string upload_query = "uploadId=" + UriEncode(upload_id, false);
  std::string complete = "<CompleteMultipartUpload>";
  Status status;
  int part_number = 1;
  for (uint64_t offset = 0; offset < size && status.ok();
       offset += options_.part_size, ++part_number) {
    const uint64_t length = std::min(options_.part_size, size - offset);
    // Query parameters in canonical (sorted) order: SigV4 signs them as sent.
    Result<Response> part =
        Call({.method = "PUT",
              .bucket = bucket,
              .key = key,
              .query = "partNumber=" + std::to_string(part_number) + "&" + upload_query,
              .upload_path = path,
              .upload_offset = offset,
              .upload_length = length});
    if (!part.ok()) {
      status = part.status();
    } else if (part->etag.empty()) {
      status = Unavailable("s3 PUT " + bucket + "/" + key + " part " + std::to_string(part_number) +
                           ": no ETag in the answer");
    } else {
      complete += "<Part><PartNumber>" + std::to_string(part_number) + "</PartNumber><ETag>" +
                  part->etag + "</ETag></Part>";
    }
  }
  complete += "</CompleteMultipartUpload>";
  if (status.ok()) {
    Result<Response> done = Call(
        {.method = "POST", .bucket = bucket, .key = key, .query = upload_query, .body = complete});
    // CompleteMultipartUpload may answer 200 with an <Error> body.
    if (!done.ok()) {
      status = done.status();
    } else if (done->body.find("<Error>") != std::string::npos) {
      status = Unavailable("s3 POST " + bucket + "/" + key + "?uploadId: " +
                           XmlValue(done->body, "Code") + " " + XmlValue(done->body, "Message"));
    }
  }
  if (!status.ok()) {
    // Best effort: an abandoned upload keeps its parts (and their cost) until aborted.
    (void)Send({.method = "DELETE", .bucket = bucket, .key = key, .query = upload_query});
  }
  return status;
}

Status S3Client::PutBytes(const std::string& bucket, const std::string& key,
                          std::string_view bytes) {
  return Call({.method = "PUT", .bucket = bucket, .key = key, .body = bytes}).status();
}

Status S3Client::GetToFile(const std::string& bucket, const std::string& key,
                           const std::string& path) {
  return Call({.method = "GET", .bucket = bucket, .key = key, .download_path = path}).status();
}

Result<std::string> S3Client::GetBytes(const std::string& bucket, const std::string& key) {
  Result<Response> response = Call({.method = "GET", .bucket = bucket, .key = key});
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

Result<std::vector<std::string>> S3Client::List(const std::string& bucket,
                                                const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  while (true) {
    // Sorted parameter names: continuation-token < list-type < prefix.
    std::string query;
    if (!token.empty()) query = "continuation-token=" + UriEncode(token, false) + "&";
    query += "list-type=2&prefix=" + UriEncode(prefix, false);
    Result<Response> page = Call({.method = "GET", .bucket = bucket, .query = query});
    if (!page.ok()) return page.status();
    for (std::string& key : XmlValues(page->body, "Key")) keys.push_back(std::move(key));
    if (XmlValue(page->body, "IsTruncated") != "true") break;
    token = XmlValue(page->body, "NextContinuationToken");
    if (token.empty()) break;
  }
  return keys;
}

Status S3Client::Delete(const std::string& bucket, const std::string& key) {
  return Call({.method = "DELETE", .bucket = bucket, .key = key}).status();
}

}  // namespace searchsync
