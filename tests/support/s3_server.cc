#include "tests/support/s3_server.h"

#include <httplib.h>

#include <algorithm>
#include <filesystem>

namespace searchsync::test {

namespace {

constexpr char kObjectSuffix[] = "._S3rver_object";

std::string S3rverBinary() {
  return std::string(SEARCHSYNC_SOURCE_DIR) + "/tests/node/node_modules/.bin/s3rver";
}

}  // namespace

Result<std::unique_ptr<S3Server>> S3Server::Start(const std::string& bucket) {
  if (!std::filesystem::exists(S3rverBinary())) {
    return FailedPrecondition(S3rverBinary() + " is missing; run .ci/install-deps");
  }
  std::unique_ptr<S3Server> server(new S3Server());
  server->bucket_ = bucket;
  server->data_dir_ = MakeTempDir("searchsync-s3-");
  if (server->data_dir_.empty()) return Internal("could not make a temp dir");
  // Port 0: s3rver binds a free port and prints it.
  auto process = ServerProcess::Start({
      .argv = {"node", S3rverBinary(), "--directory", server->data_dir_, "--address", "127.0.0.1",
               "--port", "0", "--silent", "--configure-bucket", bucket},
      .working_dir = server->data_dir_,
  });
  if (!process.ok()) return process.status();
  server->process_ = std::move(*process);
  server->port_ = WaitForLoggedPort(*server->process_, "S3rver listening on 127.0.0.1:", 30s);
  if (server->port_ == 0) {
    return Unavailable("s3rver printed no port: " + server->process_->Describe());
  }
  const int port = server->port_;
  Status ready = server->process_->WaitReady(
      [port] {
        httplib::Client client("127.0.0.1", port);
        client.set_connection_timeout(1);
        const httplib::Result result = client.Get("/");
        return static_cast<bool>(result) && result->status == 200;
      },
      30s);
  if (!ready.ok()) return ready;
  return server;
}

S3Server::~S3Server() {
  process_.reset();
  if (!data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

std::string S3Server::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> S3Server::Keys(const std::string& prefix) const {
  std::vector<std::string> keys;
  const std::filesystem::path root = std::filesystem::path(data_dir_) / bucket_;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string relative = std::filesystem::relative(it->path(), root, ec).string();
    if (!relative.ends_with(kObjectSuffix)) continue;
    const std::string key = relative.substr(0, relative.size() - (sizeof kObjectSuffix - 1));
    if (key.starts_with(prefix)) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::string S3Server::ObjectPath(const std::string& key) const {
  return data_dir_ + "/" + bucket_ + "/" + key + kObjectSuffix;
}

}  // namespace searchsync::test
