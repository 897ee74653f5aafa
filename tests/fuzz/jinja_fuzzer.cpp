// libFuzzer driver for the jinja target (fuzz_targets.h); built by scripts/test_fuzz.sh.
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tandem::fuzz::jinja({data, size});
  return 0;
}
