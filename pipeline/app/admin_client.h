#pragma once
// The admin API of a running `run` daemon (pipeline/admin_server.h), as a client: what
// `searchsync reindex` and `searchsync status` use to reach the daemon of the same config.

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/app/reindex.h"
#include "pipeline/config.h"
#include "pipeline/status.h"

namespace searchsync {

// The host of admin.listen is used as is, except that a wildcard address (0.0.0.0, ::) is
// reached on loopback.
class AdminClient {
 public:
  explicit AdminClient(const AdminOptions& admin);

  struct Response {
    int status = 0;
    std::string body;
  };
  // kUnavailable when nothing answers at the address.
  Result<Response> Get(const std::string& path) const;
  Result<Response> Post(const std::string& path) const;
  const std::string& address() const { return address_; }

 private:
  std::string host_;
  int port_ = 0;
  std::string address_;
  Secret token_;
};

// The reindex of `pipeline` in a /status body; nullopt when it has none (or the body is not
// what /status answers).
std::optional<ReindexProgress> ReindexFromStatus(const std::string& body,
                                                 const std::string& pipeline);

// The "message" of an error answer, else "HTTP <status>".
std::string AdminErrorMessage(const AdminClient::Response& response);

// A field of an object in an answer: "" or 0 when it is missing or of another type.
std::string StringField(simdjson::dom::object object, const char* key);
uint64_t UintField(simdjson::dom::object object, const char* key);

}  // namespace searchsync
