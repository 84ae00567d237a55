// The `couchdb` source.
//
// Poll reads catch-up pages with feed=normal until one comes back empty; that empty page is the
// "caught up" answer `run --once` stops at. A daemon polls again from the same position, and only
// then does the source start waiting for changes: one streamed continuous feed (a reader thread
// fills a bounded buffer that Poll drains) or one longpoll request per Poll. So `run --once`
// never opens a feed that blocks.
//
// Positions: Poll's `from` is always the position of the last event it handed out (or the
// checkpoint at start). The stream is opened at that position and is dropped whenever a Poll asks
// for another one, so the events handed out are always the changes after `from`, in feed order.

#include "sources/couchdb.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/net/http_client.h"
#include "pipeline/retry.h"
#include "pipeline/url.h"
#include "pipeline/yaml_json.h"
#include "sources/common.h"

namespace searchsync {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr Key<CouchdbOptions> kCouchdbKeyList[] = {
    {"url", KeyType::kString, &CouchdbOptions::url, true,
     "server URL without the database, http(s)://host:5984; user:password@ in it is never "
     "logged (percent-encode / ? # @ in the password)"},
    {"database", KeyType::kString, &CouchdbOptions::database, true,
     "the database whose documents are synced"},
    {"username", KeyType::kString, &CouchdbOptions::username, false,
     "user for basic authentication"},
    {"password", KeyType::kSecret, &CouchdbOptions::password, false,
     "password for basic authentication"},
    {"feed", KeyType::kString, kReadByHand, false,
     "how to wait for changes once caught up: continuous (one streamed connection) or longpoll",
     "continuous"},
    {"heartbeat", KeyType::kDuration, &CouchdbOptions::heartbeat, false,
     "heartbeat interval asked of the server; longpoll: the longest wait of one request"},
    {"timeout", KeyType::kDuration, kReadByHand, false,
     "a connection silent this long (no change, no heartbeat) is dropped and reopened; default "
     "3 x heartbeat"},
    {"selector", KeyType::kAny, kReadByHand, false,
     "Mango selector; only matching documents are synced (filter=_selector)"},
    {"page_size", KeyType::kInt, &CouchdbOptions::page_size, false,
     "changes per catch-up request, and changes buffered from the continuous feed"},
    {"ca_file", KeyType::kString, &CouchdbOptions::ca_file, false,
     "PEM CA bundle for https; default: the system's"},
    {"keep_metadata", KeyType::kStringList, &CouchdbOptions::keep_metadata, false,
     "CouchDB metadata kept in documents: _rev, _attachments (dropped otherwise); map them with "
     "transforms, e.g. rename: { _rev: revision }"},
};
constinit const KeyTable<CouchdbOptions> kCouchdbKeyTable(kCouchdbKeyList);

// How long one Poll waits on the continuous feed before answering "nothing yet". Bounds how long
// a stop request waits for the source thread.
constexpr Millis kStreamWait{500};

constexpr std::string_view kDroppedKeys[] = {
    "_id",        "_rev",       "_attachments", "_deleted", "_conflicts", "_deleted_conflicts",
    "_revisions", "_revs_info", "_local_seq",
};
// The metadata `keep_metadata` may keep. (The rest only appears with query options this source
// never sets, or is the id itself.)
constexpr std::string_view kKeepableKeys[] = {"_rev", "_attachments"};

bool IsDroppedKey(std::string_view key, std::span<const std::string> keep) {
  return std::find(std::begin(kDroppedKeys), std::end(kDroppedKeys), key) !=
             std::end(kDroppedKeys) &&
         std::find(keep.begin(), keep.end(), key) == keep.end();
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// ---- Parsing --------------------------------------------------------------------------------

namespace od = simdjson::ondemand;

struct Row {
  std::string seq;  // raw JSON
  std::string last_seq;
  std::string key;  // raw JSON (_all_docs rows)
  std::string id;
  bool deleted = false;
  bool has_doc = false;
  Document doc;
};

// Room reserved for a document's fields up front: growing the vector one field at a time showed
// in profiles.
constexpr size_t kTypicalFields = 8;

simdjson::error_code ReadDoc(od::value value, std::span<const std::string> keep, Row& row) {
  od::json_type type;
  if (auto error = value.type().get(type)) return error;
  if (type != od::json_type::object) return simdjson::SUCCESS;  // null: purged or not included
  od::object object;
  if (auto error = value.get_object().get(object)) return error;
  row.doc.reserve(kTypicalFields);
  for (auto field_result : object) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) return error;
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return error;
    if (IsDroppedKey(key, keep)) continue;
    std::string name(key);
    std::string_view raw;
    if (auto error = RawJson(field.value(), raw)) return error;
    row.doc.push_back(Field{std::move(name), std::string(Trim(raw))});
  }
  row.has_doc = true;
  return simdjson::SUCCESS;
}

simdjson::error_code ReadRow(od::object object, std::span<const std::string> keep, Row& row) {
  for (auto field_result : object) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) return error;
    std::string_view key;
    if (auto error = field.unescaped_key().get(key)) return error;
    if (key == "seq" || key == "last_seq" || key == "key") {
      std::string_view raw;
      if (auto error = RawJson(field.value(), raw)) return error;
      (key == "seq" ? row.seq : key == "key" ? row.key : row.last_seq) = std::string(Trim(raw));
    } else if (key == "id") {
      std::string_view id;
      if (auto error = field.value().get_string().get(id)) return error;
      row.id = std::string(id);
    } else if (key == "deleted") {
      bool deleted = false;
      if (auto error = field.value().get_bool().get(deleted)) return error;
      row.deleted = deleted;
    } else if (key == "doc") {
      if (auto error = ReadDoc(field.value(), keep, row)) return error;
    }
  }
  return simdjson::SUCCESS;
}

// The event a change row makes, or nullopt for a row that makes none.
Result<std::optional<Event>> RowToEvent(Row row) {
  if (row.seq.empty()) return Unavailable("couchdb: a change row without seq");
  if (row.id.empty()) return Unavailable("couchdb: a change row without id, seq=" + row.seq);
  if (row.id.starts_with("_design/")) return std::optional<Event>();
  Event event;
  event.id = std::move(row.id);
  event.position.token = std::move(row.seq);
  if (row.deleted) {
    event.op = Op::kDelete;
  } else if (row.has_doc) {
    event.op = Op::kUpsert;
    event.document = std::move(row.doc);
  } else {
    return std::optional<Event>();
  }
  return std::optional<Event>(std::move(event));
}

std::string ParseErrorMessage(std::string_view what, simdjson::error_code error,
                              std::string_view text) {
  constexpr size_t kShown = 120;
  std::string shown(text.substr(0, kShown));
  if (text.size() > kShown) shown += "...";
  return "couchdb: " + std::string(what) + " is not valid JSON (" + simdjson::error_message(error) +
         "): " + shown;
}

// ParseCouchdbPage on a buffer that already has simdjson's padding, so the page is not copied.
// `parser` is reused from page to page, its buffers with it.
Result<CouchdbPage> ParsePaddedPage(simdjson::padded_string_view padded,
                                    std::span<const std::string> keep, od::parser& parser) {
  CouchdbPage page;
  od::document document;
  od::object root;
  auto parse = [&]() -> simdjson::error_code {
    if (auto error = parser.iterate(padded).get(document)) return error;
    if (auto error = document.get_object().get(root)) return error;
    for (auto field_result : root) {
      od::field field;
      if (auto error = std::move(field_result).get(field)) return error;
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) return error;
      if (key == "results") {
        od::array results;
        if (auto error = field.value().get_array().get(results)) return error;
        for (auto item : results) {
          od::object object;
          if (auto error = item.get_object().get(object)) return error;
          Row row;
          if (auto error = ReadRow(object, keep, row)) return error;
          ++page.rows;
          Result<std::optional<Event>> event = RowToEvent(std::move(row));
          if (!event.ok()) return simdjson::INCORRECT_TYPE;
          if (event->has_value()) page.events.push_back(std::move(**event));
        }
      } else if (key == "last_seq") {
        std::string_view raw;
        if (auto error = RawJson(field.value(), raw)) return error;
        page.last_seq = std::string(Trim(raw));
      } else if (key == "pending") {
        int64_t pending = 0;
        if (auto error = field.value().get_int64().get(pending)) return error;
        page.pending = pending;
      }
    }
    return simdjson::SUCCESS;
  };
  if (const simdjson::error_code error = parse()) {
    return Unavailable(ParseErrorMessage("a changes answer", error, padded));
  }
  return page;
}

// ---- HTTP -----------------------------------------------------------------------------------

class Http {
 public:
  explicit Http(const CouchdbOptions& options)
      : options_(options),
        secrets_(Secrets(options)),
        base_(Base(options.url) + "/" + PercentEncode(options.database)),
        shown_base_(RedactUrl(Base(options.url)) + "/" + options.database),
        selector_body_("{\"selector\":" + options.selector_json + "}") {}

  const std::string& base() const { return base_; }
  const std::string& shown_base() const { return shown_base_; }
  bool has_selector() const { return !options_.selector_json.empty(); }

  // A request with the settings every request shares; `post` sends the selector.
  HttpRequest Request(std::string url, bool post) const {
    HttpRequest request{.method = post ? "POST" : "GET",
                        .url = std::move(url),
                        .headers = {"Accept: application/json"},
                        .ca_file = options_.ca_file};
    if (!options_.username.empty()) {
      request.username = options_.username;
      request.password = options_.password.value();
    }
    if (post) {
      request.headers.push_back("Content-Type: application/json");
      request.body = selector_body_;
    }
    return request;
  }

  // Thread safety: any thread (HttpClient is).
  Result<HttpResponse> Send(const HttpRequest& request) const { return client_->Send(request); }

  // The `_changes` URL.
  std::string ChangesUrl(std::string_view feed, std::string_view since, std::optional<size_t> limit,
                         std::optional<Millis> wait) const {
    std::string url = base_ + "/_changes?feed=" + std::string(feed) +
                      "&include_docs=true&since=" + CouchdbSinceParam(since);
    if (limit) url += "&limit=" + std::to_string(*limit);
    if (feed == "continuous") {
      url += "&heartbeat=" + std::to_string(options_.heartbeat.count());
    } else if (wait) {
      url += "&timeout=" + std::to_string(wait->count());
    }
    if (has_selector()) url += "&filter=_selector";
    return url;
  }

  // Masks the password wherever a message might have picked it up.
  std::string Scrub(std::string message) const {
    return RedactSecrets(std::move(message), secrets_);
  }

  // A request that got no complete response (HttpClient::Send's error).
  Status TransportError(std::string_view what, const Status& error) const {
    std::string message =
        "couchdb " + std::string(what) + " " + shown_base_ + ": " + error.message();
    // A URL curl cannot use will not heal by retrying. (The config check refuses most.)
    if (error.code() == StatusCode::kInvalidArgument) {
      return InvalidArgument(Scrub(std::move(message)) + "; fix the url key");
    }
    return Unavailable(Scrub(std::move(message)));
  }

  Status HttpError(std::string_view what, long code, std::string_view body) const {
    std::string shown(Trim(body.substr(0, 300)));
    const std::string prefix =
        "couchdb " + std::string(what) + " " + shown_base_ + ": HTTP " + std::to_string(code);
    if (code == 401 || code == 403) {
      return FailedPrecondition(Scrub(
          prefix + ": the server refused the credentials; check username and password " + shown));
    }
    if (code == 404) {
      return FailedPrecondition(
          Scrub(prefix + ": no database named '" + options_.database + "' " + shown));
    }
    if (code == 400) return InvalidArgument(Scrub(prefix + ": " + shown));
    return Unavailable(Scrub(prefix + " " + shown));
  }

  // One request read whole into `body`. `idle` drops a connection silent that long.
  Status Fetch(std::string_view what, const std::string& url, bool post, Millis idle,
               std::string& body) const {
    HttpRequest request = Request(url, post);
    request.idle_timeout = idle;
    Result<HttpResponse> response = Send(request);
    if (!response.ok()) return TransportError(what, response.status());
    if (response->status != 200) return HttpError(what, response->status, response->body);
    body = std::move(response->body);
    return Status::Ok();
  }

 private:
  static std::string Base(std::string_view url) {
    while (!url.empty() && url.back() == '/') url.remove_suffix(1);
    return std::string(url);
  }
  // The password key and the password of the URL's user info, in every form a message may
  // carry them.
  static std::vector<std::string> Secrets(const CouchdbOptions& options) {
    std::vector<std::string> secrets = UrlSecrets(options.url);
    secrets.push_back(options.password.value());
    return secrets;
  }
  const CouchdbOptions& options_;
  std::vector<std::string> secrets_;
  std::string base_;
  std::string shown_base_;
  std::string selector_body_;
  std::unique_ptr<HttpClient> client_ = std::make_unique<HttpClient>();
};

// ---- The continuous feed ----------------------------------------------------------------------

// One streamed continuous feed, read by its own thread into a bounded buffer.
class ChangeStream {
 public:
  ChangeStream(const CouchdbOptions& options, const Http& http, std::string since)
      : options_(options), http_(http), since_(std::move(since)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ChangeStream() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  ChangeStream(const ChangeStream&) = delete;
  ChangeStream& operator=(const ChangeStream&) = delete;

  // Up to `max` buffered changes, waiting up to `wait` for the first one.
  std::vector<Event> Take(size_t max, Millis wait) {
    std::vector<Event> events;
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, wait, [&] { return !buffer_.empty() || finished_; });
    while (!buffer_.empty() && events.size() < max) {
      events.push_back(std::move(buffer_.front()));
      buffer_.pop_front();
    }
    lock.unlock();
    changed_.notify_all();
    return events;
  }

  // Once the feed ended and every buffered change was taken: how it ended (OK: the server closed
  // the feed with its last_seq line).
  std::optional<Status> Outcome() {
    std::lock_guard lock(mutex_);
    if (!finished_ || !buffer_.empty()) return std::nullopt;
    return outcome_;
  }

 private:
  void Run() {
    Status outcome = Follow();
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
      outcome_ = std::move(outcome);
    }
    changed_.notify_all();
  }

  Status Follow() {
    HttpRequest request = http_.Request(
        http_.ChangesUrl("continuous", since_, std::nullopt, std::nullopt), http_.has_selector());
    request.on_body = [this](std::string_view chunk) { return Consume(chunk); };
    request.should_abort = [this] {
      if (stopping()) return true;
      idle_ = Clock::now() - last_byte_ > options_.timeout;
      return idle_;
    };
    last_byte_ = Clock::now();
    const Result<HttpResponse> response = http_.Send(request);
    if (stopping()) return Status::Ok();
    if (!error_.ok()) return error_;
    const long status = response.ok() ? response->status : 0;
    if (status != 0 && status != 200)
      return http_.HttpError("changes feed", status, response->body);
    if (idle_) {
      return Unavailable("couchdb changes feed " + http_.shown_base() + ": nothing, not even a " +
                         "heartbeat, for " + FormatMillis(options_.timeout) + "; reconnecting");
    }
    if (!response.ok()) return http_.TransportError("changes feed", response.status());
    if (!ended_) {
      return Unavailable("couchdb changes feed " + http_.shown_base() +
                         ": the server closed the feed; reconnecting");
    }
    return Status::Ok();
  }

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stop_;
  }

  // Splits what arrived into lines; false aborts the transfer.
  // (A 2xx body only: HttpClient collects any other.)
  bool Consume(std::string_view data) {
    partial_.append(data);
    size_t start = 0;
    for (size_t newline = partial_.find('\n'); newline != std::string::npos;
         newline = partial_.find('\n', start)) {
      const std::string_view line(partial_.data() + start, newline - start);
      start = newline + 1;
      Result<CouchdbLine> parsed = ParseCouchdbLine(line, options_.keep_metadata);
      if (!parsed.ok()) {
        error_ = parsed.status();
        return false;
      }
      if (parsed->kind == CouchdbLine::Kind::kEnd) ended_ = true;
      if (parsed->kind == CouchdbLine::Kind::kChange && !Push(std::move(parsed->event))) {
        return false;
      }
    }
    partial_.erase(0, start);
    last_byte_ = Clock::now();
    return true;
  }

  bool Push(Event event) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return buffer_.size() < options_.page_size || stop_; });
    if (stop_) return false;
    buffer_.push_back(std::move(event));
    lock.unlock();
    changed_.notify_all();
    return true;
  }

  const CouchdbOptions& options_;
  const Http& http_;
  const std::string since_;

  // Reader thread only.
  std::string partial_;  // bytes after the last newline
  Status error_;
  bool ended_ = false;
  bool idle_ = false;
  Clock::time_point last_byte_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Event> buffer_;  // guarded by mutex_
  bool stop_ = false;         // guarded by mutex_
  bool finished_ = false;     // guarded by mutex_
  Status outcome_;            // guarded by mutex_

  std::thread thread_;  // last: starts after everything it uses
};

// ---- The source -------------------------------------------------------------------------------

// A catch-up page read ahead on another thread (CouchdbSource::Prefetch).
struct NextPage {
  std::string after;
  std::string since;  // the request's since: the last page's last_seq
  size_t limit = 0;
  std::string body;
  std::future<Status> fetched;  // done when `body` holds the page
};

class CouchdbSource final : public Source {
 public:
  explicit CouchdbSource(CouchdbOptions options) : options_(std::move(options)), http_(options_) {}

  Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) override {
    const size_t limit = std::max<size_t>(1, std::min(max_events, options_.page_size));
    if (stream_ && !(stream_position_ == from.token)) stream_.reset();
    const bool waiting = caught_up_at_ && *caught_up_at_ == from.token;
    if (!stream_ && waiting && options_.feed == CouchdbFeed::kContinuous) {
      if (!announced_) {
        Log(LogLevel::kInfo, options_.log_component,
            "caught up; following the continuous changes feed of " + http_.shown_base());
        announced_ = true;
      }
      stream_ = std::make_unique<ChangeStream>(options_, http_, from.token);
      stream_position_ = from.token;
    }
    if (stream_) return PollStream(from, limit);
    return PollPages(from, limit, waiting && options_.feed == CouchdbFeed::kLongpoll);
  }

  Status HealthCheck() override {
    std::string body;
    Status status = http_.Fetch("GET", http_.base(), false, options_.timeout, body);
    if (!status.ok()) return status;
    return Status::Ok();
  }

  Millis IdleWait() const override { return Millis(10); }

  Result<std::unique_ptr<FullRead>> OpenFullRead() override;

  // No: `_changes` from since=0 already holds the latest revision of every document, so a first
  // start reads everything once through the feed (and ends with a checkpoint). A full read
  // beside it would read every document twice.
  bool BackfillOnFirstStart() const override { return false; }

 private:
  Result<std::vector<Event>> PollStream(const Checkpoint& from, size_t limit) {
    std::vector<Event> events = stream_->Take(limit, kStreamWait);
    if (!events.empty()) {
      stream_position_ = events.back().position.token;
      return events;
    }
    const std::optional<Status> outcome = stream_->Outcome();
    if (!outcome) return events;
    stream_.reset();
    if (outcome->ok()) {
      caught_up_at_ = from.token;
      return events;
    }
    caught_up_at_.reset();
    return *outcome;
  }

  Result<std::vector<Event>> PollPages(const Checkpoint& from, size_t limit, bool longpoll) {
    std::string since = from.token;
    for (;;) {
      Status status;
      if (prefetch_ && !longpoll && prefetch_->after == since && prefetch_->limit == limit) {
        // The page after the last one, requested while its events were converted.
        since = std::move(prefetch_->since);
        status = prefetch_->fetched.get();
        page_buffer_ = std::move(prefetch_->body);
        prefetch_.reset();
      } else {
        prefetch_.reset();  // a page after some other position (waits for its request)
        const std::string url =
            http_.ChangesUrl(longpoll ? "longpoll" : "normal", since, limit,
                             longpoll ? std::optional(options_.heartbeat) : std::nullopt);
        // A longpoll request is silent until a change or its own timeout.
        const Millis idle = longpoll ? options_.heartbeat + options_.timeout : options_.timeout;
        status = http_.Fetch("changes", url, http_.has_selector(), idle, page_buffer_);
      }
      if (!status.ok()) {
        caught_up_at_.reset();
        return status;
      }
      page_buffer_.reserve(page_buffer_.size() + simdjson::SIMDJSON_PADDING);
      Result<CouchdbPage> page =
          ParsePaddedPage(simdjson::padded_string_view(page_buffer_.data(), page_buffer_.size(),
                                                       page_buffer_.capacity()),
                          options_.keep_metadata, parser_);
      if (!page.ok()) return page.status();
      if (!page->events.empty()) {
        caught_up_at_.reset();
        // A full page: more is likely to follow, so the next page downloads while the pipeline
        // converts this one. The next Poll starts after this page's last event; the rows after
        // it up to last_seq made no event, so reading on from last_seq gives the same changes.
        if (!longpoll && page->rows == limit) {
          Prefetch(page->events.back().position.token, std::move(page->last_seq), limit);
        }
        return std::move(page->events);
      }
      if (page->rows == 0 || page->last_seq.empty() || page->last_seq == since) {
        caught_up_at_ = from.token;
        return std::vector<Event>();
      }
      since = page->last_seq;  // a page of skipped rows only: read on
    }
  }

  // Starts reading the feed=normal page after `since` on another thread.
  void Prefetch(std::string after, std::string since, size_t limit) {
    prefetch_.emplace();
    NextPage& next = *prefetch_;
    next.after = std::move(after);
    next.since = std::move(since);
    next.limit = limit;
    const std::string url = http_.ChangesUrl("normal", next.since, limit, std::nullopt);
    next.fetched = std::async(std::launch::async, [this, url, &body = next.body] {
      return http_.Fetch("changes", url, http_.has_selector(), options_.timeout, body);
    });
  }

  const CouchdbOptions options_;
  const Http http_;
  // The position at which a page last came back empty: a Poll from there waits for changes.
  std::optional<std::string> caught_up_at_;
  std::unique_ptr<ChangeStream> stream_;
  std::string stream_position_;  // the position of the last event the stream handed out
  // The last catch-up page, kept so that its capacity is reused: pages of a few MiB no longer
  // grow from empty each time, and simdjson's padding usually fits without a copy.
  std::string page_buffer_;
  od::parser parser_;  // its buffers reused for every page
  bool announced_ = false;
  // The catch-up page being read ahead, for a Poll from `after`.
  // Last: its destructor waits for the request under way, which uses the members above.
  std::optional<NextPage> prefetch_;
};

// ---- The full read ----------------------------------------------------------------------------

// A one-pass read of every document as upserts (Source::OpenFullRead), one page per Next.
//
// Without a selector it pages through `_all_docs?include_docs=true` by `startkey`. The cursor is
// the `key` of the last row read, exactly as the server sent it (the document id as JSON); the
// next page starts at that key, which CouchDB includes, and leaves out the row carrying it. The
// recipe with `skip=1` would lose the next document whenever the last one read was deleted in
// between, which a full read running beside live changes must expect.
//
// `_all_docs` cannot filter, so with a selector it reads `_changes?filter=_selector` from since=0
// instead (the latest revision of every matching document) and leaves out the deletes.
class CouchdbFullRead final : public FullRead {
 public:
  explicit CouchdbFullRead(CouchdbOptions options)
      : options_(std::move(options)), http_(options_) {}

  Result<std::vector<Event>> Next(size_t max_events) override {
    const size_t limit = std::max<size_t>(1, std::min(max_events, options_.page_size));
    for (;;) {
      Result<Page> page =
          http_.has_selector() ? ReadChanges(cursor_, limit) : ReadAllDocs(cursor_, limit);
      if (!page.ok()) return page.status();
      if (!page->events.empty()) {
        cursor_ = page->events.back().position.token;
        return std::move(page->events);
      }
      if (page->next.empty() || page->next == cursor_) return std::vector<Event>();
      cursor_ = std::move(page->next);  // a page of design documents or deletes only
    }
  }

 private:
  struct Page {
    std::vector<Event> events;
    std::string next;  // the position after the last row read; empty when none was
  };

  Result<Page> ReadAllDocs(const std::string& after, size_t limit) {
    std::string url = http_.base() + "/_all_docs?include_docs=true&limit=" +
                      std::to_string(after.empty() ? limit : limit + 1);
    if (!after.empty()) url += "&startkey=" + PercentEncode(after);
    std::string body;
    if (Status status = http_.Fetch("all_docs", url, false, options_.timeout, body); !status.ok()) {
      return status;
    }
    Result<CouchdbAllDocsPage> parsed = ParseCouchdbAllDocsPage(body, options_.keep_metadata);
    if (!parsed.ok()) return parsed.status();
    Page page;
    page.next = std::move(parsed->last_key);
    for (Event& event : parsed->events) {
      if (!after.empty() && event.position.token == after) continue;
      if (page.events.size() == limit) {
        page.next = page.events.back().position.token;
        break;
      }
      page.events.push_back(std::move(event));
    }
    return page;
  }

  Result<Page> ReadChanges(const std::string& since, size_t limit) {
    const std::string url = http_.ChangesUrl("normal", since, limit, std::nullopt);
    std::string body;
    if (Status status = http_.Fetch("changes", url, http_.has_selector(), options_.timeout, body);
        !status.ok()) {
      return status;
    }
    Result<CouchdbPage> parsed = ParseCouchdbPage(body, options_.keep_metadata);
    if (!parsed.ok()) return parsed.status();
    Page page;
    if (parsed->rows > 0) page.next = std::move(parsed->last_seq);
    for (Event& event : parsed->events) {
      if (event.op == Op::kUpsert) page.events.push_back(std::move(event));
    }
    return page;
  }

  const CouchdbOptions options_;
  const Http http_;
  std::string cursor_;  // after the last row read: an _all_docs key, or a _changes seq
};

Result<std::unique_ptr<FullRead>> CouchdbSource::OpenFullRead() {
  return std::unique_ptr<FullRead>(std::make_unique<CouchdbFullRead>(options_));
}

Result<std::string> SelectorJson(const Section& section) {
  const YAML::Node node = section.Node("selector");
  if (!node.IsMap()) return InvalidArgument("must be a mapping, a Mango selector");
  return YamlToJson(node);
}

}  // namespace

std::span<const KeySpec> CouchdbKeys() { return kCouchdbKeyTable.specs(); }

Result<CouchdbLine> ParseCouchdbLine(std::string_view line, std::span<const std::string> keep) {
  CouchdbLine result;
  if (Trim(line).empty()) return result;
  simdjson::padded_string padded(line);
  od::parser parser;
  od::document document;
  od::object object;
  Row row;
  simdjson::error_code error = parser.iterate(padded).get(document);
  if (!error) error = document.get_object().get(object);
  if (!error) error = ReadRow(object, keep, row);
  if (error) return Unavailable(ParseErrorMessage("a changes feed line", error, line));
  if (row.seq.empty() && !row.last_seq.empty()) {
    result.kind = CouchdbLine::Kind::kEnd;
    result.last_seq = std::move(row.last_seq);
    return result;
  }
  Result<std::optional<Event>> event = RowToEvent(std::move(row));
  if (!event.ok()) return event.status();
  if (!event->has_value()) {
    result.kind = CouchdbLine::Kind::kSkipped;
    return result;
  }
  result.kind = CouchdbLine::Kind::kChange;
  result.event = std::move(**event);
  return result;
}

Result<CouchdbPage> ParseCouchdbPage(std::string_view body, std::span<const std::string> keep) {
  const simdjson::padded_string padded(body);
  od::parser parser;
  return ParsePaddedPage(padded, keep, parser);
}

Result<CouchdbAllDocsPage> ParseCouchdbAllDocsPage(std::string_view body,
                                                   std::span<const std::string> keep) {
  CouchdbAllDocsPage page;
  simdjson::padded_string padded(body);
  od::parser parser;
  od::document document;
  od::object root;
  auto parse = [&]() -> simdjson::error_code {
    if (auto error = parser.iterate(padded).get(document)) return error;
    if (auto error = document.get_object().get(root)) return error;
    for (auto field_result : root) {
      od::field field;
      if (auto error = std::move(field_result).get(field)) return error;
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) return error;
      if (key == "total_rows") {
        int64_t total = 0;
        if (auto error = field.value().get_int64().get(total)) return error;
        page.total_rows = total;
      } else if (key == "rows") {
        od::array rows;
        if (auto error = field.value().get_array().get(rows)) return error;
        for (auto item : rows) {
          od::object object;
          if (auto error = item.get_object().get(object)) return error;
          Row row;
          if (auto error = ReadRow(object, keep, row)) return error;
          if (row.key.empty()) return simdjson::INCORRECT_TYPE;
          ++page.rows;
          page.last_key = row.key;
          if (row.id.empty() || row.id.starts_with("_design/") || !row.has_doc) continue;
          Event event;
          event.id = std::move(row.id);
          event.document = std::move(row.doc);
          event.position.token = std::move(row.key);
          page.events.push_back(std::move(event));
        }
      }
    }
    return simdjson::SUCCESS;
  };
  if (const simdjson::error_code error = parse()) {
    return Unavailable(ParseErrorMessage("an _all_docs answer", error, body));
  }
  return page;
}

std::string CouchdbSinceParam(std::string_view token) {
  token = Trim(token);
  if (token.empty()) return "0";
  if (token.front() == '"') {
    simdjson::padded_string padded(token);
    simdjson::dom::parser parser;
    std::string_view value;
    if (parser.parse(padded).get_string().get(value) == simdjson::SUCCESS) {
      return PercentEncode(value);
    }
  }
  return PercentEncode(token);
}

std::unique_ptr<Source> MakeCouchdbSource(CouchdbOptions options) {
  return std::make_unique<CouchdbSource>(std::move(options));
}

namespace {

// "" when curl can use `url` as the server URL, else what is wrong. Never repeats the URL: it
// may hold a password.
std::string CheckUrl(const std::string& url) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return "must start with http:// or https://";
  }
  if (const std::optional<UrlUserInfo> info = FindUrlUserInfo(url); info && info->ambiguous) {
    return "the user info before the last '@' holds '/', '?', '#' or '@'; percent-encode them in "
           "the password (%2F, %3F, %23, %40), or set username and password instead";
  }
  if (const std::string problem = HttpUrlProblem(url); !problem.empty()) {
    return "is not a usable URL: " + problem;
  }
  return "";
}

}  // namespace

SourceFactory ParseCouchdbSource(const Section& section, std::string_view pipeline) {
  const size_t errors_before = section.errors().all().size();
  CouchdbOptions options = kCouchdbKeyTable.Read(section);
  if (section.Has("url")) {
    if (const std::string problem = CheckUrl(options.url); !problem.empty()) {
      section.Error("url", problem);
    }
  }
  if (section.Has("database") && options.database.empty()) {
    section.Error("database", "must name a database");
  }
  if (section.Has("password") && !section.Has("username")) {
    section.Error("password", "set username too");
  }
  const std::string feed = section.String("feed");
  if (feed == "continuous") {
    options.feed = CouchdbFeed::kContinuous;
  } else if (feed == "longpoll") {
    options.feed = CouchdbFeed::kLongpoll;
  } else {
    section.Error("feed", "must be continuous or longpoll, got '" + feed + "'");
  }
  if (options.heartbeat < Millis(100)) section.Error("heartbeat", "must be at least 100ms");
  options.timeout = section.Has("timeout") ? section.Duration("timeout") : 3 * options.heartbeat;
  if (options.timeout <= options.heartbeat) {
    section.Error(section.Has("timeout") ? "timeout" : "heartbeat",
                  "timeout must be longer than heartbeat");
  }
  if (section.Has("selector")) {
    Result<std::string> selector = SelectorJson(section);
    if (selector.ok()) {
      options.selector_json = std::move(*selector);
    } else {
      section.Error("selector", selector.status().message());
    }
  }
  if (options.page_size < 1) section.Error("page_size", "must be at least 1");
  for (const std::string& key : options.keep_metadata) {
    if (std::find(std::begin(kKeepableKeys), std::end(kKeepableKeys), key) ==
        std::end(kKeepableKeys)) {
      section.Error("keep_metadata", "can keep _rev and _attachments, got '" + key + "'");
    }
  }
  options.log_component =
      "pipeline=" + std::string(pipeline) + " source=couchdb database=" + options.database;
  if (section.errors().all().size() != errors_before || !section.Has("url") ||
      !section.Has("database")) {
    return nullptr;
  }
  return [options = std::move(options)] { return MakeCouchdbSource(options); };
}

}  // namespace searchsync
