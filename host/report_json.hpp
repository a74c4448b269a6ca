#pragma once
// Internal: the report's JSON for one window summary (an item of the report's `windows`,
// docs/report.md), and its parser. The checkpoint (host/checkpoint.cpp) stores its window
// summaries in this same shape, so there is one serialisation of a window summary.
#include <nlohmann/json_fwd.hpp>

#include "driftguard/report.hpp"

namespace driftguard::detail {

nlohmann::json window_summary_json(const WindowSummary& w);
// The inverse of window_summary_json; nlohmann::json::exception when `j` is not of that shape.
WindowSummary window_summary_from_json(const nlohmann::json& j);

}  // namespace driftguard::detail
