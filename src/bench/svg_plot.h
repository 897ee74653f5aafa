// SvgPlot: a picture of one benchmark result as a self-contained SVG, with no plotting library:
// a timeline with one row per request (client queue, waiting for the first token, the decode
// span with a tick per token, the end) and histograms of TTFT and ITL. Queueing and transfer
// stalls show up as long orange bars and gaps between ticks.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace tandem::bench {

// `result`: a --save-result JSON of `tandem bench serve` ("requests" records), or of
// `vllm bench serve --save-detailed` (start_times / ttfts / itls / latencies / errors arrays).
// Throws tandem::Error naming the missing key when neither is there.
std::string render_result_svg(const nlohmann::json& result);

}  // namespace tandem::bench
