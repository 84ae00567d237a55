#include "pipeline/app/admin_client.h"

#include <httplib.h>

#include <cstdlib>

namespace searchsync {

AdminClient::AdminClient(const AdminOptions& admin) : token_(admin.token) {
  const size_t colon = admin.listen.rfind(':');
  host_ = admin.listen.substr(0, colon);
  if (host_.size() >= 2 && host_.front() == '[' && host_.back() == ']') {
    host_ = host_.substr(1, host_.size() - 2);
  }
  if (host_ == "0.0.0.0" || host_.empty()) host_ = "127.0.0.1";
  if (host_ == "::") host_ = "::1";
  port_ = colon == std::string::npos ? 0 : std::atoi(admin.listen.c_str() + colon + 1);
  address_ = admin.listen;
}

namespace {

int64_t IntField(simdjson::dom::object object, const char* key) {
  int64_t value = 0;
  if (object[key].get_int64().get(value) != simdjson::SUCCESS) return 0;
  return value;
}

httplib::Headers AuthHeaders(const Secret& token) {
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token.value());
  return headers;
}

Result<AdminClient::Response> ToResponse(const httplib::Result& result, const std::string& call,
                                         const std::string& address) {
  if (!result) {
    return Unavailable("admin API at " + address + ": " + call + ": " +
                       httplib::to_string(result.error()));
  }
  return AdminClient::Response{.status = result->status, .body = result->body};
}

}  // namespace

Result<AdminClient::Response> AdminClient::Get(const std::string& path) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(30, 0);
  return ToResponse(client.Get(path.c_str(), AuthHeaders(token_)), "GET " + path, address_);
}

Result<AdminClient::Response> AdminClient::Post(const std::string& path) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(30, 0);
  return ToResponse(client.Post(path.c_str(), AuthHeaders(token_), "", "application/json"),
                    "POST " + path, address_);
}

std::string StringField(simdjson::dom::object object, const char* key) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return "";
  return std::string(value);
}

uint64_t UintField(simdjson::dom::object object, const char* key) {
  uint64_t value = 0;
  if (object[key].get_uint64().get(value) != simdjson::SUCCESS) return 0;
  return value;
}

std::optional<ReindexProgress> ReindexFromStatus(const std::string& body,
                                                 const std::string& pipeline) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array pipelines;
  if (root["pipelines"].get_array().get(pipelines) != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object object;
    if (item.get_object().get(object) != simdjson::SUCCESS) continue;
    if (StringField(object, "name") != pipeline) continue;
    simdjson::dom::object reindex;
    if (object["reindex"].get_object().get(reindex) != simdjson::SUCCESS) return std::nullopt;
    return ReindexProgress{.id = StringField(reindex, "id"),
                           .pipeline = StringField(reindex, "pipeline"),
                           .state = StringField(reindex, "state"),
                           .phase = StringField(reindex, "phase"),
                           .collection = StringField(reindex, "collection"),
                           .rows_written = UintField(reindex, "rows_written"),
                           .rows_expected = UintField(reindex, "rows_expected"),
                           .started_unix_ms = IntField(reindex, "started_unix_ms"),
                           .finished_unix_ms = IntField(reindex, "finished_unix_ms"),
                           .error = StringField(reindex, "error")};
  }
  return std::nullopt;
}

std::string AdminErrorMessage(const AdminClient::Response& response) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view message;
  if (parser.parse(response.body).get(root) == simdjson::SUCCESS &&
      root["message"].get_string().get(message) == simdjson::SUCCESS) {
    return std::string(message);
  }
  return "HTTP " + std::to_string(response.status);
}

}  // namespace searchsync
