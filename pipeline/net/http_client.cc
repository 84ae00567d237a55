#include "pipeline/net/http_client.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>

namespace searchsync {
namespace {

std::once_flag g_curl_init;

// What one transfer's callbacks share.
struct Transfer {
  CURL* handle = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  uint64_t upload_left = 0;
  bool upload_failed = false;
};

long ResponseStatus(CURL* handle) {
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  const std::string_view chunk(data, bytes);
  const long status = ResponseStatus(transfer->handle);
  if (transfer->request->on_body && status >= 200 && status < 300) {
    transfer->response->body_delivered = true;
    if (!transfer->request->on_body(chunk)) {
      transfer->response->aborted = true;
      return 0;
    }
    return bytes;
  }
  transfer->response->body.append(chunk);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    // A status line: a new response (after a 100 Continue, say) starts its own headers.
    if (line.starts_with("HTTP/")) transfer->response->headers.clear();
    return line.size();
  }
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  transfer->response->headers.emplace_back(std::move(name), std::string(value));
  return line.size();
}

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t wanted = std::min<uint64_t>(size * count, transfer->upload_left);
  const size_t got = std::fread(buffer, 1, wanted, transfer->request->upload);
  if (got < wanted && std::ferror(transfer->request->upload)) {
    transfer->upload_failed = true;
    return CURL_READFUNC_ABORT;
  }
  transfer->upload_left -= got;
  return got;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  if (transfer->request->should_abort && transfer->request->should_abort()) {
    transfer->response->aborted = true;
    return 1;
  }
  return 0;
}

}  // namespace

std::string HttpUrlProblem(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), &curl_url_cleanup);
  if (const CURLUcode code = curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0);
      code != CURLUE_OK) {
    return curl_url_strerror(code);
  }
  return "";
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [header, value] : headers) {
    if (header == name) return value;
  }
  return "";
}

// Easy handles kept between calls so their connections stay alive. A calling thread borrows
// one for the duration of a request.
class HttpClient::HandlePool {
 public:
  ~HandlePool() {
    for (CURL* handle : idle_) curl_easy_cleanup(handle);
  }

  CURL* Acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        CURL* handle = idle_.back();
        idle_.pop_back();
        return handle;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* handle) {
    std::lock_guard lock(mutex_);
    idle_.push_back(handle);
  }

 private:
  std::mutex mutex_;
  std::vector<CURL*> idle_;
};

HttpClient::HttpClient() : handles_(std::make_unique<HandlePool>()) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  CURL* handle = handles_->Acquire();
  if (handle == nullptr) return Unavailable("could not create a libcurl handle");
  // Reset keeps the handle's live connections; every option is set again below.
  curl_easy_reset(handle);
  HttpResponse response;
  Transfer transfer{.handle = handle,
                    .request = &request,
                    .response = &response,
                    .upload_left = request.upload_length};

  curl_slist* headers = nullptr;
  for (const std::string& header : request.headers) {
    headers = curl_slist_append(headers, header.c_str());
  }
  // Large bodies would otherwise wait for a "100 Continue" the server may never send.
  headers = curl_slist_append(headers, "Expect:");
  char error_buffer[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(handle, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  if (request.timeout) {
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout->count()));
  }
  if (request.idle_timeout) {
    // Less than a byte a second for that long: libcurl counts in whole seconds.
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(
        handle, CURLOPT_LOW_SPEED_TIME,
        std::max<long>(1, static_cast<long>((request.idle_timeout->count() + 999) / 1000)));
  }
  if (!request.aws_sigv4.empty()) {
    curl_easy_setopt(handle, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
  } else if (!request.username.empty()) {
    curl_easy_setopt(handle, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
  }
  if (!request.username.empty()) {
    curl_easy_setopt(handle, CURLOPT_USERNAME, request.username.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, request.password.c_str());
  }
  if (!request.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, request.ca_file.c_str());
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
  if (request.should_abort) {
    curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &transfer);
  }
  if (request.method == "GET") {
    curl_easy_setopt(handle, CURLOPT_HTTPGET, 1L);
  } else if (request.upload != nullptr) {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, &OnUpload);
    curl_easy_setopt(handle, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.upload_length));
    if (request.method != "PUT") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  } else {
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
      // Never a null pointer: libcurl would then read the body from stdin.
      curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
      curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    if (request.method != "POST") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  const CURLcode code = curl_easy_perform(handle);
  response.status = ResponseStatus(handle);
  if (code == CURLE_OK) {
    // Without CURLOPT_FOLLOWLOCATION libcurl still resolves where a 3xx points.
    char* redirect = nullptr;
    if (curl_easy_getinfo(handle, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK &&
        redirect != nullptr) {
      response.redirect_to = redirect;
    }
  }
  curl_slist_free_all(headers);
  handles_->Release(handle);

  if (code == CURLE_OK || response.aborted) return response;
  if (transfer.upload_failed) return Unavailable("reading the request body failed");
  std::string message = curl_easy_strerror(code);
  if (error_buffer[0] != '\0' && message != error_buffer) {
    message += " (" + std::string(error_buffer) + ")";
  }
  if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL) {
    return InvalidArgument(message);
  }
  return Unavailable(message);
}

}  // namespace searchsync
