#include "commands.h"
#include "core/error.h"

namespace tandem::apps {
int generate_command(int, char**) { fail("generate: under construction"); }
}  // namespace tandem::apps
