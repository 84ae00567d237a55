// A backup's manifest.json, as read from a backup directory or bucket: parsed or refused with a
// reason; an accepted manifest is written back and read again unchanged.
#include "pipeline/app/backup_archive.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void FuzzBackupManifest(std::string_view input) {
  Result<BackupManifest> manifest = ParseManifest(input, "manifest.json");
  if (!manifest.ok()) {
    Check(manifest.status().message().starts_with("manifest.json: "), "a refusal names the file");
    return;
  }
  const std::string json = ManifestToJson(*manifest);
  Check(IsJson(json), "a manifest is written as valid JSON");
  Result<BackupManifest> again = ParseManifest(json, "manifest.json");
  Check(again.ok(), "a written manifest reads back");
  Check(again->schema_json == manifest->schema_json && again->sha256 == manifest->sha256 &&
            again->checkpoint == manifest->checkpoint && again->documents == manifest->documents,
        "a manifest reads back unchanged");
}

}  // namespace searchsync::fuzz
