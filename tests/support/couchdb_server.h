#pragma once
// CouchdbServer: a throwaway CouchDB-compatible server for tests: npm's pouchdb-server, installed
// under tests/node by .ci/install-deps, started on a free port with its data in a temp dir (so
// it survives Kill9() + Restart()). Numeric sequences, like CouchDB 1.x.
//
//   auto couch = CouchdbServer::Start();
//   REQUIRE(couch.ok());
//   (*couch)->Request("PUT", "/animals");
//
// Thread safety: one test thread owns a CouchdbServer.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/status.h"
#include "tests/support/server_process.h"

namespace searchsync::test {

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
  nlohmann::json Json() const;  // the body parsed; null when it is not JSON
};

class CouchdbServer {
 public:
  // kFailedPrecondition when pouchdb-server is not installed (run .ci/install-deps).
  static Result<std::unique_ptr<CouchdbServer>> Start();
  ~CouchdbServer();

  std::string url() const;  // http://127.0.0.1:PORT
  int port() const { return port_; }

  // One request with a JSON body (Content-Type: application/json).
  HttpAnswer Request(const std::string& method, const std::string& path,
                     const std::string& body = "") const;

  // Every non-design document of `database` with include_docs, by id.
  std::map<std::string, nlohmann::json> AllDocs(const std::string& database) const;

  // SIGKILL, then start again on the same port and data directory.
  void Kill9();
  Status Restart();

 private:
  CouchdbServer() = default;
  // Starts pouchdb-server on port_ (keep_port) or on a free port. pouchdb-server cannot listen on
  // port 0 and report the port it got, so a port picked free may be taken before it binds: then
  // it tries another.
  Status Spawn(bool keep_port);

  std::string data_dir_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace searchsync::test
