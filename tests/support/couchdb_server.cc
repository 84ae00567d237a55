#include "tests/support/couchdb_server.h"

#include <httplib.h>

#include <filesystem>

namespace searchsync::test {

namespace {

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
  server->port_ = PickFreePort();
  if (server->data_dir_.empty() || server->port_ == 0) {
    return Internal("could not make a temp dir or find a free port");
  }
  if (Status status = server->Spawn(); !status.ok()) return status;
  return server;
}

Status CouchdbServer::Spawn() {
  std::filesystem::create_directories(data_dir_ + "/data");
  auto process = ServerProcess::Start({
      .argv = {"node", PouchdbServerBinary(), "--port", std::to_string(port_), "--host",
               "127.0.0.1", "--dir", data_dir_ + "/data"},
      .working_dir = data_dir_,
  });
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  return process_->WaitReady([&] { return Request("GET", "/").status == 200; }, 30s);
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
  return Spawn();
}

}  // namespace searchsync::test
