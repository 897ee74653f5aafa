#include "commands.h"
#include "core/error.h"

namespace tandem::apps {
int tokenize_command(int, char**) { fail("tokenize: under construction"); }
}  // namespace tandem::apps
