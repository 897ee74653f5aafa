#include "commands.h"
#include "core/error.h"

namespace tandem::apps {
int make_model_command(int, char**) { fail("make_model: under construction"); }
}  // namespace tandem::apps
