#include "kernels/prepared_pass.hpp"

#include <limits>

namespace driftguard::detail {

float round_up_to_float(double value) noexcept {
  float f = static_cast<float>(value);
  if (static_cast<double>(f) < value) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

float round_down_to_float(double value) noexcept {
  float f = static_cast<float>(value);
  if (static_cast<double>(f) > value) {
    f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  }
  return f;
}

PreparedPass::PreparedPass(const BatchPassArgs& args) {
  if (const HistogramSpec* spec = args.spec) {
    bins.reserve(spec->features());
    points.reserve(spec->points.size());
    for (std::size_t f = 0; f < spec->features(); ++f) {
      const auto p = spec->points_of(f);
      const bool categorical = spec->categorical[f] != 0;
      bins.push_back({.point_offset = static_cast<std::uint32_t>(points.size()),
                      .point_count = static_cast<std::uint32_t>(p.size()),
                      .slot_offset = total_slots,
                      .categorical = categorical ? 1u : 0u,
                      .last_edge_down = categorical ? 0.0f : round_down_to_float(p.back())});
      for (double point : p) {
        points.push_back(categorical ? static_cast<float>(point) : round_up_to_float(point));
      }
      total_slots += static_cast<std::uint32_t>(spec->bins(f) + 3);
    }
  }
  if (const ValidationRules* r = args.rules) {
    rules.reserve(r->features());
    codes = r->category_codes;
    for (std::size_t f = 0; f < r->features(); ++f) {
      const std::uint32_t bad = kNonFinite | kBelowMin | kAboveMax | kUnknownCategory |
                                (r->missing_allowed[f] ? 0u : std::uint32_t{kMissing});
      rules.push_back({.min_up = round_up_to_float(r->min[f]),
                       .max_down = round_down_to_float(r->max[f]),
                       .code_offset = r->category_offsets[f],
                       .code_count = r->category_offsets[f + 1] - r->category_offsets[f],
                       .categorical = r->categorical[f] ? 1u : 0u,
                       .row_bad_flags = bad});
    }
  }
}

}  // namespace driftguard::detail
