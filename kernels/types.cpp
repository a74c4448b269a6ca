// Methods of the plain data types shared by every backend (validate.hpp, histogram.hpp).
#include <cmath>
#include <string>

#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

const char* flag_name(CellFlag flag) noexcept {
  switch (flag) {
    case kMissing:
      return "missing";
    case kNonFinite:
      return "non_finite";
    case kBelowMin:
      return "below_min";
    case kAboveMax:
      return "above_max";
    case kUnknownCategory:
      return "unknown_category";
  }
  return "unknown_flag";
}

ValidationRules ValidationRules::from_schema(const Schema& schema) {
  ValidationRules rules;
  rules.category_offsets.push_back(0);
  for (const FeatureSpec& feature : schema.features) {
    const bool categorical = feature.kind == FeatureKind::Categorical;
    rules.min.push_back(categorical ? -INFINITY : feature.min);
    rules.max.push_back(categorical ? INFINITY : feature.max);
    rules.categorical.push_back(categorical ? 1 : 0);
    rules.missing_allowed.push_back(feature.missing_allowed ? 1 : 0);
    if (categorical) {
      for (std::int64_t code : feature.categories) {
        rules.category_codes.push_back(static_cast<float>(code));
      }
    }
    rules.category_offsets.push_back(static_cast<std::uint32_t>(rules.category_codes.size()));
  }
  rules.check();
  return rules;
}

ValidationRules ValidationRules::permissive(std::size_t features) {
  ValidationRules rules;
  rules.min.assign(features, -INFINITY);
  rules.max.assign(features, INFINITY);
  rules.categorical.assign(features, 0);
  rules.missing_allowed.assign(features, 1);
  rules.category_offsets.assign(features + 1, 0);
  return rules;
}

void ValidationRules::check() const {
  const std::size_t n = features();
  if (max.size() != n || categorical.size() != n || missing_allowed.size() != n ||
      category_offsets.size() != n + 1 || category_offsets.front() != 0 ||
      category_offsets.back() != category_codes.size()) {
    throw InvalidInput("validation rules: per-feature arrays disagree in length");
  }
  for (std::size_t f = 0; f < n; ++f) {
    if (std::isnan(min[f]) || std::isnan(max[f]) || min[f] > max[f]) {
      throw InvalidInput("validation rules: feature " + std::to_string(f) +
                         " has an empty or NaN range");
    }
    if (category_offsets[f] > category_offsets[f + 1]) {
      throw InvalidInput("validation rules: category offsets decrease at feature " +
                         std::to_string(f));
    }
    for (std::uint32_t i = category_offsets[f]; i < category_offsets[f + 1]; ++i) {
      if (!std::isfinite(category_codes[i]) ||
          (i > category_offsets[f] && !(category_codes[i - 1] < category_codes[i]))) {
        throw InvalidInput("validation rules: category codes of feature " + std::to_string(f) +
                           " must be finite and strictly increasing");
      }
    }
  }
}

ValidationCounts& ValidationCounts::operator+=(const ValidationCounts& other) {
  if (other.features != features || other.flag_counts.size() != flag_counts.size()) {
    throw InvalidInput("validation counts: cannot add counts of " + std::to_string(other.features) +
                       " features to " + std::to_string(features));
  }
  for (std::size_t i = 0; i < flag_counts.size(); ++i) flag_counts[i] += other.flag_counts[i];
  rows += other.rows;
  rows_ok += other.rows_ok;
  return *this;
}

void HistogramSpec::add_numeric(std::span<const double> edges) {
  if (offsets.empty()) offsets.push_back(0);
  categorical.push_back(0);
  points.insert(points.end(), edges.begin(), edges.end());
  offsets.push_back(static_cast<std::uint32_t>(points.size()));
}

void HistogramSpec::add_categorical(std::span<const double> codes) {
  if (offsets.empty()) offsets.push_back(0);
  categorical.push_back(1);
  points.insert(points.end(), codes.begin(), codes.end());
  offsets.push_back(static_cast<std::uint32_t>(points.size()));
}

void HistogramSpec::check() const {
  if (offsets.size() != features() + 1 || (!offsets.empty() && offsets.back() != points.size())) {
    throw InvalidInput("histogram spec: offsets do not match the points");
  }
  for (std::size_t f = 0; f < features(); ++f) {
    const auto p = points_of(f);
    const std::size_t needed = categorical[f] ? 1 : 2;
    if (p.size() < needed) {
      throw InvalidInput("histogram spec: feature " + std::to_string(f) + " needs at least " +
                         std::to_string(needed) + (categorical[f] ? " code" : " edges"));
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!std::isfinite(p[i]) || (i > 0 && !(p[i - 1] < p[i]))) {
        throw InvalidInput("histogram spec: " + std::string(categorical[f] ? "codes" : "edges") +
                           " of feature " + std::to_string(f) +
                           " must be finite and strictly increasing");
      }
      if (categorical[f] && static_cast<double>(static_cast<float>(p[i])) != p[i]) {
        throw InvalidInput("histogram spec: code " + std::to_string(p[i]) + " of feature " +
                           std::to_string(f) + " is not exactly representable as float");
      }
    }
  }
}

HistogramCounts::HistogramCounts(const HistogramSpec& spec) {
  offsets_.reserve(spec.features() + 1);
  offsets_.push_back(0);
  for (std::size_t f = 0; f < spec.features(); ++f) {
    offsets_.push_back(offsets_.back() + spec.bins(f) + 3);
  }
  counts_.assign(offsets_.back(), 0);
}

std::uint64_t HistogramCounts::total(std::size_t feature) const {
  std::uint64_t sum = 0;
  for (std::uint64_t c : slots(feature)) sum += c;
  return sum;
}

HistogramCounts& HistogramCounts::operator+=(const HistogramCounts& other) {
  if (other.offsets_ != offsets_) {
    throw InvalidInput("histogram counts: cannot add counts with a different bin layout");
  }
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  return *this;
}

}  // namespace driftguard
