#include "sinks/typesense.h"

#include <chrono>
#include <utility>

#include "pipeline/log.h"
#include "sinks/typesense_client.h"
#include "sinks/typesense_encode.h"

namespace searchsync {
namespace {

constexpr int kAlreadyExists = 409;  // per-line import code of action=create for a stored id

class TypesenseSink final : public Sink {
 public:
  TypesenseSink(const TypesenseOptions& typesense, const SinkOptions& sink, std::string component,
                TypesenseSinkTarget target)
      : client_(TypesenseClientOptions{.nodes = typesense.nodes,
                                       .api_key = typesense.api_key,
                                       .timeout = typesense.timeout},
                component),
        component_(std::move(component)),
        alias_(sink.collection),
        schema_json_(sink.schema_json),
        explicit_target_(target.collection.has_value()),
        collection_(target.collection.value_or(sink.collection)) {}

  // Sink
  Status HealthCheck() override { return client_.Health(); }
  Status Prepare() override;
  Result<WriteReport> Write(const Batch& batch) override;

 private:
  Status DeleteAll(const Batch& batch);

  TypesenseClient client_;
  const std::string component_;
  const std::string alias_;
  const std::string schema_json_;
  const bool explicit_target_;
  // Where every write goes: the explicit target, or the collection the alias pointed at when
  // Prepare ran. Writes never go through the alias: a reindex moves it while batches are in
  // flight, and each batch must land in the collection the pipeline means (see reindex.h).
  std::string collection_;
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
  // No alias: a real collection of that name (an older setup) is used as it is.
  Result<bool> exists = client_.CollectionExists(alias_);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    Log(LogLevel::kInfo, component_,
        "using collection " + alias_ + " (a real collection, not an alias)");
    return Status::Ok();
  }

  const std::string name = TimestampedCollectionName(alias_, std::chrono::system_clock::now());
  Result<std::string> schema = SchemaWithName(schema_json_, name);
  if (!schema.ok()) return schema.status();
  if (Status created = client_.CreateCollection(*schema); !created.ok()) {
    // The connection may have been cut after the server created it (a retried create then
    // answers 409): the collection being there is what counts.
    Result<bool> exists_now = client_.CollectionExists(name);
    if (!exists_now.ok() || !*exists_now) return created;
  }
  if (Status status = client_.PutAlias(alias_, name); !status.ok()) return status;
  collection_ = name;
  Log(LogLevel::kInfo, component_, "created collection " + name + " and alias " + alias_);
  return Status::Ok();
}

Status TypesenseSink::DeleteAll(const Batch& batch) {
  const DeletePlan plan = PlanDeletes(batch);
  for (const std::string& filter : plan.encoded_filters) {
    if (Status status = client_.DeleteByFilter(collection_, filter); !status.ok()) return status;
  }
  for (const std::string& id : plan.single_ids) {
    // Typesense refuses empty ids, so no stored document has one.
    if (id.empty()) continue;
    if (Status status = client_.DeleteDocument(collection_, id); !status.ok()) return status;
  }
  return Status::Ok();
}

Result<WriteReport> TypesenseSink::Write(const Batch& batch) {
  // Ids are unique within a batch, so deletes and the import may go in either order.
  if (Status status = DeleteAll(batch); !status.ok()) return status;

  const ImportBody body = EncodeUpserts(batch);
  if (body.empty()) return WriteReport{};
  Result<std::string> response =
      client_.Import(collection_, body.jsonl, batch.create_only ? "create" : "upsert");
  if (!response.ok()) return response.status();
  Result<WriteReport> report = ParseImportResponse(*response, body.line_events);
  if (!report.ok()) {
    return Status(report.status().code(), "typesense POST /collections/" + collection_ +
                                              "/documents/import: " + report.status().message());
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
