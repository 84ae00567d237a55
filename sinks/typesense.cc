#include "sinks/typesense.h"

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "pipeline/log.h"
#include "pipeline/pacing.h"
#include "sinks/typesense_client.h"
#include "sinks/typesense_encode.h"
#include "sinks/typesense_http_result.h"

namespace searchsync {
namespace {

constexpr int kAlreadyExists = 409;  // per-line import code of action=create for a stored id
constexpr long kPayloadTooLarge = 413;
// Typesense refuses writes once more raft chunks than its healthy-write-lag (500 by default)
// wait to be indexed; past half of that, fewer requests in flight let the queue drain first.
constexpr double kLaggingWriteBatches = 250;
constexpr std::chrono::seconds kWriteQueueWatchInterval{1};

// Where each line of an import body starts, so that any run of lines is one substring.
std::vector<size_t> LineStarts(std::string_view jsonl) {
  std::vector<size_t> starts{0};
  for (size_t at = jsonl.find('\n'); at != std::string_view::npos; at = jsonl.find('\n', at + 1)) {
    starts.push_back(at + 1);
  }
  return starts;
}

class TypesenseSink final : public Sink {
 public:
  TypesenseSink(const TypesenseOptions& typesense, const SinkOptions& sink, std::string component,
                TypesenseSinkTarget target)
      : client_(ClientOptionsOf(typesense), component),
        component_(std::move(component)),
        alias_(sink.collection),
        schema_json_(sink.schema_json),
        explicit_target_(target.collection.has_value()),
        collection_(target.collection.value_or(sink.collection)),
        pacer_(sink.concurrency) {}

  // Sink
  Status HealthCheck() override { return client_.Health(); }
  Status Prepare() override;
  Result<WriteReport> Write(const Batch& batch) override;
  int InFlightLimit() const override { return pacer_.limit(); }

 private:
  Result<WriteReport> WriteUnpaced(const Batch& batch);
  // At most once a second: Typesense's write queue past kLaggingWriteBatches lowers the limit
  // before the server starts refusing writes.
  void WatchWriteQueue();
  // Sends the batch's deletes. When a proxy or the server refuses a delete by filter as a
  // whole for good (e.g. 414: its URI is too long for a proxy), the ids go one by one; an id
  // refused alone is rejected with that reason.
  Status DeleteAll(const Batch& batch, WriteReport& report);
  // Imports lines [first, first + count) of `body` and adds their outcome to `report`. A
  // request refused as a whole for good (a 4xx that is about the request, such as a proxy's
  // 413 body limit) is split in halves, down to single documents; a document refused alone is
  // rejected with that reason. Errors: kUnavailable and the like, as from the client.
  Status ImportLines(const ImportBody& body, std::span<const size_t> line_starts, size_t first,
                     size_t count, std::string_view action, WriteReport& report);

  TypesenseClient client_;
  const std::string component_;
  const std::string alias_;
  const std::string schema_json_;
  const bool explicit_target_;
  // Where every write goes: the explicit target, or the collection the alias pointed at when
  // Prepare ran. Writes never go through the alias: a reindex moves it while batches are in
  // flight, and each batch must land in the collection the pipeline means (see reindex.h).
  std::string collection_;
  InFlightPacer pacer_;
  std::mutex watch_mutex_;  // one write-queue look at a time
  std::chrono::steady_clock::time_point next_watch_{};
};

Status TypesenseSink::Prepare() {
  if (explicit_target_) {
    Result<bool> exists = client_.CollectionExists(collection_);
    if (!exists.ok()) return exists.status();
    if (!*exists) {
      return FailedPrecondition("typesense collection '" + collection_ + "' does not exist");
    }
    return Status::Ok();
  }

  Result<std::optional<std::string>> aliased = client_.GetAlias(alias_);
  if (!aliased.ok()) return aliased.status();
  if (aliased->has_value()) {
    collection_ = aliased->value();
    Log(LogLevel::kInfo, component_, "using alias " + alias_ + " collection=" + collection_);
    return Status::Ok();
  }
  // No alias: a real collection of that name (an older setup) is used as it is. Typesense
  // resolves aliases here too, so an alias another daemon put since the look above answers with
  // its target's name: write there, as if the alias had been seen.
  Result<std::optional<CollectionInfo>> existing = client_.GetCollection(alias_);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    collection_ = (*existing)->name;
    Log(LogLevel::kInfo, component_,
        collection_ == alias_ ? "using collection " + alias_ + " (a real collection, not an alias)"
                              : "using alias " + alias_ + " collection=" + collection_);
    return Status::Ok();
  }

  // The first collection of an alias has one fixed name, not the time of the start: two
  // daemons of one pipeline starting together (two machines, two state directories) then create
  // the same collection, the second create answers 409, and both put the alias on it. Names
  // from two clocks would give two collections with the alias on only one of them.
  const std::string name = FirstCollectionName(alias_);
  Result<std::string> schema = SchemaWithName(schema_json_, name);
  if (!schema.ok()) return schema.status();
  if (Status created = client_.CreateCollection(*schema); !created.ok()) {
    // Created by the other daemon, or by us on a connection cut after the server created it
    // (a retried create then answers 409): the collection being there is what counts.
    Result<bool> exists_now = client_.CollectionExists(name);
    if (!exists_now.ok() || !*exists_now) return created;
  }
  if (Status status = client_.PutAlias(alias_, name); !status.ok()) return status;
  collection_ = name;
  Log(LogLevel::kInfo, component_, "created collection " + name + " and alias " + alias_);
  return Status::Ok();
}

Status TypesenseSink::DeleteAll(const Batch& batch, WriteReport& report) {
  const DeletePlan plan = PlanDeletes(batch);
  bool one_by_one = false;
  for (const std::string& filter : plan.encoded_filters) {
    const Status status = client_.DeleteByFilter(collection_, filter);
    if (status.code() == StatusCode::kInvalidArgument) {
      Log(LogLevel::kWarn, component_,
          status.message() + "; deleting the batch's ids one by one instead");
      one_by_one = true;
      break;
    }
    if (!status.ok()) return status;
  }
  for (size_t event_idx = 0; event_idx < batch.events.size(); ++event_idx) {
    const Event& event = batch.events[event_idx];
    if (event.op != Op::kDelete || (!one_by_one && IdFitsDeleteFilter(event.id))) continue;
    // Typesense refuses empty ids, so no stored document has one.
    if (event.id.empty()) continue;
    const Status status = client_.DeleteDocument(collection_, event.id);
    if (status.code() == StatusCode::kInvalidArgument) {
      report.rejected.push_back(Rejection{.event_index = event_idx, .error = status.message()});
    } else if (!status.ok()) {
      return status;
    }
  }
  return Status::Ok();
}

Status TypesenseSink::ImportLines(const ImportBody& body, std::span<const size_t> line_starts,
                                  size_t first, size_t count, std::string_view action,
                                  WriteReport& report) {
  const size_t begin = line_starts[first];
  const size_t end =
      first + count < line_starts.size() ? line_starts[first + count] - 1 : body.jsonl.size();
  const std::string_view lines = std::string_view(body.jsonl).substr(begin, end - begin);
  const std::string target = ImportTarget(collection_, action);
  const std::string context = "typesense POST " + target.substr(0, target.find('?'));
  Result<HttpResponse> response =
      client_.Send("POST", target, lines, "text/plain", TypesenseClient::Timeout::kBulk);
  if (!response.ok()) return response.status();
  const Status status = ClassifyHttpResult(context, "", response->status, response->body);
  const std::span<const size_t> line_events =
      std::span<const size_t>(body.line_events).subspan(first, count);
  if (status.ok()) {
    Result<WriteReport> part = ParseImportResponse(response->body, line_events);
    if (!part.ok()) return Status(part.status().code(), context + ": " + part.status().message());
    report.rejected.insert(report.rejected.end(), part->rejected.begin(), part->rejected.end());
    report.retryable.insert(report.retryable.end(), part->retryable.begin(), part->retryable.end());
    return Status::Ok();
  }
  if (status.code() != StatusCode::kInvalidArgument) return status;
  if (count == 1) {
    const std::string why =
        response->status == kPayloadTooLarge
            ? "the document is too large: a request holding only this document (" +
                  std::to_string(lines.size()) +
                  " bytes) exceeds a body size limit between searchsync and Typesense (e.g. "
                  "nginx's client_max_body_size)"
            : ServerMessage(response->body) + " (a request holding only this document)";
    report.rejected.push_back(Rejection{.event_index = line_events.front(),
                                        .code = static_cast<int>(response->status),
                                        .error = context + ": " + why});
    return Status::Ok();
  }
  if (count == body.line_events.size()) {
    Log(LogLevel::kWarn, component_,
        status.message() + "; the import of " + std::to_string(count) +
            " documents was refused as a whole, sending it in smaller parts");
  }
  const size_t half = count / 2;
  if (Status part = ImportLines(body, line_starts, first, half, action, report); !part.ok()) {
    return part;
  }
  return ImportLines(body, line_starts, first + half, count - half, action, report);
}

Result<WriteReport> TypesenseSink::Write(const Batch& batch) {
  const uint64_t ticket = pacer_.Start();
  Result<WriteReport> report = WriteUnpaced(batch);
  // kUnavailable: 503 "Not Ready or Lagging", 429, other 5xx, or no answer at all.
  pacer_.Done(ticket, !report.ok() && report.status().code() == StatusCode::kUnavailable);
  WatchWriteQueue();
  return report;
}

void TypesenseSink::WatchWriteQueue() {
  std::unique_lock lock(watch_mutex_, std::try_to_lock);
  const auto now = std::chrono::steady_clock::now();
  if (!lock.owns_lock() || now < next_watch_) return;
  next_watch_ = now + kWriteQueueWatchInterval;
  Result<HttpResponse> stats = client_.Send("GET", "/stats.json");
  if (!stats.ok() || stats->status != 200) return;  // the writes themselves will tell
  const nlohmann::json answer = nlohmann::json::parse(stats->body, nullptr, false);
  if (!answer.is_object()) return;
  const auto pending = answer.find("pending_write_batches");
  if (pending != answer.end() && pending->is_number() &&
      pending->get<double>() > kLaggingWriteBatches) {
    pacer_.Overloaded();
  }
}

Result<WriteReport> TypesenseSink::WriteUnpaced(const Batch& batch) {
  // Ids are unique within a batch, so deletes and the import may go in either order.
  Result<WriteReport> report = WriteReport{};
  if (Status status = DeleteAll(batch, *report); !status.ok()) return status;

  const ImportBody body = EncodeUpserts(batch);
  if (body.empty()) return report;
  if (Status status = ImportLines(body, LineStarts(body.jsonl), 0, body.line_events.size(),
                                  batch.create_only ? "create" : "upsert", *report);
      !status.ok()) {
    return status;
  }
  if (batch.create_only) {
    // 409 "A document with id X already exists.": a live change got there first and wins.
    std::erase_if(report->rejected, [&](const Rejection& rejection) {
      if (rejection.code != kAlreadyExists) return false;
      ++report->already_present;
      return true;
    });
  }
  if (!report->rejected.empty() && LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, component_,
        "import rejected=" + std::to_string(report->rejected.size()) +
            " of=" + std::to_string(body.line_events.size()) + " first_error=\"" +
            report->rejected.front().error + "\"");
  }
  return report;
}

}  // namespace

std::unique_ptr<Sink> MakeTypesenseSink(const TypesenseOptions& typesense, const SinkOptions& sink,
                                        std::string component, TypesenseSinkTarget target) {
  return std::make_unique<TypesenseSink>(typesense, sink, std::move(component), std::move(target));
}

}  // namespace searchsync
