// PSI over histogram slots (psi.hpp).
#include "driftguard/psi.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "host/count_total.hpp"

namespace driftguard {

namespace {

// evidently's fill constants (get_binned_data in evidently/legacy/calculations/stattests/utils.py).
constexpr double kEvidentlyFillCeiling = 1e-4;
constexpr double kEvidentlyFillDivisor = 1e6;

struct Cell {
  std::uint64_t reference = 0;
  std::uint64_t current = 0;
};

// The proportion that stands in for an empty slot of one window under EmptyBins::Evidently.
double evidently_fill(const std::vector<Cell>& cells, std::uint64_t Cell::*window, double total) {
  std::uint64_t smallest = std::numeric_limits<std::uint64_t>::max();
  for (const Cell& cell : cells) {
    if (cell.*window != 0) smallest = std::min(smallest, cell.*window);
  }
  if (smallest == std::numeric_limits<std::uint64_t>::max()) return kEvidentlyFillCeiling;
  // Division rounds monotonically, so the smallest count gives evidently's smallest proportion.
  const double min_share = static_cast<double>(smallest) / total;
  return min_share <= kEvidentlyFillCeiling ? min_share / kEvidentlyFillDivisor
                                            : kEvidentlyFillCeiling;
}

}  // namespace

PsiOptions evidently_psi_options() {
  return PsiOptions{
      .merge_outer = true, .include_missing = false, .empty_bins = EmptyBins::Evidently};
}

EmptyBins parse_empty_bins(std::string_view name) {
  if (name == "epsilon") return EmptyBins::Epsilon;
  if (name == "evidently") return EmptyBins::Evidently;
  throw InvalidInput("unknown empty-bin rule '" + std::string(name) +
                     "' (expected epsilon or evidently)");
}

std::string_view to_string(EmptyBins rule) {
  switch (rule) {
    case EmptyBins::Epsilon:
      return "epsilon";
    case EmptyBins::Evidently:
      return "evidently";
  }
  return "unknown";
}

double psi(std::span<const std::uint64_t> reference_slots,
           std::span<const std::uint64_t> current_slots, const PsiOptions& options,
           FeatureKind kind) {
  if (reference_slots.size() != current_slots.size()) {
    throw InvalidInput("psi: the reference has " + std::to_string(reference_slots.size()) +
                       " histogram slots, the current window " +
                       std::to_string(current_slots.size()));
  }
  if (reference_slots.size() < 4) {
    throw InvalidInput("psi: " + std::to_string(reference_slots.size()) +
                       " histogram slots, at least 4 (one bin) are needed");
  }
  if (options.empty_bins == EmptyBins::Epsilon &&
      !(options.epsilon > 0 && std::isfinite(options.epsilon))) {
    throw InvalidInput("psi: epsilon must be positive and finite, got " +
                       std::to_string(options.epsilon));
  }

  // Checked first: every sum below is a part of these.
  const std::uint64_t reference_rows = detail::count_total(reference_slots, "psi");
  const std::uint64_t current_rows = detail::count_total(current_slots, "psi");

  const std::size_t bins = reference_slots.size() - 3;
  const std::size_t underflow = 0, overflow = bins + 1, missing = bins + 2;
  const auto slot = [&](std::size_t i) { return Cell{reference_slots[i], current_slots[i]}; };
  std::vector<Cell> cells;
  cells.reserve(bins + 3);
  const auto add_catch_all = [&](std::size_t i) {
    if (reference_slots[i] != 0 || current_slots[i] != 0) cells.push_back(slot(i));
  };
  const bool merge = options.merge_outer && kind == FeatureKind::Numeric;
  if (!merge) add_catch_all(underflow);
  const std::size_t first_bin = cells.size();
  for (std::size_t i = 1; i <= bins; ++i) cells.push_back(slot(i));
  if (merge) {
    cells[first_bin].reference += reference_slots[underflow];
    cells[first_bin].current += current_slots[underflow];
    cells.back().reference += reference_slots[overflow];
    cells.back().current += current_slots[overflow];
  } else {
    add_catch_all(overflow);
  }
  if (options.include_missing) add_catch_all(missing);

  std::uint64_t reference_total = 0, current_total = 0;
  for (const Cell& cell : cells) {
    reference_total += cell.reference;
    current_total += cell.current;
  }
  // A window with rows but no value in the participating slots (every value missing, with no
  // missing bin) has every proportion 0: the fills stand in for all of them, as for empty bins.
  // Only an empty window leaves PSI undefined.
  if (reference_rows == 0 || current_rows == 0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const auto r_total = static_cast<double>(reference_total);
  const auto c_total = static_cast<double>(current_total);

  const bool evidently = options.empty_bins == EmptyBins::Evidently;
  const double r_fill =
      evidently ? evidently_fill(cells, &Cell::reference, r_total) : options.epsilon;
  const double c_fill =
      evidently ? evidently_fill(cells, &Cell::current, c_total) : options.epsilon;
  double sum = 0;
  for (const Cell& cell : cells) {
    if (!evidently && cell.reference == 0 && cell.current == 0) continue;
    const double r = cell.reference == 0 ? r_fill : static_cast<double>(cell.reference) / r_total;
    const double c = cell.current == 0 ? c_fill : static_cast<double>(cell.current) / c_total;
    // evidently's operand order, (r - c) * ln(r / c): the same value, rounded the same way.
    sum += (r - c) * std::log(r / c);
  }
  return sum;
}

PsiBand psi_band(double psi_value, const PsiBands& bands) {
  if (psi_value >= bands.significant) return PsiBand::Significant;
  if (psi_value >= bands.moderate) return PsiBand::Moderate;
  return PsiBand::Stable;  // also NaN, which compares false above
}

std::string_view to_string(PsiBand band) {
  switch (band) {
    case PsiBand::Stable:
      return "stable";
    case PsiBand::Moderate:
      return "moderate";
    case PsiBand::Significant:
      return "significant";
  }
  return "unknown";
}

PsiBand parse_psi_band(std::string_view name) {
  if (name == "stable") return PsiBand::Stable;
  if (name == "moderate") return PsiBand::Moderate;
  if (name == "significant") return PsiBand::Significant;
  throw InvalidInput("unknown PSI band '" + std::string(name) +
                     "' (expected stable, moderate or significant)");
}

}  // namespace driftguard
