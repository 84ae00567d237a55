#include "pipeline/app/backup_archive.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"
#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> SampleLines(int count) {
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i) {
    lines.push_back("{\"id\":\"doc-" + std::to_string(i) + "\",\"text\":\"" +
                    std::string(static_cast<size_t>(i % 300), 'x') + " ü\"}");
  }
  return lines;
}

// Writes `lines` through GzipFileWriter; returns its digest as it reported it.
FileDigest WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  auto writer = GzipFileWriter::Create(path);
  REQUIRE(writer.ok());
  for (const std::string& line : lines) REQUIRE((*writer)->WriteLine(line).ok());
  REQUIRE((*writer)->Finish().ok());
  CHECK((*writer)->lines() == lines.size());
  return {(*writer)->compressed_bytes(), (*writer)->sha256_hex()};
}

Result<std::vector<std::string>> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  Status status = ReadGzipLines(path, [&](std::string_view line) {
    lines.emplace_back(line);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return lines;
}

BackupManifest SampleManifest() {
  BackupManifest manifest;
  manifest.pipeline = "products";
  manifest.source_type = "postgres";
  manifest.alias = "products";
  manifest.collection = "products_20261121T031500Z";
  manifest.schema_json = R"({"fields":[{"name":"title","type":"string"}]})";
  manifest.documents = 3;
  manifest.compressed_bytes = 42;
  manifest.sha256 = std::string(64, 'a');
  manifest.checkpoint = "2026-11-21T03:14:59.123456Z|p-9";
  manifest.searchsync_version = "0.1.0";
  manifest.created_at = "2026-11-21T03:15:00Z";
  return manifest;
}

}  // namespace

TEST_CASE("Gzip lines round-trip, and the writer's digest is the file's", "[unit][backup]") {
  test::TempDir dir;
  const std::vector<std::string> lines = SampleLines(5'000);  // several deflate chunks
  const FileDigest written = WriteLines(dir / "docs.gz", lines);
  const Result<FileDigest> read = DigestFile(dir / "docs.gz");
  REQUIRE(read.ok());
  CHECK(read->bytes == written.bytes);
  CHECK(read->bytes == fs::file_size(dir / "docs.gz"));
  CHECK(read->sha256 == written.sha256);
  CHECK(read->sha256.size() == 64);
  const auto back = ReadLines(dir / "docs.gz");
  REQUIRE(back.ok());
  CHECK(*back == lines);
}

TEST_CASE("An empty collection makes a valid, empty backup file", "[unit][backup]") {
  test::TempDir dir;
  WriteLines(dir / "empty.gz", {});
  const auto back = ReadLines(dir / "empty.gz");
  REQUIRE(back.ok());
  CHECK(back->empty());
}

TEST_CASE("Truncated, corrupt and padded gzip files are refused with the file's name",
          "[unit][backup]") {
  test::TempDir dir;
  const std::string path = dir / "docs.gz";
  WriteLines(path, SampleLines(2'000));
  const auto size = fs::file_size(path);

  SECTION("truncated") {
    fs::resize_file(path, size - 9);  // cuts into the trailer
    const auto back = ReadLines(path);
    REQUIRE_FALSE(back.ok());
    CHECK(back.status().message().find(path) != std::string::npos);
    CHECK(back.status().message().find("truncated") != std::string::npos);
  }
  SECTION("corrupt") {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 2));
    for (int i = 0; i < 16; ++i) file.put('\xff');
    file.close();
    const auto back = ReadLines(path);
    REQUIRE_FALSE(back.ok());
    CHECK(back.status().message().find(path) != std::string::npos);
  }
  SECTION("bytes after the stream") {
    std::ofstream(path, std::ios::app | std::ios::binary) << "garbage";
    const auto back = ReadLines(path);
    REQUIRE_FALSE(back.ok());
    CHECK(back.status().message().find("follow the end") != std::string::npos);
  }
  SECTION("not gzip at all") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "{\"id\":\"1\"}\n";
    CHECK_FALSE(ReadLines(path).ok());
  }
}

TEST_CASE("A manifest round-trips through JSON", "[unit][backup]") {
  const BackupManifest manifest = SampleManifest();
  const Result<BackupManifest> back = ParseManifest(ManifestToJson(manifest), "m.json");
  REQUIRE(back.ok());
  CHECK(back->pipeline == manifest.pipeline);
  CHECK(back->schema_json == manifest.schema_json);
  CHECK(back->documents == 3);
  CHECK(back->compressed_bytes == 42);
  CHECK(back->sha256 == manifest.sha256);
  CHECK(back->checkpoint == manifest.checkpoint);
  CHECK(back->file == kBackupDocumentsFile);
}

TEST_CASE("Broken manifests are refused with where and what", "[unit][backup]") {
  auto error = [](const std::string& text) {
    const Result<BackupManifest> parsed = ParseManifest(text, "/b/manifest.json");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().message().starts_with("/b/manifest.json: "));
    return parsed.status().message();
  };
  std::string json = ManifestToJson(SampleManifest());
  CHECK(error(json.substr(0, json.size() / 2)).find("not a JSON object") != std::string::npos);
  CHECK(error("{\"format\":\"searchsync-backup/9\"}").find("searchsync-backup/9") !=
        std::string::npos);
  CHECK(error("{\"format\":\"searchsync-backup/1\"}").find("sha256") != std::string::npos);
  std::string escaping = json;
  escaping.replace(escaping.find("documents.jsonl.gz"), 18, "../../etc/passwd");
  CHECK(error(escaping).find("not a plain file name") != std::string::npos);
}

TEST_CASE("backup and s3 keys parse, and an s3:// location needs credentials", "[unit][backup]") {
  const std::string base = R"(typesense:
  nodes: http://127.0.0.1:8108
  api_key: xyz
S3
pipelines:
  - name: products
    source: { type: postgres, dsn: "postgres://localhost/shop", table: products, primary_key: id, updated_at: updated_at }
    sink: { collection: products, schema: { fields: [{ name: title, type: string }] } }
    backup: { to: "s3://backups/nightly", schedule: "30 2 * * *", keep: 3 }
)";
  auto with = [&](const std::string& s3) {
    std::string text = base;
    text.replace(text.find("S3"), 2, s3);
    return text;
  };
  const Result<Config> config = ParseConfig(
      with("s3: { endpoint: \"http://127.0.0.1:9000\", access_key_id: a, secret_access_key: b }"),
      "p.yaml");
  REQUIRE(config.ok());
  CHECK(config->s3.endpoint == "http://127.0.0.1:9000");
  CHECK(config->s3.region == "us-east-1");
  CHECK(config->s3.secret_access_key.value() == "b");
  CHECK(config->pipelines[0].backup.to == "s3://backups/nightly");
  CHECK(config->pipelines[0].backup.schedule == "30 2 * * *");
  CHECK(config->pipelines[0].backup.keep == 3);

  const Result<Config> missing = ParseConfig(with(""), "p.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("p.yaml:9:") != std::string::npos);
  CHECK(missing.status().message().find("access_key_id") != std::string::npos);
}

}  // namespace searchsync
