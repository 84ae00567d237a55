#include "sinks/typesense_collections.h"

#include "sinks/collections.h"
#include "sinks/typesense.h"
#include "sinks/typesense_client.h"

namespace searchsync {
namespace {

class TypesenseCollections : public CollectionAdmin {
 public:
  TypesenseCollections(const TypesenseOptions& typesense, const SinkOptions& sink,
                       std::string component)
      : typesense_(typesense),
        sink_(sink),
        client_(ClientOptionsOf(typesense), std::move(component)) {}

  const std::string& alias() const override { return sink_.collection; }

  Result<std::optional<std::string>> LiveCollection() override {
    return client_.GetAlias(sink_.collection);
  }

  Result<std::string> CreateBeside(
      std::string_view schema_json,
      const std::function<Status(const std::string&)>& before_create) override {
    return CreateTimestampedCollection(client_, sink_.collection, schema_json,
                                       std::chrono::system_clock::now(), before_create);
  }

  Result<std::optional<CollectionFacts>> Describe(const std::string& name) override {
    Result<std::optional<CollectionInfo>> info = client_.GetCollection(name);
    if (!info.ok()) return info.status();
    if (!info->has_value()) return std::optional<CollectionFacts>();
    return std::optional<CollectionFacts>(CollectionFacts{.name = (*info)->name,
                                                          .documents = (*info)->num_documents,
                                                          .schema_json = (*info)->schema_json});
  }

  std::unique_ptr<Sink> OpenSink(const std::string& name, std::string component) override {
    return MakeTypesenseSink(typesense_, sink_, std::move(component), {.collection = name});
  }

  Result<std::optional<std::string>> MakeLive(const std::string& name) override {
    Result<std::optional<std::string>> before = client_.GetAlias(sink_.collection);
    if (!before.ok()) return before.status();
    if (Status status = client_.PutAlias(sink_.collection, name); !status.ok()) return status;
    return before;
  }

  Status Drop(const std::string& name) override { return client_.DropCollection(name); }

  Result<std::vector<std::string>> RetireOld(size_t keep) override {
    return RetireOldCollections(client_, sink_.collection, keep);
  }

  Result<std::vector<std::string>> SchemaDifferences(std::string_view schema_json) const override {
    return searchsync::SchemaDifferences(sink_.schema_json, schema_json);
  }

 private:
  const TypesenseOptions typesense_;
  const SinkOptions sink_;
  TypesenseClient client_;
};

}  // namespace

std::unique_ptr<CollectionAdmin> MakeTypesenseCollections(const TypesenseOptions& typesense,
                                                          const SinkOptions& sink,
                                                          std::string component) {
  return std::make_unique<TypesenseCollections>(typesense, sink, std::move(component));
}

}  // namespace searchsync
