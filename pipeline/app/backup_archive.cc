#include "pipeline/app/backup_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace searchsync {
namespace {

constexpr size_t kChunkBytes = 256 * 1024;
constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer
constexpr int kCompressionLevel = 6;      // zlib's default: most of the gain, at a fair speed

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xF]);
  }
  return out;
}

struct Sha256 {
  Sha256() : context(EVP_MD_CTX_new()) { EVP_DigestInit_ex(context, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(context); }
  void Update(const void* data, size_t size) { EVP_DigestUpdate(context, data, size); }
  std::string FinalHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(context, digest, &size);
    return Hex(digest, size);
  }
  EVP_MD_CTX* context;
};

}  // namespace

// ---- Manifest ------------------------------------------------------------------------------

std::string ManifestToJson(const BackupManifest& manifest) {
  nlohmann::ordered_json json = {
      {"format", manifest.format},
      {"pipeline", manifest.pipeline},
      {"source_type", manifest.source_type},
      {"alias", manifest.alias},
      {"collection", manifest.collection},
      {"schema", nlohmann::ordered_json::parse(manifest.schema_json)},
      {"documents", manifest.documents},
      {"file", manifest.file},
      {"compression", manifest.compression},
      {"compressed_bytes", manifest.compressed_bytes},
      {"sha256", manifest.sha256},
      {"checkpoint", manifest.checkpoint},
      {"searchsync_version", manifest.searchsync_version},
      {"created_at", manifest.created_at},
  };
  return json.dump(2) + "\n";
}

Result<BackupManifest> ParseManifest(std::string_view text, std::string_view where) {
  const std::string prefix = std::string(where) + ": ";
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return InvalidArgument(prefix + "not a JSON object (corrupt manifest)");
  BackupManifest out;
  std::string missing;
  auto string_field = [&](const char* key, std::string& into) {
    const auto it = json.find(key);
    if (it == json.end() || !it->is_string()) {
      missing += std::string(missing.empty() ? "" : ", ") + key;
      return;
    }
    into = it->get<std::string>();
  };
  auto count_field = [&](const char* key, uint64_t& into) {
    const auto it = json.find(key);
    if (it == json.end() || !it->is_number_unsigned()) {
      missing += std::string(missing.empty() ? "" : ", ") + key;
      return;
    }
    into = it->get<uint64_t>();
  };
  string_field("format", out.format);
  if (missing.empty() && out.format != kBackupFormat) {
    return InvalidArgument(prefix + "format '" + out.format + "' is not one this version reads (" +
                           kBackupFormat + ")");
  }
  string_field("pipeline", out.pipeline);
  string_field("source_type", out.source_type);
  string_field("alias", out.alias);
  string_field("collection", out.collection);
  count_field("documents", out.documents);
  string_field("file", out.file);
  string_field("compression", out.compression);
  count_field("compressed_bytes", out.compressed_bytes);
  string_field("sha256", out.sha256);
  string_field("checkpoint", out.checkpoint);
  string_field("searchsync_version", out.searchsync_version);
  string_field("created_at", out.created_at);
  const auto schema = json.find("schema");
  if (schema == json.end() || !schema->is_object() || !schema->contains("fields")) {
    missing += std::string(missing.empty() ? "" : ", ") + "schema";
  } else {
    out.schema_json = schema->dump();
  }
  if (!missing.empty()) {
    return InvalidArgument(prefix + "missing or mistyped keys: " + missing + " (corrupt manifest)");
  }
  if (out.compression != "gzip") {
    return InvalidArgument(prefix + "compression '" + out.compression + "' is not supported");
  }
  if (out.file.empty() || out.file.find('/') != std::string::npos || out.file[0] == '.') {
    return InvalidArgument(prefix + "file '" + out.file + "' is not a plain file name");
  }
  if (out.sha256.size() != 64) {
    return InvalidArgument(prefix + "sha256 is not 64 hex digits");
  }
  return out;
}

// ---- Writer --------------------------------------------------------------------------------

struct GzipFileWriter::State {
  z_stream stream{};
  bool stream_open = false;
  int fd = -1;
  Sha256 sha;
  std::string input;  // lines waiting to be deflated
  std::vector<unsigned char> output = std::vector<unsigned char>(kChunkBytes);
  std::string digest;
  ~State() {
    if (stream_open) deflateEnd(&stream);
    if (fd >= 0) close(fd);
  }
};

Result<std::unique_ptr<GzipFileWriter>> GzipFileWriter::Create(const std::string& path) {
  std::unique_ptr<GzipFileWriter> writer(new GzipFileWriter());
  writer->path_ = path;
  writer->state_ = std::make_unique<State>();
  State& state = *writer->state_;
  state.fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (state.fd < 0) return InvalidArgument("cannot create " + path + ": " + std::strerror(errno));
  if (deflateInit2(&state.stream, kCompressionLevel, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return Internal("zlib deflateInit2 failed");
  }
  state.stream_open = true;
  return writer;
}

GzipFileWriter::~GzipFileWriter() = default;

Status GzipFileWriter::Deflate(std::string_view input, int flush) {
  State& state = *state_;
  state.stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  state.stream.avail_in = static_cast<uInt>(input.size());
  int result = Z_OK;
  do {
    state.stream.next_out = state.output.data();
    state.stream.avail_out = static_cast<uInt>(state.output.size());
    result = deflate(&state.stream, flush);
    if (result == Z_STREAM_ERROR) return Internal("zlib deflate failed");
    const size_t produced = state.output.size() - state.stream.avail_out;
    for (size_t written = 0; written < produced;) {
      const ssize_t n = write(state.fd, state.output.data() + written, produced - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return FailedPrecondition("cannot write " + path_ + ": " + std::strerror(errno));
      written += static_cast<size_t>(n);
    }
    state.sha.Update(state.output.data(), produced);
    compressed_bytes_ += produced;
  } while (state.stream.avail_out == 0 || (flush == Z_FINISH && result != Z_STREAM_END));
  return Status::Ok();
}

Status GzipFileWriter::WriteLine(std::string_view line) {
  State& state = *state_;
  state.input.append(line);
  state.input.push_back('\n');
  ++lines_;
  if (state.input.size() < kChunkBytes) return Status::Ok();
  Status status = Deflate(state.input, Z_NO_FLUSH);
  state.input.clear();
  return status;
}

Status GzipFileWriter::Finish() {
  State& state = *state_;
  if (Status status = Deflate(state.input, Z_FINISH); !status.ok()) return status;
  state.input.clear();
  deflateEnd(&state.stream);
  state.stream_open = false;
  state.digest = state.sha.FinalHex();
  // The manifest written next vouches for this file: it must be on disk first.
  if (fsync(state.fd) != 0) {
    return FailedPrecondition("cannot fsync " + path_ + ": " + std::strerror(errno));
  }
  const int fd = state.fd;
  state.fd = -1;
  if (close(fd) != 0)
    return FailedPrecondition("cannot close " + path_ + ": " + std::strerror(errno));
  return Status::Ok();
}

std::string GzipFileWriter::sha256_hex() const { return state_->digest; }

// ---- Reading -------------------------------------------------------------------------------

Result<FileDigest> DigestFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  FileDigest digest;
  Sha256 sha;
  std::vector<char> buffer(kChunkBytes);
  size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) {
    sha.Update(buffer.data(), got);
    digest.bytes += got;
  }
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return InvalidArgument("cannot read " + path);
  digest.sha256 = sha.FinalHex();
  return digest;
}

Status ReadGzipLines(const std::string& path,
                     const std::function<Status(std::string_view line)>& on_line) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  z_stream stream{};
  if (inflateInit2(&stream, kGzipWindowBits) != Z_OK) {
    std::fclose(file);
    return Internal("zlib inflateInit2 failed");
  }
  std::vector<unsigned char> input(kChunkBytes);
  std::vector<char> output(kChunkBytes);
  std::string pending;  // a line not yet ended, carried across chunks
  Status status;
  bool ended = false;
  while (status.ok() && !ended) {
    const size_t got = std::fread(input.data(), 1, input.size(), file);
    if (got == 0) {
      status = InvalidArgument(path + ": truncated: the file ends before its gzip stream does");
      break;
    }
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(got);
    while (status.ok() && stream.avail_in > 0 && !ended) {
      stream.next_out = reinterpret_cast<Bytef*>(output.data());
      stream.avail_out = static_cast<uInt>(output.size());
      const int result = inflate(&stream, Z_NO_FLUSH);
      if (result == Z_STREAM_END) {
        ended = true;
      } else if (result != Z_OK && result != Z_BUF_ERROR) {
        status = InvalidArgument(path + ": corrupt gzip data (" +
                                 (stream.msg != nullptr ? stream.msg : "zlib error") + ")");
        break;
      }
      const size_t produced = output.size() - stream.avail_out;
      std::string_view chunk(output.data(), produced);
      while (status.ok()) {
        const size_t newline = chunk.find('\n');
        if (newline == std::string_view::npos) {
          pending.append(chunk);
          break;
        }
        if (pending.empty()) {
          status = on_line(chunk.substr(0, newline));
        } else {
          pending.append(chunk.substr(0, newline));
          status = on_line(pending);
          pending.clear();
        }
        chunk.remove_prefix(newline + 1);
      }
    }
    if (status.ok() && ended && (stream.avail_in > 0 || std::fgetc(file) != EOF)) {
      status = InvalidArgument(path + ": corrupt: bytes follow the end of the gzip stream");
    }
  }
  inflateEnd(&stream);
  std::fclose(file);
  if (status.ok() && !pending.empty()) status = on_line(pending);
  return status;
}

}  // namespace searchsync
