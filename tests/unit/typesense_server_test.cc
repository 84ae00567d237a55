// The test Typesense server, driven through real HTTP with libcurl, against the behaviour in
// /work/shared/typesense/API-NOTES.md.

#include "tests/support/typesense_server.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/url.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace searchsync::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct HttpResponse {
  CURLcode curl_code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string content_type;
};

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One request on a fresh connection. `api_key` empty = no key header.
HttpResponse Http(const std::string& method, const std::string& url, const std::string& body,
                  const std::string& api_key) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  if (!api_key.empty()) {
    headers = curl_slist_append(headers, ("X-TYPESENSE-API-KEY: " + api_key).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  if (method != "GET") {
    // curl's default Content-Type (form-urlencoded) on purpose: Typesense ignores it.
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  response.curl_code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  const char* content_type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type != nullptr) response.content_type = content_type;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

const char kProductsSchema[] = R"({
  "name": "products",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "price", "type": "float"},
    {"name": "stock", "type": "int32"},
    {"name": "active", "type": "bool", "optional": true},
    {"name": "tags", "type": "string[]", "optional": true}
  ],
  "default_sorting_field": "stock"
})";

struct ServerFixture {
  explicit ServerFixture(TypesenseServerOptions options = {}) : server(std::move(options)) {}

  HttpResponse Get(const std::string& path) { return Http("GET", server.url() + path, "", key); }
  HttpResponse Post(const std::string& path, const std::string& body) {
    return Http("POST", server.url() + path, body, key);
  }
  HttpResponse Put(const std::string& path, const std::string& body) {
    return Http("PUT", server.url() + path, body, key);
  }
  HttpResponse Patch(const std::string& path, const std::string& body) {
    return Http("PATCH", server.url() + path, body, key);
  }
  HttpResponse Delete(const std::string& path) {
    return Http("DELETE", server.url() + path, "", key);
  }

  void CreateProducts() { REQUIRE(Post("/collections", kProductsSchema).status == 201); }
  // Upserts documents with just an id and the required fields.
  void Seed(const std::vector<std::string>& ids, const std::string& collection = "products") {
    std::string body;
    for (const std::string& id : ids) {
      body += json{{"id", id}, {"name", "n-" + id}, {"price", 1.5}, {"stock", 1}}.dump() + "\n";
    }
    const HttpResponse response =
        Post("/collections/" + collection + "/documents/import?action=upsert", body);
    REQUIRE(response.status == 200);
    REQUIRE(response.body.find("false") == std::string::npos);
  }
  std::vector<std::string> Ids(const std::string& collection = "products") {
    std::vector<std::string> ids;
    const auto docs = server.Documents(collection);
    if (docs) {
      for (const auto& [id, doc] : *docs) ids.push_back(id);
    }
    return ids;
  }

  TypesenseServer server;
  std::string key = "test-key";
};

std::vector<std::string> Lines(const std::string& body) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= body.size()) {
    const size_t end = std::min(body.find('\n', start), body.size());
    lines.push_back(body.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

TEST_CASE("Requests without a valid key get 401 with Typesense's exact body",
          "[typesense-server]") {
  ServerFixture f;
  const std::string forbidden =
      R"({"message": "Forbidden - a valid `x-typesense-api-key` header must be sent."})";
  for (const std::string& key : {std::string(), std::string("wrong")}) {
    const HttpResponse response = Http("GET", f.server.url() + "/collections", "", key);
    CHECK(response.status == 401);
    CHECK(response.body == forbidden);
  }
  CHECK(Http("GET", f.server.url() + "/collections?x-typesense-api-key=test-key", "", "").status ==
        200);
  // The header wins over the query parameter.
  CHECK(
      Http("GET", f.server.url() + "/collections?x-typesense-api-key=test-key", "", "bad").status ==
      401);
  const HttpResponse health = Http("GET", f.server.url() + "/health", "", "");
  CHECK(health.status == 200);
  CHECK(health.body == R"({"ok":true})");
  CHECK(f.server.Counters().unauthorized == 3);
}

TEST_CASE("Unknown routes, document PUT and POST by id get the routing 404", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/nope"},
           {"PUT", "/collections/products/documents/a"},
           {"POST", "/collections/products/documents/a"}}) {
    const HttpResponse response = Http(method, f.server.url() + path, "{}", "");
    CHECK(response.status == 404);
    CHECK(response.body == R"({ "message": "Not Found"})");
  }
  CHECK(f.server.Counters().Requests(TypesenseRoute::kNotFound) == 3);
}

TEST_CASE("Creating a collection validates the schema like Typesense", "[typesense-server]") {
  ServerFixture f;
  const HttpResponse created = f.Post("/collections", kProductsSchema);
  REQUIRE(created.status == 201);
  const json summary = json::parse(created.body);
  CHECK(summary["name"] == "products");
  CHECK(summary["num_documents"] == 0);
  CHECK(summary["default_sorting_field"] == "stock");
  CHECK(summary["fields"].size() == 5);  // `id` dropped
  CHECK(summary["fields"][0]["name"] == "name");
  CHECK(summary["fields"][2]["sort"] == true);  // int32 sorts by default

  CHECK(f.Post("/collections", kProductsSchema).body ==
        R"({"message": "A collection with name `products` already exists."})");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"nope", R"({"message": "Bad JSON."})"},
      {R"({"fields": []})", R"({"message": "Parameter `name` is required."})"},
      {R"({"name": "c"})", R"({"message": "Parameter `fields` is required."})"},
      {R"({"name": "c", "fields": [{"name": "a", "type": "text"}]})",
       R"({"message": "Field `a` has an invalid data type `text`, see docs for supported data types."})"},
      {R"({"name": "c", "fields": [{"name": "a", "type": "int32"}], "default_sorting_field": "b"})",
       R"({"message": "Default sorting field is defined as `b` but is not found in the schema."})"},
      {R"({"name": "c", "fields": [{"name": "a", "type": "int32", "optional": true}],
           "default_sorting_field": "a"})",
       R"({"message": "Default sorting field `a` cannot be an optional field."})"},
      {R"({"name": "c", "fields": [{"name": "a", "type": "string"}], "default_sorting_field": "a"})",
       R"({"message": "Default sorting field `a` is not a sortable type."})"},
      {R"({"name": "c", "fields": [{"name": ".*", "type": "auto", "optional": false}]})",
       R"({"message": "Field `.*` must be an optional field."})"},
      {R"({"name": "c", "fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "int32"}]})",
       R"({"message": "There are duplicate field names in the schema."})"},
  };
  for (const auto& [body, message] : cases) {
    const HttpResponse response = f.Post("/collections", body);
    CHECK(response.status == 400);
    CHECK(response.body == message);
  }
  CHECK(f.server.CollectionNames() == std::vector<std::string>{"products"});
}

TEST_CASE("Import answers one result line per non-empty line, with exact messages",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  const std::string body =
      R"({"id":"1","name":"a","price":1,"stock":3})"
      "\n"
      "\n"  // skipped: no result line
      R"({"id":"2","name":"b","price":"x","stock":3})"
      "\n"
      R"({"id":"3","name":"c","price":1.5,"stock":3.0})"
      "\n"
      R"({"id":"4","name":"d","price":1.5,"stock":3,"active":1})"
      "\n"
      R"({"id":"5","name":"e","stock":3})"
      "\n"
      R"({"id":"6","name":"f","price":2})"
      "\n"
      R"({"id":7,"name":"g","price":2,"stock":1})"
      "\n"
      "   \n"  // whitespace-only: Bad JSON
      "{nope\n"
      R"([1,2])"
      "\n"
      R"({"id":"1","name":"a","price":1,"stock":3})"
      "\n"
      R"({"id":"8","name":"h","price":2,"stock":1,"tags":["x",null],"active":null})";
  const HttpResponse response = f.Post("/collections/products/documents/import", body);
  REQUIRE(response.status == 200);
  CHECK(response.content_type == "text/plain; charset=utf-8");
  const std::vector<std::string> lines = Lines(response.body);
  REQUIRE(lines.size() == 12);
  CHECK(lines[0] == R"({"success":true})");
  CHECK(lines[1] == R"({"code":400,"error":"Field `price` must be a float.","success":false})");
  CHECK(lines[2] == R"({"code":400,"error":"Field `stock` must be an int32.","success":false})");
  CHECK(lines[3] == R"({"code":400,"error":"Field `active` must be a bool.","success":false})");
  CHECK(
      lines[4] ==
      R"({"code":400,"error":"Field `price` has been declared in the schema, but is not found in the document.","success":false})");
  CHECK(
      lines[5] ==
      R"({"code":400,"error":"Field `stock` has been declared as a default sorting field, but is not found in the document.","success":false})");
  CHECK(lines[6] ==
        R"({"code":400,"error":"Document's `id` field should be a string.","success":false})");
  CHECK(json::parse(lines[7])["error"].get<std::string>().starts_with("Bad JSON: [json.exception"));
  CHECK(json::parse(lines[8])["error"].get<std::string>().starts_with("Bad JSON: "));
  CHECK(lines[9] ==
        R"({"code":400,"error":"Bad JSON: not a properly formed document.","success":false})");
  CHECK(lines[10] ==
        R"({"code":409,"error":"A document with id 1 already exists.","success":false})");
  CHECK(lines[11] ==
        R"({"code":400,"error":"Field `tags` must be an array of string.","success":false})");
  CHECK(f.Ids() == std::vector<std::string>{"1"});
  CHECK(f.server.Counters().documents_written == 1);

  // return_id / return_doc, and the v28+ failure shape with them.
  const HttpResponse with_extras =
      f.Post("/collections/products/documents/import?action=create&return_id=true&return_doc=true",
             R"({"id":"9","name":"i","price":2,"stock":1,"active":null})"
             "\n"
             R"({"id":"1"})");
  const std::vector<std::string> extras = Lines(with_extras.body);
  REQUIRE(extras.size() == 2);
  CHECK(extras[0] ==
        R"({"document":{"id":"9","name":"i","price":2,"stock":1},"id":"9","success":true})");
  CHECK(
      extras[1] ==
      R"({"code":409,"document":"{\"id\":\"1\"}","error":"A document with id 1 already exists.","id":"1","success":false})");

  CHECK(f.Post("/collections/products/documents/import?action=replace", "").body ==
        R"({"message": "Parameter `action` must be a create|update|upsert."})");
  CHECK(f.Post("/collections/missing/documents/import", "{}").status == 404);
  CHECK(f.Post("/collections/products/documents/import", "").body.empty());
}

TEST_CASE("Schemas with `.*` coerce values by default, fixed schemas reject",
          "[typesense-server]") {
  ServerFixture f;
  REQUIRE(f.Post("/collections", R"({"name": "auto", "fields": [
                   {"name": ".*", "type": "auto"}, {"name": "n", "type": "int32"}]})")
              .status == 201);
  const std::string import = "/collections/auto/documents/import?action=upsert";
  CHECK(f.Post(import, R"({"id":"a","n":"5","extra":[1,"x"]})").body == R"({"success":true})");
  CHECK(f.server.Document("auto", "a") == json::parse(R"({"id":"a","n":5,"extra":[1,"x"]})"));
  CHECK(f.Post(import, R"({"id":"b","n":"x"})").body ==
        R"({"code":400,"error":"Field `n` must be an int32.","success":false})");
  CHECK(f.Post(import, R"({"id":"c","n":3000000000.5})").body ==
        R"({"code":400,"error":"Field `n` exceeds maximum value of int32.","success":false})");
  CHECK(f.Post(import + "&dirty_values=reject", R"({"id":"d","n":"5"})").body ==
        R"({"code":400,"error":"Field `n` must be an int32.","success":false})");
}

TEST_CASE("Nested fields: objects are type-checked and flattened into typed brand.name fields",
          "[typesense-server]") {
  ServerFixture f;
  CHECK(
      f.Post("/collections", R"({"name": "flat", "fields": [{"name": "brand", "type": "object"}]})")
          .body.find("enable_nested_fields") != std::string::npos);
  REQUIRE(f.Post("/collections", R"({"name": "catalog", "enable_nested_fields": true, "fields": [
                   {"name": "name", "type": "string"},
                   {"name": "brand", "type": "object", "optional": true},
                   {"name": "variants", "type": "object[]", "optional": true},
                   {"name": "maker.country", "type": "string", "optional": true}]})")
              .status == 201);
  const std::string import = "/collections/catalog/documents/import?action=upsert";
  const json first = json::parse(R"({"id":"1","name":"a","brand":{"name":"Acme","since":1990},
      "variants":[{"sku":"x1","size":3},{"sku":"x2","size":4}]})");
  CHECK(f.Post(import, first.dump()).body == R"({"success":true})");
  CHECK(f.server.Document("catalog", "1").value()["brand"] ==
        json::parse(R"({"name":"Acme","since":1990})"));

  // The leaves became fields of the schema, typed by the first value seen.
  const json summary = json::parse(f.Get("/collections/catalog").body);
  auto field = [&](const std::string& name) {
    for (const json& spec : summary["fields"]) {
      if (spec["name"] == name) return spec;
    }
    return json();
  };
  CHECK(field("brand.name")["type"] == "string");
  CHECK(field("brand.name")["nested"] == true);
  CHECK(field("brand.since")["type"] == "int64");
  CHECK(field("variants.sku")["type"] == "string[]");
  CHECK(field("variants.sku")["nested_array"] == 1);
  CHECK(field("variants.size")["type"] == "int64[]");

  // Type checks: the object itself, then each flattened value against its field.
  CHECK(f.Post(import, R"({"id":"2","name":"b","brand":"Acme"})").body ==
        R"({"code":400,"error":"Field `brand` must be an object.","success":false})");
  CHECK(f.Post(import, R"({"id":"2","name":"b","variants":{"sku":"y"}})").body ==
        R"({"code":400,"error":"Field `variants` must be an array.","success":false})");
  CHECK(f.Post(import, R"({"id":"2","name":"b","variants":["y"]})").body ==
        R"({"code":400,"error":"Field `variants` must be an array of objects.","success":false})");
  CHECK(f.Post(import, R"({"id":"2","name":"b","brand":{"name":7}})").body ==
        R"({"code":400,"error":"Field `brand.name` must be a string.","success":false})");
  CHECK(f.Post(import, R"({"id":"2","name":"b","maker":{"country":1}})").body ==
        R"({"code":400,"error":"Field `maker.country` must be a string.","success":false})");
  CHECK_FALSE(f.server.Document("catalog", "2"));
  // A null leaf (a LEFT JOIN that found no brand) is simply absent.
  CHECK(f.Post(import, R"({"id":"3","name":"c","brand":{"name":null},"maker":{"country":"NO"}})")
            .body == R"({"success":true})");

  // Filters and searches read the flattened paths.
  const json by_brand = json::parse(f.Get("/collections/catalog/documents/search?q=*&filter_by=" +
                                          PercentEncode("brand.name:=Acme"))
                                        .body);
  CHECK(by_brand["found"] == 1);
  const json by_sku =
      json::parse(f.Get("/collections/catalog/documents/search?q=x2&query_by=variants.sku").body);
  CHECK(by_sku["found"] == 1);
  const json by_country = json::parse(f.Get("/collections/catalog/documents/search?q=*&filter_by=" +
                                            PercentEncode("maker.country:=NO"))
                                          .body);
  CHECK(by_country["found"] == 1);
}

TEST_CASE("Upsert replaces whole documents, update merges, emplace creates or merges",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.Seed({"a", "b"});
  const std::string path = "/collections/products/documents/import?action=";
  REQUIRE(f.Post(path + "upsert", R"({"id":"a","name":"new","price":9,"stock":2})").body ==
          R"({"success":true})");
  CHECK(f.server.Document("products", "a") ==
        json::parse(R"({"id":"a","name":"new","price":9,"stock":2})"));

  CHECK(f.Post(path + "update", R"({"id":"b","tags":["t"],"name":null})").body ==
        R"({"code":400,"error":"Field `name` must be a string.","success":false})");
  CHECK(f.Post(path + "update", R"({"id":"b","tags":["t"]})").body == R"({"success":true})");
  CHECK(f.server.Document("products", "b").value()["tags"] == json::array({"t"}));
  CHECK(f.server.Document("products", "b").value()["name"] == "n-b");
  CHECK(f.Post(path + "update", R"({"id":"zz","stock":1})").body ==
        R"({"code":404,"error":"Could not find a document with id: zz","success":false})");
  CHECK(f.Post(path + "update", R"({"stock":1})").body ==
        R"({"code":400,"error":"For update, the `id` key must be provided.","success":false})");
  CHECK(f.Post(path + "emplace", R"({"id":"b","stock":7})").body == R"({"success":true})");
  CHECK(f.server.Document("products", "b").value()["stock"] == 7);
  CHECK(
      f.Post(path + "emplace", R"({"id":"c","stock":7})").body ==
      R"({"code":400,"error":"Field `name` has been declared in the schema, but is not found in the document.","success":false})");
  // Export keeps first-insertion order across upserts.
  CHECK(f.Get("/collections/products/documents/export?include_fields=id").body ==
        "{\"id\":\"a\"}\n{\"id\":\"b\"}");
}

TEST_CASE("Single-document endpoints use their own status codes and body styles",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  const std::string doc = R"({"id":"p/1","name":"a","price":1,"stock":3})";
  const HttpResponse created = f.Post("/collections/products/documents", doc);
  CHECK(created.status == 201);
  CHECK(created.body == doc);
  const HttpResponse duplicate = f.Post("/collections/products/documents", doc);
  CHECK(duplicate.status == 409);
  CHECK(duplicate.body == R"({"message":"A document with id p/1 already exists."})");

  CHECK(f.Get("/collections/products/documents/p%2F1").body == doc);
  const HttpResponse patched = f.Patch("/collections/products/documents/p%2F1", R"({"stock":4})");
  CHECK(patched.status == 200);
  CHECK(json::parse(patched.body)["stock"] == 4);
  CHECK(f.Patch("/collections/products/documents/p%2F1", R"({"id":"q"})").body ==
        R"({"message": "The `id` of the resource does not match the `id` in the JSON body."})");
  CHECK(f.Delete("/collections/products/documents/p%2F1").status == 200);
  const HttpResponse missing = f.Get("/collections/products/documents/p%2F1");
  CHECK(missing.status == 404);
  CHECK(missing.body == R"({"message": "Could not find a document with id: p/1"})");
  CHECK(f.Delete("/collections/products/documents/p%2F1").status == 404);
  const HttpResponse ignored =
      f.Delete("/collections/products/documents/p%2F1?ignore_not_found=true");
  CHECK(ignored.status == 200);
  CHECK(ignored.body == R"({"id":"p/1"})");
}

TEST_CASE("Delete by filter matches backtick-quoted, percent-encoded ids", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  const std::vector<std::string> special = {"a,b", "x y", "ü-1", "(a)", "&&", "50%", "+1"};
  std::vector<std::string> all = special;
  all.insert(all.end(), {"a", "b", "keep"});
  f.Seed(all);

  std::string list;
  for (const std::string& id : special) list += (list.empty() ? "`" : ",`") + id + "`";
  const HttpResponse response =
      f.Delete("/collections/products/documents?filter_by=" + PercentEncode("id:[" + list + "]"));
  REQUIRE(response.status == 200);
  CHECK(response.content_type == "application/json");
  CHECK(response.body == R"({"num_deleted":7})");
  CHECK(f.Ids() == std::vector<std::string>{"a", "b", "keep"});

  // Unquoted commas split; unknown ids are ignored; return_id lists what went.
  const HttpResponse split = f.Delete("/collections/products/documents?return_id=true&filter_by=" +
                                      PercentEncode("id:[a, b ,zz]"));
  CHECK(split.body == R"({"ids":["a","b"],"num_deleted":2})");
  CHECK(f.Ids() == std::vector<std::string>{"keep"});
}

TEST_CASE("A filter value equal to * deletes every document, quoted or not", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  for (const std::string filter : {"id:[x,*]", "id:[`x`,`*`]", "id:*", "id: [ * ]"}) {
    f.Seed({"x", "y", "z"});
    const HttpResponse response =
        f.Delete("/collections/products/documents?filter_by=" + PercentEncode(filter));
    CHECK(response.body == R"({"num_deleted":3})");
    CHECK(f.Ids().empty());
  }
  // Without brackets only the first value counts.
  f.Seed({"x", "y"});
  CHECK(f.Delete("/collections/products/documents?filter_by=" + PercentEncode("id: x,y")).body ==
        R"({"num_deleted":1})");
}

TEST_CASE("filter_by errors carry Typesense's messages", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.Seed({"a"});
  auto del = [&](const std::string& filter) {
    return f.Delete("/collections/products/documents?filter_by=" + PercentEncode(filter));
  };
  CHECK(del("id:[a)b,c]").body ==
        R"({"message": "Could not parse the filter query: unbalanced parentheses."})");
  CHECK(del("id:").body ==
        R"({"message": "Error with filter field `id`: Filter value cannot be empty."})");
  CHECK(del("color:red").status == 404);
  CHECK(del("color:red").body ==
        R"({"message": "Could not find a filter field named `color` in the schema."})");
  CHECK(del("nocolon").body == R"({"message": "Could not parse the filter query."})");
  std::string many = "id:a";
  for (int i = 0; i < 50; ++i) many += " || id:a";
  CHECK(del(many).body.starts_with(
      R"({"message": "`filter_by` has too many operations. Maximum allowed: 100.)"));
  CHECK(f.Delete("/collections/products/documents").body ==
        R"({"message": "Parameter `filter_by` must be provided."})");
  // Parentheses, && and || combine; other scalar fields filter too.
  f.Seed({"b", "c"});
  CHECK(del("(id:a || id:b) && stock:=1 && name:=`n-b`").body == R"({"num_deleted":1})");
  CHECK(f.Ids() == std::vector<std::string>{"a", "c"});
  CHECK(del("stock:>5").body == R"({"num_deleted":0})");
  CHECK(del("price:[1.5]").body == R"({"num_deleted":2})");
}

TEST_CASE("Query values and path segments decode + as a space and keep unencoded &&",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.Seed({"x y", "+1", "a", "b"});
  CHECK(f.Get("/collections/products/documents/x+y").status == 200);
  CHECK(f.Get("/collections/products/documents/%2B1").status == 200);
  CHECK(f.Get("/collections/products/documents/+1").status == 404);  // that is " 1"
  CHECK(f.Delete("/collections/products/documents?filter_by=id:`x+y`").body ==
        R"({"num_deleted":1})");
  CHECK(f.Delete("/collections/products/documents?filter_by=id:[a,b]&&id:a").body ==
        R"({"num_deleted":1})");
  CHECK(f.Ids() == std::vector<std::string>{"+1", "b"});
}

TEST_CASE("Aliases resolve on collection routes, DELETE /collections/<alias> drops the target",
          "[typesense-server]") {
  ServerFixture f;
  // A missing target is accepted.
  const HttpResponse early = f.Put("/aliases/products", R"({"collection_name":"products_v1"})");
  CHECK(early.status == 200);
  CHECK(early.body == R"({"collection_name":"products_v1","name":"products"})");
  json schema = json::parse(kProductsSchema);
  schema["name"] = "products_v1";
  REQUIRE(f.Post("/collections", schema.dump()).status == 201);
  f.Seed({"a"}, "products");  // through the alias

  const json search = json::parse(f.Get("/collections/products/documents/search?q=*").body);
  CHECK(search["request_params"]["collection_name"] == "products_v1");
  CHECK(search["found"] == 1);
  CHECK(json::parse(f.Get("/collections/products").body)["name"] == "products_v1");
  CHECK(f.Put("/aliases/products_v1", R"({"collection_name":"x"})").body ==
        R"({"message": "Name `products_v1` conflicts with an existing collection name."})");
  CHECK(f.Put("/aliases/other", R"({"name":"x"})").body ==
        R"({"message": "Parameter `collection_name` is required."})");
  CHECK(json::parse(f.Get("/aliases").body)["aliases"].size() == 1);

  const HttpResponse dropped = f.Delete("/collections/products");
  CHECK(dropped.status == 200);
  CHECK(json::parse(dropped.body)["name"] == "products_v1");
  CHECK(f.server.CollectionNames().empty());
  CHECK(f.server.Aliases() == std::map<std::string, std::string>{{"products", "products_v1"}});
  CHECK(f.Get("/collections/products").body == R"({"message": "Collection not found"})");
  CHECK(f.Delete("/collections/products").body ==
        R"({"message": "No collection with name `products` found."})");
  CHECK(f.Delete("/aliases/products").status == 200);
  CHECK(f.Get("/aliases/products").status == 404);
}

TEST_CASE("Export is compact with sorted keys, in insertion order, without a final newline",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  REQUIRE(f.Post("/collections/products/documents/import",
                 R"({"stock":1,"price":2.5,"name":"z","id":"b"})"
                 "\n"
                 R"({"name":"ü","id":"a","stock":2,"price":1})")
              .status == 200);
  const HttpResponse response = f.Get("/collections/products/documents/export");
  CHECK(response.content_type == "text/plain; charset=utf-8");
  CHECK(response.body ==
        "{\"id\":\"b\",\"name\":\"z\",\"price\":2.5,\"stock\":1}\n"
        "{\"id\":\"a\",\"name\":\"ü\",\"price\":1,\"stock\":2}");
  CHECK(f.Get("/collections/products/documents/export?filter_by=id:a&exclude_fields=name,price")
            .body == R"({"id":"a","stock":2})");
}

TEST_CASE("Search with q=* filters and pages", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) ids.push_back("d" + std::to_string(i));
  f.Seed(ids);
  const json page =
      json::parse(f.Get("/collections/products/documents/search?q=*&per_page=25&page=2").body);
  CHECK(page["found"] == 30);
  CHECK(page["out_of"] == 30);
  CHECK(page["hits"].size() == 5);
  CHECK(page["hits"][0]["document"].contains("name"));
  const json filtered = json::parse(
      f.Get("/collections/products/documents/search?q=*&filter_by=" + PercentEncode("id:[d1,d2]"))
          .body);
  CHECK(filtered["found"] == 2);
  CHECK(f.Get("/collections/products/documents/search?q=*&per_page=251").body ==
        R"({"message": "Only upto 250 hits can be fetched per page."})");
  CHECK(f.Get("/collections/products/documents/search?q=n-d7").status == 400);
  const json text =
      json::parse(f.Get("/collections/products/documents/search?q=n-d7&query_by=name").body);
  CHECK(text["found"] == 1);
}

TEST_CASE("The 503 gate precedes auth: a write rate and an unavailable switch",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  const std::string not_ready = R"({ "message": "Not Ready or Lagging"})";

  f.server.SetWriteUnavailableRate(1.0);
  const HttpResponse refused =
      Http("POST", f.server.url() + "/collections/products/documents/import", "{}", "");
  CHECK(refused.status == 503);
  CHECK(refused.body == not_ready);
  CHECK(f.Get("/collections/products/documents/search?q=*").status == 200);  // reads pass
  CHECK(f.Get("/health").status == 200);

  f.server.SetWriteUnavailableRate(0.5);
  int unavailable = 0;
  for (int i = 0; i < 200; ++i) {
    unavailable += f.Post("/collections/products/documents/import", "").status == 503;
  }
  CHECK(unavailable > 50);
  CHECK(unavailable < 150);
  CHECK(f.server.Counters().unavailable == unavailable + 1);

  f.server.SetWriteUnavailableRate(0);
  f.server.SetUnavailable(true);
  CHECK(Http("GET", f.server.url() + "/collections", "", "").body == not_ready);
  const HttpResponse health = f.Get("/health");
  CHECK(health.status == 503);
  CHECK(health.body == R"({"ok":false})");
  f.server.SetUnavailable(false);
  CHECK(f.Get("/collections").status == 200);

  const std::vector<TypesenseWriteAttempt> attempts = f.server.WriteAttempts();
  REQUIRE(attempts.size() == 202);  // create, the refused import, 200 imports
  CHECK(attempts[1].status == 503);
  CHECK_FALSE(attempts[1].handled);
  CHECK(attempts[1].route == TypesenseRoute::kImport);
  CHECK(attempts[1].path == "/collections/products/documents/import");
  CHECK(std::is_sorted(attempts.begin(), attempts.end(),
                       [](const auto& a, const auto& b) { return a.at < b.at; }));
}

TEST_CASE("The write queue model reports its lag first, then refuses writes in windows",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  const std::string doc = R"({"id":"a","name":"a","price":1,"stock":1})";
  const std::string import = "/collections/products/documents/import?action=upsert";
  auto pending = [&] { return json::parse(f.Get("/stats.json").body)["pending_write_batches"]; };
  CHECK(pending() == 0);  // the model off: no lag

  f.server.SetWriteQueueModel(TypesenseWriteQueueModel{
      .drained_per_second = 40, .healthy_write_lag = 5, .refresh_interval = 400ms});
  // Each accepted write adds at least one chunk; a body over one chunk adds more.
  REQUIRE(f.Post(import, doc).status == 200);
  CHECK(f.server.PendingWriteBatches() >= 0);
  const std::string big(3 * 196'605, ' ');
  REQUIRE(f.Post(import, doc + big).status == 200);
  CHECK(f.server.PendingWriteBatches() >= 2);

  // A spike of 120 chunks: the lag shows in /stats.json and /status at once, while writes still
  // pass until the next refresh.
  f.server.AddPendingWriteBatches(120);
  CHECK(pending() > 100);
  CHECK(json::parse(f.Get("/status").body)["queued_writes"] > 100);
  // Then every write is refused until the queue drained below the lag and a refresh saw it:
  // one window of about 3 s, not refusals scattered at random.
  std::vector<int> statuses;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    statuses.push_back(f.Post(import, doc).status);
    if (statuses.back() == 200 && std::count(statuses.begin(), statuses.end(), 503) > 0) break;
    std::this_thread::sleep_for(20ms);  // pacing the probe, not synchronisation
  }
  const auto first_refusal = std::find(statuses.begin(), statuses.end(), 503);
  REQUIRE(first_refusal != statuses.end());
  REQUIRE(statuses.back() == 200);
  // One contiguous window of 503s.
  CHECK(std::all_of(first_refusal, statuses.end() - 1, [](int status) { return status == 503; }));
  CHECK(std::distance(first_refusal, statuses.end() - 1) > 20);
  CHECK(f.server.PendingWriteBatches() <= 5 + 1);
  // Reads were never refused: the backlog stayed under the read lag.
  CHECK(f.Get("/collections/products").status == 200);

  // A backlog past the read lag turns reads and /health away too.
  f.server.SetWriteQueueModel(TypesenseWriteQueueModel{
      .drained_per_second = 1, .healthy_read_lag = 10, .refresh_interval = 50ms});
  f.server.AddPendingWriteBatches(1000);
  CHECK(WaitUntil([&] { return f.Get("/health").status == 503; }, 10s));
  CHECK(f.Get("/collections/products").status == 503);
  f.server.SetWriteQueueModel(std::nullopt);
  CHECK(f.Get("/health").status == 200);
  CHECK(f.Post(import, doc).status == 200);
}

TEST_CASE("A held import takes effect and stays unanswered until released", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.server.HoldImports(true);
  std::atomic<long> status{0};
  std::thread client([&] {
    status = f.Post("/collections/products/documents/import?action=upsert",
                    R"({"id":"held","name":"h","price":1,"stock":1})")
                 .status;
  });
  REQUIRE(WaitUntil([&] { return f.server.HeldImports() == 1; }, 10s));
  CHECK(f.server.Document("products", "held").has_value());  // applied, not acknowledged
  CHECK(status == 0);
  // Other requests are not held.
  CHECK(f.Get("/collections/products").status == 200);
  f.server.HoldImports(false);
  client.join();
  CHECK(status == 200);
  CHECK(f.server.HeldImports() == 0);
}

TEST_CASE("Jitter reorders writes in flight together: the last to arrive is what stays",
          "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.server.SetJitter(40ms);
  // Two upserts of one id sent a moment apart: without jitter the second always wins; with it,
  // the first sometimes arrives last.
  auto upsert = [&](int value) {
    return f.Post("/collections/products/documents/import?action=upsert",
                  json{{"id", "x"}, {"name", "x"}, {"price", 1}, {"stock", value}}.dump());
  };
  int first_won = 0;
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    int first_status = 0;  // Catch assertions belong on the test's own thread
    std::thread first([&] { first_status = upsert(1).status; });
    std::this_thread::sleep_for(2ms);  // sends the second one after the first
    CHECK(upsert(2).status == 200);
    first.join();
    CHECK(first_status == 200);
    first_won += f.server.Document("products", "x").value()["stock"] == 1;
  }
  CHECK(first_won > 0);
  CHECK(first_won < kRounds);
}

TEST_CASE("The drop rate cuts connections before and after applying", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.server.SetDropRate(1.0);
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = "d" + std::to_string(i);
    const HttpResponse response =
        f.Post("/collections/products/documents/import?action=upsert",
               json{{"id", id}, {"name", id}, {"price", 1}, {"stock", 1}}.dump());
    INFO(curl_easy_strerror(response.curl_code));
    CHECK((response.curl_code == CURLE_GOT_NOTHING || response.curl_code == CURLE_RECV_ERROR));
  }
  CHECK(f.Get("/collections/products").status == 200);  // reads are never cut

  const TypesenseServerCounters counters = f.server.Counters();
  CHECK(counters.dropped_before_apply + counters.dropped_after_apply == kRequests);
  CHECK(counters.dropped_before_apply > 0);
  CHECK(counters.dropped_after_apply > 0);
  CHECK(static_cast<int64_t>(f.Ids().size()) == counters.dropped_after_apply);
  int handled = 0;
  for (const TypesenseWriteAttempt& attempt : f.server.WriteAttempts()) {
    if (attempt.route != TypesenseRoute::kImport) continue;
    CHECK(attempt.status == 0);
    handled += attempt.handled;
  }
  CHECK(handled == counters.dropped_after_apply);

  f.server.SetDropRate(0);
  CHECK(f.Post("/collections/products/documents/import?action=upsert",
               R"({"id":"d0","name":"x","price":1,"stock":1})")
            .status == 200);
}

TEST_CASE("Latency delays every response", "[typesense-server]") {
  ServerFixture f;
  f.server.SetLatency(50ms);
  const auto start = std::chrono::steady_clock::now();
  CHECK(f.Get("/health").status == 200);
  CHECK(std::chrono::steady_clock::now() - start >= 50ms);
}

TEST_CASE("Discard mode answers import lines but stores nothing", "[typesense-server]") {
  ServerFixture f(TypesenseServerOptions{.discard = true});
  f.CreateProducts();
  const HttpResponse response = f.Post("/collections/products/documents/import",
                                       R"({"id":"a","name":"a","price":1,"stock":1})"
                                       "\n"
                                       R"({"id":"a","name":"a","price":1,"stock":1})"
                                       "\n"
                                       R"({"id":"b","name":"b","price":"x","stock":1})");
  CHECK(response.body ==
        "{\"success\":true}\n{\"success\":true}\n"
        R"({"code":400,"error":"Field `price` must be a float.","success":false})");
  CHECK(f.server.Documents("products")->empty());
  CHECK(f.server.Counters().documents_written == 2);
}

TEST_CASE("A snapshot writes the state under <dir>/state/snapshot", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  f.Seed({"a"});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ts-snapshot-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const HttpResponse response =
      f.Post("/operations/snapshot?snapshot_path=" + PercentEncode(dir.string()), "");
  CHECK(response.status == 201);
  CHECK(response.body == R"({"success":true})");
  bool found = false;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir / "state" / "snapshot")) {
    found |= entry.path().filename() == "state.json";
  }
  CHECK(found);
  CHECK(std::filesystem::exists(dir / "state" / "meta"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("With a data directory, a new server starts with the state the last one saved",
          "[typesense-server]") {
  const TempDir dir;
  {
    ServerFixture f(TypesenseServerOptions{.data_dir = dir.path()});
    f.CreateProducts();
    f.Seed({"a", "b", "c"});
    REQUIRE(f.Patch("/collections/products/documents/c", R"({"name":"changed"})").status == 200);
    REQUIRE(f.Delete("/collections/products/documents/b").status == 200);
    REQUIRE(f.Put("/aliases/live", R"({"collection_name":"products"})").status == 200);
    CHECK_FALSE(std::filesystem::exists(dir / "state.json"));  // saved when the server stops
  }
  REQUIRE(std::filesystem::exists(dir / "state.json"));

  ServerFixture f(TypesenseServerOptions{.data_dir = dir.path()});
  CHECK(f.server.Aliases() == std::map<std::string, std::string>{{"live", "products"}});
  CHECK(f.Ids("live") == std::vector<std::string>{"a", "c"});
  CHECK(json::parse(f.Get("/collections/live/documents/c").body)["name"] == "changed");
  CHECK(f.Get("/collections/products/documents/b").status == 404);
  // The schema came back too: documents are still checked against it.
  CHECK(Lines(f.Post("/collections/products/documents/import",
                     R"({"id":"d","name":"d","price":"x","stock":1})")
                  .body)
            .at(0)
            .find("must be a float") != std::string::npos);
  const json collection = json::parse(f.Get("/collections/products").body);
  CHECK(collection["num_documents"] == 2);
  CHECK(collection["default_sorting_field"] == "stock");
}

TEST_CASE("Concurrent clients all get answers", "[typesense-server]") {
  ServerFixture f;
  f.CreateProducts();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int client = 0; client < 8; ++client) {
    clients.emplace_back([&f, &ok, client] {  // no Catch assertions off the main thread
      for (int i = 0; i < 10; ++i) {
        const std::string id = "c" + std::to_string(client) + "-" + std::to_string(i);
        const json doc = {{"id", id}, {"name", id}, {"price", 1}, {"stock", 1}};
        ok += f.Post("/collections/products/documents/import", doc.dump()).status == 200;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  CHECK(ok == 80);
  CHECK(f.server.Documents("products")->size() == 80);
}

}  // namespace
}  // namespace searchsync::test
