#pragma once
// S3Server: a throwaway S3-compatible server for tests: npm's s3rver, installed under tests/node
// by .ci/install-deps, started on a free port with its data in a temp dir and one bucket made at
// start-up. It knows one key pair, kAccessKeyId/kSecretAccessKey, and addresses buckets
// path-style (http://127.0.0.1:PORT/BUCKET/KEY).
//
//   auto s3 = S3Server::Start("backups");
//   REQUIRE(s3.ok());
//   (*s3)->Keys("products/");
//
// Thread safety: one test thread owns an S3Server.

#include <memory>
#include <string>
#include <vector>

#include "pipeline/status.h"
#include "tests/support/server_process.h"

namespace searchsync::test {

class S3Server {
 public:
  static constexpr char kAccessKeyId[] = "S3RVER";
  static constexpr char kSecretAccessKey[] = "S3RVER";

  // kFailedPrecondition when s3rver is not installed (run .ci/install-deps).
  static Result<std::unique_ptr<S3Server>> Start(const std::string& bucket);
  ~S3Server();

  std::string url() const;  // http://127.0.0.1:PORT
  const std::string& bucket() const { return bucket_; }
  // Every key of the bucket under `prefix`, read from s3rver's data directory (no HTTP).
  std::vector<std::string> Keys(const std::string& prefix = "") const;
  // The file s3rver keeps an object's bytes in, so tests can damage it.
  std::string ObjectPath(const std::string& key) const;

 private:
  S3Server() = default;

  std::string data_dir_;
  std::string bucket_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace searchsync::test
