// ProgressBar: the tqdm-style line `vllm bench serve` shows while it runs, e.g.
// " 40%|########            | 12/30 [00:05<00:07,  2.31it/s]". On a terminal it is redrawn in
// place; into a file or pipe it writes a line at each tenth of the run, so logs stay readable.
#pragma once
#include <cstdio>
#include <string>

namespace tandem::bench {

enum class ProgressOutput { kTerminal, kLog };

class ProgressBar {
 public:
  // Draws to `out` (not owned); kTerminal when `out` is a TTY, else kLog.
  ProgressBar(int total, FILE* out);
  ProgressBar(int total, FILE* out, ProgressOutput mode);

  // Shows `done` of the total after `elapsed_s` seconds.
  void update(int done, double elapsed_s);
  // The last line, ended with a newline.
  void finish(int done, double elapsed_s);

  // The line itself, without CR or newline.
  static std::string render(int done, int total, double elapsed_s);

 private:
  int total_;
  FILE* out_;
  ProgressOutput mode_;
  int last_logged_tenth_ = -1;
};

}  // namespace tandem::bench
