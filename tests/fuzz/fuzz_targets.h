#pragma once
// Fuzz targets: one per parser of outside input. Each takes arbitrary bytes, runs the parser and
// checks what must hold for any input (no crash, no exception escaping, output that is valid
// JSON where the parser promises JSON, round trips). A broken invariant aborts, which libFuzzer
// reports as a crash.
//
// The same functions serve two drivers:
//   - tests/fuzz/fuzz_main.cc, built once per target with clang's libFuzzer when SEARCHSYNC_FUZZ
//     is ON (tests/fuzz/run.sh builds and runs them);
//   - tests/unit/fuzz_corpus_test.cc, in every build, which replays each target's corpus in
//     tests/fuzz/corpus/<name>/: the seeds and every input that once crashed.

#include <span>
#include <string_view>

namespace searchsync::fuzz {

void FuzzConfig(std::string_view input);          // the YAML configuration
void FuzzMaxwell(std::string_view input);         // a Kafka key, '\n', a Maxwell message
void FuzzCouchdb(std::string_view input);         // `_changes` lines and pages, `_all_docs` pages
void FuzzTypesense(std::string_view input);       // import results and error bodies
void FuzzPostgresValue(std::string_view input);   // a type selector byte, then a value's text
void FuzzCron(std::string_view input);            // a cron expression
void FuzzBackupManifest(std::string_view input);  // a backup's manifest.json
void FuzzS3Xml(std::string_view input);           // an S3 XML answer

struct FuzzTarget {
  std::string_view name;  // the fuzzer's name and its corpus directory
  void (*run)(std::string_view input);
};

inline constexpr FuzzTarget kFuzzTargets[] = {
    {"config", FuzzConfig},
    {"maxwell", FuzzMaxwell},
    {"couchdb", FuzzCouchdb},
    {"typesense", FuzzTypesense},
    {"postgres_value", FuzzPostgresValue},
    {"cron", FuzzCron},
    {"backup_manifest", FuzzBackupManifest},
    {"s3_xml", FuzzS3Xml},
};

// Prints `what` and aborts when `condition` is false: a broken invariant is a crash.
void Check(bool condition, std::string_view what);

// True when `text` is one valid JSON value (UTF-8 strings included).
bool IsJson(std::string_view text);
// True when `text` is valid UTF-8.
bool IsUtf8(std::string_view text);

}  // namespace searchsync::fuzz
