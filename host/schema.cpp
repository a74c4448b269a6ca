#include "driftguard/schema.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <numeric>
#include <set>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "host/atomic_file.hpp"
#include "kernels/check_batch.hpp"

namespace driftguard {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw InvalidInput("schema: " + where + ": " + what);
}

double number_or(const json& obj, const char* key, double fallback, const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_number()) bad(where, std::string("'") + key + "' must be a number");
  return obj[key].get<double>();
}

// A misspelt key ("minimum", "missing_alowed") would otherwise be ignored, and the check it was
// meant to set silently absent.
void refuse_unknown_keys(const json& object, std::initializer_list<std::string_view> known,
                         const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string names;
      for (const std::string_view k : known) names += (names.empty() ? "" : ", ") + std::string(k);
      bad(where, "unknown key '" + key + "' (known: " + names + ")");
    }
  }
}

FeatureSpec parse_feature(const json& item, std::size_t index) {
  std::string where = "features[" + std::to_string(index) + "]";
  if (!item.is_object()) bad(where, "must be an object");
  if (!item.contains("name") || !item["name"].is_string() ||
      item["name"].get<std::string>().empty()) {
    bad(where, "needs a non-empty string 'name'");
  }
  FeatureSpec spec;
  spec.name = item["name"].get<std::string>();
  where = "feature '" + spec.name + "'";
  refuse_unknown_keys(
      item, {"name", "kind", "min", "max", "missing_allowed", "categories", "labels", "bin_edges"},
      where);
  if (item.contains("kind") && !item["kind"].is_string() && !item["kind"].is_null()) {
    bad(where, "'kind' must be \"numeric\" or \"categorical\"");
  }
  const std::string kind = item.contains("kind") && item["kind"].is_string()
                               ? item["kind"].get<std::string>()
                               : std::string("numeric");
  if (kind == "numeric") {
    spec.kind = FeatureKind::Numeric;
  } else if (kind == "categorical") {
    spec.kind = FeatureKind::Categorical;
  } else {
    bad(where, "kind must be 'numeric' or 'categorical', got '" + kind + "'");
  }
  if (spec.kind == FeatureKind::Categorical) {
    // Validation checks a categorical feature's codes only: a bound or edges would be ignored.
    for (const char* key : {"min", "max", "bin_edges"}) {
      if (item.contains(key)) bad(where, std::string("only numeric features have '") + key + "'");
    }
  }
  spec.min = number_or(item, "min", spec.min, where);
  spec.max = number_or(item, "max", spec.max, where);
  if (std::isnan(spec.min) || std::isnan(spec.max) || spec.min > spec.max) {
    bad(where, "min must not exceed max");
  }
  if (item.contains("missing_allowed")) {
    if (!item["missing_allowed"].is_boolean())
      bad(where, "'missing_allowed' must be true or false");
    spec.missing_allowed = item["missing_allowed"].get<bool>();
  }
  if (item.contains("categories")) {
    if (spec.kind != FeatureKind::Categorical)
      bad(where, "only categorical features list categories");
    if (!item["categories"].is_array()) bad(where, "'categories' must be an array of integers");
    if (item["categories"].empty()) bad(where, "'categories' lists no code");
    std::vector<std::int64_t> codes;  // as listed, parallel to the labels
    std::set<std::int64_t> seen;
    for (const json& code : item["categories"]) {
      // An unsigned code above INT64_MAX would wrap to a negative one; every code beyond the
      // range is refused before it is converted.
      if (!code.is_number_integer()) bad(where, "categories must be integers");
      if (code.is_number_unsigned() &&
          code.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxCategoryCode)) {
        bad(where, "category " + code.dump() + " is beyond +-2^24");
      }
      const auto value = code.get<std::int64_t>();
      if (value > kMaxCategoryCode || value < -kMaxCategoryCode) {
        bad(where, "category " + std::to_string(value) + " is beyond +-2^24");
      }
      if (!seen.insert(value).second)
        bad(where, "category " + std::to_string(value) + " is listed twice");
      codes.push_back(value);
    }
    std::vector<std::string> labels;
    std::set<std::string> seen_labels;
    if (item.contains("labels")) {
      const json& names = item["labels"];
      if (!names.is_array() || names.size() != codes.size()) {
        bad(where, "'labels' must be an array of one string per category");
      }
      for (const json& name : names) {
        if (!name.is_string()) bad(where, "labels must be strings");
        if (!seen_labels.insert(name.get<std::string>()).second) {
          bad(where, "label " + name.dump() + " is listed twice");
        }
        labels.push_back(name.get<std::string>());
      }
    }
    // Codes ascending, each keeping its label.
    std::vector<std::size_t> order(codes.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return codes[a] < codes[b]; });
    for (std::size_t i : order) {
      spec.categories.push_back(codes[i]);
      if (!labels.empty()) spec.labels.push_back(std::move(labels[i]));
    }
  } else if (item.contains("labels")) {
    bad(where, "'labels' name the categories, and there are none");
  } else if (spec.kind == FeatureKind::Categorical) {
    // Without them every value would be an unknown category, in both windows.
    bad(where, "a categorical feature needs 'categories' (its allowed codes)");
  }
  if (item.contains("bin_edges")) {
    if (!item["bin_edges"].is_array()) bad(where, "'bin_edges' must be an array of numbers");
    for (const json& edge : item["bin_edges"]) {
      if (!edge.is_number()) bad(where, "bin_edges must be numbers");
      spec.bin_edges.push_back(edge.get<double>());
    }
    if (spec.bin_edges.size() < 2) bad(where, "bin_edges needs at least two edges");
    for (std::size_t i = 0; i < spec.bin_edges.size(); ++i) {
      if (!std::isfinite(spec.bin_edges[i]) ||
          (i > 0 && !(spec.bin_edges[i - 1] < spec.bin_edges[i]))) {
        bad(where, "bin_edges must be finite and strictly increasing");
      }
    }
  }
  return spec;
}

json number_json(double value) { return std::isinf(value) ? json(nullptr) : json(value); }

}  // namespace

Schema Schema::from_json(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers beyond double (1e400)
    throw InvalidInput(std::string("schema: not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw InvalidInput("schema: the document must be a JSON object");
  refuse_unknown_keys(doc, {"format", "version", "features"}, "the document");
  if (doc.contains("format") && doc["format"] != "driftguard-schema") {
    throw InvalidInput("schema: 'format' must be \"driftguard-schema\"");
  }
  if (doc.contains("version") && doc["version"] != 1) {
    throw InvalidInput("schema: unsupported version " + doc["version"].dump() + " (expected 1)");
  }
  if (!doc.contains("features") || !doc["features"].is_array() || doc["features"].empty()) {
    throw InvalidInput("schema: needs a non-empty 'features' array");
  }
  Schema schema;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < doc["features"].size(); ++i) {
    FeatureSpec spec = parse_feature(doc["features"][i], i);
    if (!seen.insert(spec.name).second)
      throw InvalidInput("schema: feature '" + spec.name + "' is listed twice");
    schema.features.push_back(std::move(spec));
  }
  return schema;
}

Schema Schema::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open schema file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return from_json(text.str());
  } catch (const InvalidInput& e) {
    throw InvalidInput(path + ": " + e.what());
  }
}

std::string Schema::to_json() const {
  json features_json = json::array();
  for (const FeatureSpec& f : features) {
    json item = {{"name", f.name}};
    if (f.kind == FeatureKind::Categorical) {
      item["kind"] = "categorical";
      item["categories"] = f.categories;
      if (!f.labels.empty()) item["labels"] = f.labels;
    } else {
      item["kind"] = "numeric";
      item["min"] = number_json(f.min);
      item["max"] = number_json(f.max);
    }
    item["missing_allowed"] = f.missing_allowed;
    if (!f.bin_edges.empty()) item["bin_edges"] = f.bin_edges;
    features_json.push_back(std::move(item));
  }
  const json doc = {{"format", "driftguard-schema"}, {"version", 1}, {"features", features_json}};
  return doc.dump(2) + "\n";
}

void Schema::save(const std::string& path) const {
  // The text first, then the file whole (host/atomic_file.hpp): a schema that cannot be written
  // (a category label that is not UTF-8) leaves no empty file behind.
  std::string text;
  try {
    text = to_json();
  } catch (const json::exception& e) {
    throw InvalidInput(path + ": the schema cannot be written as JSON (" + e.what() + ")");
  }
  detail::write_file_atomically(path, text);
}

std::vector<std::string> Schema::names() const {
  std::vector<std::string> result;
  result.reserve(features.size());
  for (const FeatureSpec& f : features) result.push_back(f.name);
  return result;
}

void Schema::check_names(const std::vector<std::string>& names) const {
  const std::size_t common = std::min(names.size(), features.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (names[i] != features[i].name) {
      throw InvalidInput("schema mismatch: column " + std::to_string(i) + " is '" + names[i] +
                         "' in the data but '" + features[i].name + "' in the schema");
    }
  }
  if (names.size() != features.size()) {
    throw InvalidInput("schema mismatch: the data has " + std::to_string(names.size()) +
                       " features, the schema " + std::to_string(features.size()));
  }
}

struct SchemaInferrer::Column {
  double min = INFINITY, max = -INFINITY;
  bool missing = false;
  bool integral = true;
  std::set<std::int64_t> codes;  // kept while at most max_categories + 1
};

SchemaInferrer::SchemaInferrer(std::vector<std::string> names, std::size_t max_categories,
                               double range_margin)
    : names_(std::move(names)),
      max_categories_(max_categories),
      range_margin_(range_margin),
      columns_(names_.size()) {
  if (!(range_margin >= 0)) throw InvalidInput("schema inference: range margin must be >= 0");
}
SchemaInferrer::~SchemaInferrer() = default;
SchemaInferrer::SchemaInferrer(SchemaInferrer&&) noexcept = default;
SchemaInferrer& SchemaInferrer::operator=(SchemaInferrer&&) noexcept = default;

void SchemaInferrer::observe(BatchView batch) {
  detail::check_batch(batch, columns_.size(), "schema inference");
  if (batch.space != MemorySpace::Host) throw InvalidInput("schema inference needs host batches");
#pragma omp parallel for schedule(dynamic, 1)
  for (std::size_t f = 0; f < batch.features; ++f) {
    Column& c = columns_[f];
    for (std::size_t r = 0; r < batch.rows; ++r) {
      const float x = batch.data[r * batch.features + f];
      if (std::isnan(x)) {
        c.missing = true;
        continue;
      }
      // +-Inf is flagged non_finite whatever the schema says: it neither widens the range nor
      // makes a code column numeric (docs/schema.md: the column's finite values decide).
      if (!std::isfinite(x)) continue;
      c.min = std::min(c.min, static_cast<double>(x));
      c.max = std::max(c.max, static_cast<double>(x));
      if (!c.integral) continue;
      if (x != std::nearbyint(x) || std::fabs(x) > kMaxCategoryCode) {
        c.integral = false;
        c.codes.clear();
      } else if (c.codes.size() <= max_categories_) {
        c.codes.insert(static_cast<std::int64_t>(x));
      }
    }
  }
}

Schema SchemaInferrer::finish() const {
  Schema schema;
  for (std::size_t f = 0; f < columns_.size(); ++f) {
    const Column& c = columns_[f];
    FeatureSpec spec;
    spec.name = names_[f];
    spec.missing_allowed = c.missing;
    if (c.integral && !c.codes.empty() && c.codes.size() <= max_categories_) {
      spec.kind = FeatureKind::Categorical;
      spec.categories.assign(c.codes.begin(), c.codes.end());
    } else if (std::isfinite(c.min) && std::isfinite(c.max)) {
      const double margin = range_margin_ * (c.max - c.min);
      spec.min = c.min >= 0 ? std::max(0.0, c.min - margin) : c.min - margin;
      spec.max = c.max + margin;
    }
    schema.features.push_back(std::move(spec));
  }
  return schema;
}

}  // namespace driftguard
