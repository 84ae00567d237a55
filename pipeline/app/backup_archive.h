#pragma once
// The on-disk form of one backup: a gzip file of documents (one JSON object per line, as
// Typesense exports them) and a manifest that describes and checksums it.
//
//   <dest>/<pipeline>/<UTC timestamp>/documents.jsonl.gz
//   <dest>/<pipeline>/<UTC timestamp>/manifest.json     (written last: no manifest, no backup)
//
// Everything here streams: the writer compresses and hashes as lines arrive, the reader
// inflates a file in fixed-size chunks, so memory does not grow with the collection.
//
// Thread safety: instances belong to one thread.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pipeline/status.h"

namespace searchsync {

inline constexpr char kBackupDocumentsFile[] = "documents.jsonl.gz";
inline constexpr char kBackupManifestFile[] = "manifest.json";
inline constexpr char kBackupFormat[] = "searchsync-backup/1";

struct BackupManifest {
  std::string format = kBackupFormat;
  std::string pipeline;
  std::string source_type;
  std::string alias;        // the collection name searches use
  std::string collection;   // the real collection that was exported
  std::string schema_json;  // as Typesense returned it, without name, num_documents, created_at
  uint64_t documents = 0;   // lines in the documents file
  std::string file = kBackupDocumentsFile;
  std::string compression = "gzip";
  uint64_t compressed_bytes = 0;
  std::string sha256;  // lowercase hex, of the compressed file
  // The pipeline's checkpoint read before the export began; empty when it had none.
  std::string checkpoint;
  std::string searchsync_version;
  std::string created_at;  // UTC, ISO 8601
};

std::string ManifestToJson(const BackupManifest& manifest);
// kInvalidArgument naming `where` (e.g. the manifest's path) and the problem when the text is
// not a manifest this version can read.
Result<BackupManifest> ParseManifest(std::string_view json, std::string_view where);

// Gzip-compresses lines into a file and hashes the compressed bytes as they are written.
class GzipFileWriter {
 public:
  // Creates (or truncates) `path`. kInvalidArgument when it cannot be created.
  static Result<std::unique_ptr<GzipFileWriter>> Create(const std::string& path);
  ~GzipFileWriter();
  GzipFileWriter(const GzipFileWriter&) = delete;
  GzipFileWriter& operator=(const GzipFileWriter&) = delete;

  // Appends `line` and a '\n'.
  Status WriteLine(std::string_view line);
  // Ends the gzip stream, flushes and fsyncs the file, and closes it.
  Status Finish();

  uint64_t lines() const { return lines_; }
  uint64_t compressed_bytes() const { return compressed_bytes_; }
  std::string sha256_hex() const;  // valid after Finish()

 private:
  GzipFileWriter() = default;
  Status Deflate(std::string_view input, int flush);

  struct State;
  std::unique_ptr<State> state_;
  std::string path_;
  uint64_t lines_ = 0;
  uint64_t compressed_bytes_ = 0;
};

struct FileDigest {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
};
// Size and SHA-256 of a file, read in chunks. kInvalidArgument when it cannot be read.
Result<FileDigest> DigestFile(const std::string& path);

// Inflates the gzip file at `path` and hands each line (without '\n') to `on_line`, in order.
// kInvalidArgument naming the file when it is not gzip, is corrupt, ends before the gzip
// stream does (truncated), or carries bytes after it. A non-OK status from `on_line` stops the
// read and is returned.
Status ReadGzipLines(const std::string& path,
                     const std::function<Status(std::string_view line)>& on_line);

}  // namespace searchsync
