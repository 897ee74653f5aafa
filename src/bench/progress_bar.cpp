// ProgressBar: rendering and in-place or per-tenth drawing.
#include "bench/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace tandem::bench {
namespace {

constexpr int kBarWidth = 30;

std::string clock_text(double seconds) {
  const long s = long(std::floor(std::max(0.0, seconds)));  // tqdm truncates
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

}  // namespace

ProgressBar::ProgressBar(int total, FILE* out)
    : ProgressBar(total, out,
                  isatty(fileno(out)) ? ProgressOutput::kTerminal : ProgressOutput::kLog) {}

ProgressBar::ProgressBar(int total, FILE* out, ProgressOutput mode)
    : total_(std::max(total, 1)), out_(out), mode_(mode) {}

std::string ProgressBar::render(int done, int total, double elapsed_s) {
  total = std::max(total, 1);
  done = std::clamp(done, 0, total);
  const int filled = done * kBarWidth / total;
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  const std::string remaining = rate > 0 ? clock_text((total - done) / rate) : "?";
  return fmt::format("{:3}%|{}{}| {}/{} [{}<{}, {:6.2f}it/s]", done * 100 / total,
                     std::string(size_t(filled), '#'), std::string(size_t(kBarWidth - filled), ' '),
                     done, total, clock_text(elapsed_s), remaining, rate);
}

void ProgressBar::update(int done, double elapsed_s) {
  if (mode_ == ProgressOutput::kTerminal) {
    std::fprintf(out_, "\r%s", render(done, total_, elapsed_s).c_str());
    std::fflush(out_);
    return;
  }
  const int tenth = done * 10 / total_;
  if (tenth == last_logged_tenth_) return;
  last_logged_tenth_ = tenth;
  std::fprintf(out_, "%s\n", render(done, total_, elapsed_s).c_str());
  std::fflush(out_);
}

void ProgressBar::finish(int done, double elapsed_s) {
  if (mode_ == ProgressOutput::kTerminal) {
    std::fprintf(out_, "\r%s\n", render(done, total_, elapsed_s).c_str());
  } else if (done * 10 / total_ != last_logged_tenth_) {
    std::fprintf(out_, "%s\n", render(done, total_, elapsed_s).c_str());
  }
  std::fflush(out_);
}

}  // namespace tandem::bench
