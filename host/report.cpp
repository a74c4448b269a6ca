// ScanReport -> JSON (the schema is documented in docs/report.md; bump kReportVersion on change).
#include <cmath>

#include <nlohmann/json.hpp>

#include "driftguard/report.hpp"
#include "host/report_json.hpp"

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

// No PSI, no band: "stable" would read as a verdict about a PSI that was not computed (an empty
// window; the whole file of a windowed scan under the evidently policy).
json band_or_null(double psi, PsiBand band) {
  return std::isnan(psi) ? json(nullptr) : json(to_string(band));
}

json ks_json(const KsResult& ks, double adjusted, double alpha) {
  return {{"statistic", number_or_null(ks.statistic)},
          {"pvalue", number_or_null(ks.pvalue)},
          {"pvalue_adjusted", number_or_null(adjusted)},
          {"drift", adjusted < alpha},
          {"method", to_string(ks.method_used)},
          {"statistic_location", number_or_null(ks.statistic_location)},
          {"statistic_sign", ks.statistic_sign},
          {"n_reference", ks.n_reference},
          {"n_current", ks.n_current}};
}

json window_json(const WindowInfo& w) {
  json out = {{"index", w.index},
              {"first_row", w.first_row},
              {"end_row", w.end_row},
              {"quarantined_rows", w.quarantined_rows}};
  if (w.time_begin) out["time"] = {{"begin", *w.time_begin}, {"end", *w.time_end}};
  return out;
}

WindowInfo window_from_json(const json& j) {
  WindowInfo w;
  w.index = j.at("index");
  w.first_row = j.at("first_row");
  w.end_row = j.at("end_row");
  w.quarantined_rows = j.at("quarantined_rows");
  if (const auto time = j.find("time"); time != j.end()) {
    w.time_begin = time->at("begin").get<std::int64_t>();
    w.time_end = time->at("end").get<std::int64_t>();
  }
  return w;
}

json quarantine_json(std::uint64_t rows, const std::vector<QuarantinedBlock>& blocks) {
  json list = json::array();
  for (const QuarantinedBlock& q : blocks) {
    list.push_back({{"first_row", q.first_row}, {"rows", q.rows}, {"reason", q.reason}});
  }
  return {{"rows", rows}, {"blocks", list}};
}

json failovers_json(const std::vector<FailoverEvent>& events) {
  json list = json::array();
  for (const FailoverEvent& e : events) {
    list.push_back({{"row", e.row},
                    {"stage", e.stage},
                    {"from", e.from},
                    {"to", "cpu"},
                    {"reason", e.reason}});
  }
  return list;
}

}  // namespace

json detail::window_summary_json(const WindowSummary& w) {
  json item = window_json(w.window);
  item["rows"] = w.rows;
  item["rows_ok"] = w.rows_ok;
  item["drifted_features"] = w.drifted_features;
  if (!w.drifted_scores.empty()) item["drifted_scores"] = w.drifted_scores;
  if (w.mmd_pvalue) item["mmd_pvalue"] = *w.mmd_pvalue;
  item["dataset_drift"] = w.dataset_drift;
  return item;
}

WindowSummary detail::window_summary_from_json(const json& j) {
  WindowSummary w;
  w.window = window_from_json(j);
  w.rows = j.at("rows");
  w.rows_ok = j.at("rows_ok");
  w.drifted_features = j.at("drifted_features").get<std::vector<std::string>>();
  if (const auto scores = j.find("drifted_scores"); scores != j.end()) {
    w.drifted_scores = scores->get<std::vector<std::string>>();
  }
  // A NaN p-value is written as null.
  if (const auto p = j.find("mmd_pvalue"); p != j.end() && !p->is_null()) {
    w.mmd_pvalue = p->get<double>();
  }
  w.dataset_drift = j.at("dataset_drift");
  return w;
}

std::string ScanReport::to_json(int indent) const {
  json features_json = json::array();
  for (const FeatureDrift& f : features) {
    const bool categorical = f.kind == FeatureKind::Categorical;
    json item = {
        {"name", f.name},
        {"kind", categorical ? "categorical" : "numeric"},
        {"psi", number_or_null(f.psi)},
        {"band", band_or_null(f.psi, f.band)},
        {"drifted", f.drifted},
        {"validation", flags_json(f.current_flags)},
        {"reference_validation", flags_json(f.reference_flags)},
        {"histogram",
         {{categorical  ? "categories"
           : f.by_value ? "values"
                        : "edges",
           f.points},
          {"reference", f.reference_slots},
          {"current", f.current_slots}}},
    };
    // A windowed scan under the evidently policy bins each window on its own: no whole-file
    // histogram to give.
    if (f.reference_slots.empty() && f.current_slots.empty()) item.erase("histogram");
    if (!f.labels.empty() && item.contains("histogram")) {
      json& labels = item["histogram"]["labels"] = json::array();
      for (const std::optional<std::string>& label : f.labels) {
        labels.push_back(label ? json(*label) : json(nullptr));
      }
    }
    if (!windows.empty()) item["windows_drifted"] = f.windows_drifted;
    if (f.ks) item["ks"] = ks_json(*f.ks, f.ks_pvalue_adjusted, alpha);
    if (f.wasserstein) {
      item["wasserstein"] = number_or_null(*f.wasserstein);
      item["wasserstein_normed"] = number_or_null(*f.wasserstein_normed);
      item["jensen_shannon"] = number_or_null(*f.jensen_shannon);
    }
    if (f.chi_squared) {
      item["chi_squared"] = {{"statistic", number_or_null(f.chi_squared->statistic)},
                             {"pvalue", number_or_null(f.chi_squared->pvalue)},
                             {"pvalue_adjusted", number_or_null(f.chi_squared_pvalue_adjusted)},
                             {"drift", f.chi_squared_pvalue_adjusted < alpha},
                             {"dof", f.chi_squared->dof}};
    }
    if (f.cramer_von_mises) {
      item["cramer_von_mises"] = {{"statistic", number_or_null(f.cramer_von_mises->statistic)},
                                  {"pvalue", number_or_null(f.cramer_von_mises->pvalue)}};
    }
    features_json.push_back(std::move(item));
  }
  json doc = {
      {"report_version", kReportVersion},
      {"backend", backend},
      {"device", device},
      {"reference",
       {{"path", reference_path}, {"rows", reference_rows}, {"profile", reference_is_profile}}},
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
      {"ks",
       {{"enabled", !features.empty() && features.front().ks.has_value()},
        {"method", to_string(ks_options.method)},
        {"alternative", to_string(ks_options.alternative)}}},
      {"drift",
       {{"rule", decision_rule()},
        {"feature_rule", to_string(drift_rule)},
        {"psi_band", to_string(drift_band)},
        {"correction", to_string(correction)},
        {"alpha", alpha},
        {"features_drifted", drifted_features()},
        {"dataset_drift", dataset_drift()}}},
      {"features", features_json},
      {"timing",
       {{"total_seconds", seconds},
        {"current_seconds", current_seconds},
        {"current_rows_per_second", current_seconds > 0
                                        ? json(static_cast<double>(current_rows) / current_seconds)
                                        : json(nullptr)},
        {"pipeline",
         {{"batches", pipeline.batches},
          {"bytes", pipeline.bytes},
          {"read_seconds", pipeline.read_seconds},
          {"compute_seconds", pipeline.compute_seconds},
          {"batch_latency_seconds",
           {{"p50", pipeline.latency_p50},
            {"p95", pipeline.latency_p95},
            {"p99", pipeline.latency_p99}}}}}}},
      {"quarantine", quarantine_json(quarantined_rows, quarantined)},
      {"failovers", failovers_json(failovers)},
  };
  if (window) doc["window"] = window_json(*window);
  if (!windows.empty()) {
    json list = json::array();
    for (const WindowSummary& w : windows) list.push_back(detail::window_summary_json(w));
    doc["windows"] = std::move(list);
  }
  if (!scores.empty()) {
    json outputs = json::array();
    for (const ScoreDrift& d : scores) {
      outputs.push_back({{"name", d.name},
                         {"psi", number_or_null(d.psi)},
                         {"band", band_or_null(d.psi, d.band)},
                         {"drifted", d.drifted},
                         {"ks",
                          {{"statistic", number_or_null(d.ks.statistic)},
                           {"pvalue", number_or_null(d.ks.pvalue)},
                           {"method", to_string(d.ks.method_used)}}},
                         {"histogram",
                          {{d.by_value ? "values" : "edges", d.points},
                           {"reference", d.reference_slots},
                           {"current", d.current_slots}}}});
    }
    doc["score"] = {{"model", score_model}, {"outputs", outputs}};
  }
  if (mmd) {
    doc["mmd"] = {{"mmd2", mmd->mmd2},
                  {"pvalue", mmd->pvalue},
                  {"sigma", mmd->sigma},
                  {"threshold", mmd->threshold},
                  {"permutations", mmd->permutations},
                  {"exceed_count", mmd->exceed_count},
                  {"reference_rows", mmd->n_reference},
                  {"current_rows", mmd->n_current},
                  {"current_finite_rows", mmd_current_finite_rows},
                  {"drift", mmd->pvalue < alpha}};
  }
  if (!mmd_skipped.empty()) {
    doc["mmd"] = {{"skipped", mmd_skipped}, {"current_finite_rows", mmd_current_finite_rows}};
  }

  return indent < 0 ? doc.dump() : doc.dump(indent) + "\n";
}

}  // namespace driftguard
