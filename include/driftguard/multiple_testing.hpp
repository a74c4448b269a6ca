#pragma once
// Corrections for testing many features at once, and the dataset-level drift decision they give.
//
//   bonferroni          adjusted p_i = min(1, m * p_i)
//   benjamini_hochberg  adjusted p_(i) = min over j >= i of m * p_(j) / j, capped at 1 (step-up,
//                       p sorted ascending; scipy.stats.false_discovery_control(method="bh"))
//   none                adjusted p_i = p_i
// NaN p-values (an empty window) are not tests: they stay NaN and do not count in m.
#include <span>
#include <string_view>
#include <vector>

namespace driftguard {

enum class Correction { None, Bonferroni, BenjaminiHochberg };
Correction parse_correction(std::string_view name);  // "none" | "bonferroni" | "bh"
std::string_view to_string(Correction correction);

std::vector<double> adjust_pvalues(std::span<const double> pvalues, Correction correction);

}  // namespace driftguard
