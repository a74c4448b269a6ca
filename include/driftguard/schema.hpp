#pragma once
// The data contract of a feature table, stored as JSON (format in docs/schema.md):
//   {"format": "driftguard-schema", "version": 1,
//    "features": [{"name": "AGE", "kind": "numeric", "min": 21, "max": 79,
//                  "missing_allowed": false, "bin_edges": [..optional..]},
//                 {"name": "SEX", "kind": "categorical", "categories": [1, 2],
//                  "labels": ["male", "female"]}]}
// Absent min/max mean unbounded; absent missing_allowed means true.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "driftguard/batch.hpp"

namespace driftguard {

enum class FeatureKind { Numeric, Categorical };

// Largest |code| of a category: every such integer is exact in float32.
inline constexpr std::int64_t kMaxCategoryCode = std::int64_t{1} << 24;

struct FeatureSpec {
  std::string name;
  FeatureKind kind = FeatureKind::Numeric;
  double min = -std::numeric_limits<double>::infinity();  // numeric: inclusive lower bound
  double max = std::numeric_limits<double>::infinity();   // numeric: inclusive upper bound
  std::vector<std::int64_t> categories;  // categorical: allowed codes, |code| <= 2^24, ascending
  // categorical, optional: the name of each code (the text a converter turned into it), parallel
  // to `categories`; reports show them next to the codes.
  std::vector<std::string> labels;
  bool missing_allowed = true;
  std::vector<double> bin_edges;  // optional fixed histogram edges (binning policy "fixed")
  bool operator==(const FeatureSpec&) const = default;
};

struct Schema {
  std::vector<FeatureSpec> features;

  // InvalidInput naming the offending feature and key on malformed JSON or contradictory specs.
  static Schema from_json(const std::string& text);
  static Schema load(const std::string& path);  // IoError when unreadable
  std::string to_json() const;                  // pretty-printed, round-trips through from_json
  void save(const std::string& path) const;

  std::vector<std::string> names() const;
  // InvalidInput unless `names` are exactly this schema's features in the same order; the message
  // names the first difference.
  void check_names(const std::vector<std::string>& names) const;
  bool operator==(const Schema&) const = default;
};

// Builds a schema from reference batches. A feature whose finite values are all integers with at
// most `max_categories` distinct values becomes categorical; every other feature is numeric with
// the observed [min, max] widened by `range_margin` times its width on each side (a sample's
// extremes are not the population's), except that a feature never negative keeps min >= 0.
// missing_allowed is true when the reference has a missing value.
class SchemaInferrer {
 public:
  explicit SchemaInferrer(std::vector<std::string> names, std::size_t max_categories = 20,
                          double range_margin = 0.1);
  ~SchemaInferrer();
  SchemaInferrer(SchemaInferrer&&) noexcept;
  SchemaInferrer& operator=(SchemaInferrer&&) noexcept;

  void observe(BatchView batch);  // host batches
  Schema finish() const;

 private:
  struct Column;
  std::vector<std::string> names_;
  std::size_t max_categories_;
  double range_margin_;
  std::vector<Column> columns_;
};

}  // namespace driftguard
