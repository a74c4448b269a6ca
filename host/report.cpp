// ScanReport -> JSON (the schema is documented in docs/report.md; bump kReportVersion on change).
#include <cmath>

#include <nlohmann/json.hpp>

#include "driftguard/scan.hpp"

namespace driftguard {
namespace {

using nlohmann::json;
constexpr int kReportVersion = 1;

json flags_json(const std::array<std::uint64_t, kCellFlagCount>& counts) {
  json out = json::object();
  for (CellFlag flag : kAllCellFlags) out[flag_name(flag)] = counts[flag_index(flag)];
  return out;
}

json validation_json(const ValidationCounts& counts) {
  std::array<std::uint64_t, kCellFlagCount> cells{};
  for (std::size_t f = 0; f < counts.features; ++f) {
    for (CellFlag flag : kAllCellFlags) cells[flag_index(flag)] += counts.count(f, flag);
  }
  return {{"rows", counts.rows},
          {"rows_ok", counts.rows_ok},
          {"rows_invalid", counts.rows_invalid()},
          {"cells", flags_json(cells)}};
}

json number_or_null(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

}  // namespace

std::string ScanReport::to_json() const {
  json features_json = json::array();
  for (const FeatureDrift& f : features) {
    const bool categorical = f.kind == FeatureKind::Categorical;
    features_json.push_back({
        {"name", f.name},
        {"kind", categorical ? "categorical" : "numeric"},
        {"psi", number_or_null(f.psi)},
        {"band", to_string(f.band)},
        {"drifted", f.drifted},
        {"validation", flags_json(f.current_flags)},
        {"reference_validation", flags_json(f.reference_flags)},
        {"histogram",
         {{categorical ? "categories" : "edges", f.points},
          {"reference", f.reference_slots},
          {"current", f.current_slots}}},
    });
  }
  const json doc = {
      {"report_version", kReportVersion},
      {"backend", backend},
      {"device", device},
      {"reference", {{"path", reference_path}, {"rows", reference_rows}}},
      {"current", {{"path", current_path}, {"rows", current_rows}}},
      {"reference_rows", reference_rows},
      {"current_rows", current_rows},
      {"schema_inferred", schema_inferred},
      {"binning", {{"policy", to_string(binning.policy)}, {"bins", binning.bins}}},
      {"psi",
       {{"merge_outer", psi.merge_outer},
        {"include_missing", psi.include_missing},
        {"empty_bins", to_string(psi.empty_bins)},
        {"epsilon", psi.epsilon},
        {"bands", {{"moderate", bands.moderate}, {"significant", bands.significant}}}}},
      {"validation", validation_json(current_validation)},
      {"reference_validation", validation_json(reference_validation)},
      {"drift",
       {{"rule", "psi band >= " + std::string(to_string(drift_band))},
        {"features_drifted", drifted_features()},
        {"dataset_drift", drifted_features() > 0}}},
      {"features", features_json},
      {"timing",
       {{"total_seconds", seconds},
        {"current_seconds", current_seconds},
        {"current_rows_per_second", current_seconds > 0
                                        ? json(static_cast<double>(current_rows) / current_seconds)
                                        : json(nullptr)}}},
  };
  return doc.dump(2) + "\n";
}

}  // namespace driftguard
