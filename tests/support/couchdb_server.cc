#include "tests/support/couchdb_server.h"

#include <httplib.h>

#include <filesystem>

namespace searchsync::test {

namespace {

constexpr int kMaxPortAttempts = 3;

std::string PouchdbServerBinary() {
  return std::string(SEARCHSYNC_SOURCE_DIR) + "/tests/node/node_modules/.bin/pouchdb-server";
}

}  // namespace

nlohmann::json HttpAnswer::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

Result<std::unique_ptr<CouchdbServer>> CouchdbServer::Start() {
  if (!std::filesystem::exists(PouchdbServerBinary())) {
    return FailedPrecondition(PouchdbServerBinary() + " is missing; run .ci/install-deps");
  }
  std::unique_ptr<CouchdbServer> server(new CouchdbServer());
  server->data_dir_ = MakeTempDir("searchsync-couchdb-");
  if (server->data_dir_.empty()) return Internal("could not make a temp dir");
  if (Status status = server->Spawn(/*keep_port=*/false); !status.ok()) return status;
  return server;
}

Status CouchdbServer::Spawn(bool keep_port) {
  std::filesystem::create_directories(data_dir_ + "/data");
  Status last = Status::Ok();
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    if (!keep_port) port_ = PickFreePort();
    if (port_ == 0) return Internal("CouchdbServer: no free port");
    auto process = ServerProcess::Start({
        .argv = {"node", PouchdbServerBinary(), "--port", std::to_string(port_), "--host",
                 "127.0.0.1", "--dir", data_dir_ + "/data"},
        .working_dir = data_dir_,
    });
    if (!process.ok()) return process.status();
    // Our process says it listens (so another server on the port cannot pass for it), and
    // answers.
    last = (*process)->WaitReady(
        [&] {
          return (*process)->ReadStdout().find("pouchdb-server has started on") !=
                     std::string::npos &&
                 Request("GET", "/").status == 200;
        },
        30s);
    if (last.ok()) {
      process_ = std::move(*process);
      return Status::Ok();
    }
    const bool port_taken = (*process)->ReadStderr().find("already in use") != std::string::npos;
    if (keep_port || !port_taken) break;
  }
  return last;
}

CouchdbServer::~CouchdbServer() {
  process_.reset();
  if (!data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

std::string CouchdbServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

HttpAnswer CouchdbServer::Request(const std::string& method, const std::string& path,
                                  const std::string& body) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(5);
  client.set_read_timeout(60);
  httplib::Request request;
  request.method = method;
  request.path = path;
  request.body = body;
  request.set_header("Content-Type", "application/json");
  request.set_header("Accept", "application/json");
  const httplib::Result result = client.send(request);
  if (!result) return {};
  return {result->status, result->body};
}

std::map<std::string, nlohmann::json> CouchdbServer::AllDocs(const std::string& database) const {
  std::map<std::string, nlohmann::json> docs;
  const nlohmann::json answer =
      Request("GET", "/" + database + "/_all_docs?include_docs=true").Json();
  if (!answer.contains("rows")) return docs;
  for (const nlohmann::json& row : answer["rows"]) {
    const std::string id = row["id"];
    if (id.starts_with("_design/")) continue;
    docs[id] = row["doc"];
  }
  return docs;
}

void CouchdbServer::Kill9() {
  if (process_) process_->Kill9();
}

Status CouchdbServer::Restart() {
  process_.reset();
  return Spawn(/*keep_port=*/true);
}

}  // namespace searchsync::test
