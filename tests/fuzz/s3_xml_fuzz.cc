// S3 XML answers (ListObjectsV2 pages, errors, multipart uploads): every value read lies within
// the answer and entities only shrink it.
#include "pipeline/app/s3_client.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void FuzzS3Xml(std::string_view input) {
  for (const char* tag :
       {"Key", "IsTruncated", "NextContinuationToken", "Code", "Message", "UploadId"}) {
    size_t total = 0;
    for (const std::string& value : XmlValues(input, tag)) total += value.size();
    Check(total <= input.size(), "a tag's values are no longer than the answer");
  }
}

}  // namespace searchsync::fuzz
