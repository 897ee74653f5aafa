#include "commands.h"
#include "core/error.h"

namespace tandem::apps {
int detokenize_command(int, char**) { fail("detokenize: under construction"); }
}  // namespace tandem::apps
