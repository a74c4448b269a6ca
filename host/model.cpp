// Model files: XGBoost JSON or UBJSON (Booster.save_model), LightGBM text (Booster.save_model) and
// driftguard's linear JSON, parsed into
// detail::ModelData with every index, size and value checked before it is used.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "driftguard/model.hpp"
#include "host/fnv1a.hpp"
#include "kernels/score_model.hpp"

namespace driftguard {
namespace {

using detail::Link;
using detail::ModelData;
using detail::TreeNode;
using nlohmann::json;

// Larger declarations are refused before anything is allocated for them.
constexpr std::int64_t kMaxNodesPerTree = std::int64_t{1} << 26;
constexpr std::size_t kMaxTotalNodes = std::size_t{1} << 28;
constexpr std::size_t kMaxCategoryWords = std::size_t{1} << 24;
// Classes or targets: every output costs a float per scored row and a histogram in a scan.
constexpr std::int64_t kMaxOutputs = std::int64_t{1} << 16;

// Error reporting with the file name and the place in the model.
class Checker {
 public:
  explicit Checker(std::string name) : name_(std::move(name)) {}

  // Messages quote the model's own text (objectives, parameters, lines), which may be megabytes
  // long in a damaged file: cut to a readable line.
  [[noreturn]] void fail(const std::string& what) const {
    constexpr std::size_t kMaxWhat = 480;
    if (what.size() <= kMaxWhat) throw ModelError(name_ + ": " + what);
    std::size_t cut = kMaxWhat;  // not inside a UTF-8 sequence
    while (cut > 0 && (static_cast<unsigned char>(what[cut]) & 0xC0) == 0x80) --cut;
    throw ModelError(name_ + ": " + what.substr(0, cut) + "... (cut)");
  }

  const json& member(const json& object, const char* key, const std::string& where) const {
    if (!object.is_object()) fail(where + " is not a JSON object");
    const auto it = object.find(key);
    if (it == object.end()) fail(where + " has no \"" + key + "\"");
    return *it;
  }
  const json* optional(const json& object, const char* key) const {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json& array(const json& object, const char* key, const std::string& where) const {
    const json& value = member(object, key, where);
    if (!value.is_array()) fail(where + "." + key + " is not an array");
    return value;
  }
  // An array of exactly `count` entries.
  const json& array(const json& object, const char* key, std::size_t count,
                    const std::string& where) const {
    const json& value = array(object, key, where);
    if (value.size() != count) {
      fail(where + "." + key + " has " + std::to_string(value.size()) + " entries, expected " +
           std::to_string(count));
    }
    return value;
  }
  std::string string(const json& value, const std::string& where) const {
    if (!value.is_string()) fail(where + " is not a string");
    return value.get<std::string>();
  }
  std::int64_t integer(const json& value, const std::string& where) const {
    if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<std::int64_t>();
    if (value.is_number_unsigned()) {
      const auto u = value.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(where + " is out of range");
      }
      return static_cast<std::int64_t>(u);
    }
    fail(where + " is not an integer");
  }
  // default_left: 0 / 1, or a JSON boolean.
  bool flag(const json& value, const std::string& where) const {
    if (value.is_boolean()) return value.get<bool>();
    const std::int64_t v = integer(value, where);
    if (v != 0 && v != 1) fail(where + " is neither 0 nor 1");
    return v == 1;
  }
  double number(const json& value, const std::string& where) const {
    if (!value.is_number()) fail(where + " is not a number");
    return value.get<double>();
  }
  double finite(const json& value, const std::string& where) const {
    const double v = number(value, where);
    if (!std::isfinite(v)) fail(where + " is not finite");
    return v;
  }
  // XGBoost stores its parameters as strings ("3"); plain numbers are accepted too.
  std::int64_t int_param(const json& object, const char* key, const std::string& where) const {
    const json& value = member(object, key, where);
    const std::string at = where + "." + key;
    if (!value.is_string()) return integer(value, at);
    const std::string text = value.get<std::string>();
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE) {
      fail(at + " = \"" + text + "\" is not an integer");
    }
    return v;
  }
  // A number as float32; values beyond float's range are refused (converting them is undefined).
  float to_float(const json& value, const std::string& where) const {
    const double v = number(value, where);
    if (!(std::abs(v) <= std::numeric_limits<float>::max())) {
      fail(where + " is not finite in float32");
    }
    return static_cast<float>(v);
  }
  std::vector<double> finite_array(const json& object, const char* key, std::size_t count,
                                   const std::string& where) const {
    const json& values = array(object, key, count, where);
    std::vector<double> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      out.push_back(finite(values[i], where + "." + key + "[" + std::to_string(i) + "]"));
    }
    return out;
  }
  std::vector<std::string> names(const json& values, const std::string& where) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < values.size(); ++i) {
      out.push_back(string(values[i], where + "[" + std::to_string(i) + "]"));
      if (out.back().empty()) fail(where + "[" + std::to_string(i) + "] is empty");
    }
    std::vector<std::string> sorted = out;
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) fail(where + " names \"" + *dup + "\" twice");
    return out;
  }

 private:
  std::string name_;
};

// A categorical split's set, bit c of `bits` set for category c (bits above 2^24 refused by the
// callers), appended to the ensemble; returns its index. Trailing zero words are dropped.
std::uint32_t append_category_split(const Checker& check, detail::TreeEnsemble& out,
                                    std::span<const std::uint32_t> bits, float lowest) {
  std::size_t words = bits.size();
  while (words > 0 && bits[words - 1] == 0) --words;
  if (out.category_bits.size() + words > kMaxCategoryWords) {
    check.fail("categorical splits need too much memory (categories too large)");
  }
  const auto offset = static_cast<std::uint32_t>(out.category_bits.size());
  out.category_bits.insert(out.category_bits.end(), bits.begin(), bits.begin() + words);
  out.category_splits.push_back({offset, static_cast<std::uint32_t>(words), lowest});
  return static_cast<std::uint32_t>(out.category_splits.size() - 1);
}

// ---- XGBoost ----

// How base_score becomes a base margin: it is one already, or a probability (margin =
// logit(base_score)), or a positive mean (margin = log(base_score)).
enum class BaseScore { Margin, Probability, PositiveMean };

struct Objective {
  const char* name;
  Link link;
  BaseScore base;
  bool multi_class;
};

constexpr Objective kObjectives[] = {
    {"binary:logistic", Link::Logistic, BaseScore::Probability, false},
    {"reg:logistic", Link::Logistic, BaseScore::Probability, false},
    {"binary:logitraw", Link::Identity, BaseScore::Margin, false},
    {"reg:squarederror", Link::Identity, BaseScore::Margin, false},
    {"multi:softprob", Link::Softmax, BaseScore::Margin, true},
    {"multi:softmax", Link::Softmax, BaseScore::Margin, true},
    {"count:poisson", Link::Exp, BaseScore::PositiveMean, false},
    {"reg:gamma", Link::Exp, BaseScore::PositiveMean, false},
    {"reg:tweedie", Link::Exp, BaseScore::PositiveMean, false},
    {"survival:cox", Link::Exp, BaseScore::PositiveMean, false},
    {"survival:aft", Link::Exp, BaseScore::PositiveMean, false},
    {"reg:squaredlogerror", Link::Identity, BaseScore::Margin, false},
    {"reg:pseudohubererror", Link::Identity, BaseScore::Margin, false},
    {"reg:absoluteerror", Link::Identity, BaseScore::Margin, false},
    {"reg:quantileerror", Link::Identity, BaseScore::Margin, false},
    {"rank:pairwise", Link::Identity, BaseScore::Margin, false},
    {"rank:ndcg", Link::Identity, BaseScore::Margin, false},
    {"rank:map", Link::Identity, BaseScore::Margin, false},
    {"binary:hinge", Link::Hinge, BaseScore::Margin, false},
};

const Objective& find_objective(const Checker& check, const std::string& name) {
  for (const Objective& o : kObjectives) {
    if (name == o.name) return o;
  }
  std::string known;
  for (const Objective& o : kObjectives) known += std::string(known.empty() ? "" : ", ") + o.name;
  check.fail("objective \"" + name + "\" is not supported (supported: " + known + ")");
}

// "0.5", "5E-1" or the array form "[5E-1]" / "[a,b,c]" of XGBoost >= 3.1.
std::vector<double> parse_base_score(const Checker& check, const std::string& text) {
  const std::string where = "learner_model_param.base_score = \"" + text + "\"";
  std::vector<double> values;
  if (!text.empty() && text.front() == '[') {
    const json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_array() || parsed.empty()) check.fail(where + " is not a list of numbers");
    for (const json& v : parsed) {
      if (!v.is_number()) check.fail(where + " is not a list of numbers");
      values.push_back(v.get<double>());
    }
  } else {
    // from_chars reads decimal forms only: strtod would also take "0x1p-2", which XGBoost reads
    // as another number.
    double v = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
      check.fail(where + " is not a number");
    }
    values.push_back(v);
  }
  for (double v : values) {
    if (!std::isfinite(v)) check.fail(where + " is not finite");
  }
  return values;
}

std::vector<float> base_margin(const Checker& check, const Objective& objective,
                               const std::string& text, std::size_t outputs) {
  const std::vector<double> values = parse_base_score(check, text);
  if (values.size() != 1 && values.size() != outputs) {
    check.fail("learner_model_param.base_score has " + std::to_string(values.size()) +
               " values for " + std::to_string(outputs) + " outputs");
  }
  std::vector<float> margins;
  for (std::size_t k = 0; k < outputs; ++k) {
    const double v = values[values.size() == 1 ? 0 : k];
    if (!(std::abs(v) <= std::numeric_limits<float>::max())) {
      check.fail("learner_model_param.base_score is not finite in float32");
    }
    const auto p = static_cast<float>(v);
    if (objective.base == BaseScore::Margin) {
      margins.push_back(p);
    } else if (objective.base == BaseScore::Probability) {
      if (!(p > 0.0f && p < 1.0f)) {
        check.fail("base_score " + std::to_string(p) + " of objective " + objective.name +
                   " is not a probability in (0, 1)");
      }
      // XGBoost's LogisticRegression::ProbToMargin, in float.
      margins.push_back(-std::log(1.0f / p - 1.0f));
    } else {
      if (!(p > 0.0f)) {
        check.fail("base_score " + std::to_string(p) + " of objective " + objective.name +
                   " is not positive");
      }
      // XGBoost's ProbToMargin of the Poisson, gamma, Tweedie, Cox and AFT objectives, in float.
      margins.push_back(std::log(p));
    }
  }
  return margins;
}

// One tree in XGBoost's arrays, re-laid out breadth-first from the root into `out`.
struct TreeParser {
  const Checker& check;
  std::size_t num_feature;
  detail::TreeEnsemble& out;

  void parse(const json& tree, std::size_t index, float weight) {
    const std::string where = "tree " + std::to_string(index);
    const json& param = check.member(tree, "tree_param", where);
    const std::int64_t n = check.int_param(param, "num_nodes", where + ".tree_param");
    if (n < 1 || n > kMaxNodesPerTree) {
      check.fail(where + ": num_nodes = " + std::to_string(n) + " is out of range [1, " +
                 std::to_string(kMaxNodesPerTree) + "]");
    }
    if (check.optional(param, "size_leaf_vector") != nullptr &&
        check.int_param(param, "size_leaf_vector", where + ".tree_param") > 1) {
      check.fail(where +
                 ": multi-output trees (size_leaf_vector > 1, multi_strategy = "
                 "multi_output_tree) are not supported");
    }
    const auto count = static_cast<std::size_t>(n);
    if (out.nodes.size() + count > kMaxTotalNodes) check.fail("the model has too many nodes");
    const json& left = check.array(tree, "left_children", count, where);
    const json& right = check.array(tree, "right_children", count, where);
    const json& feature = check.array(tree, "split_indices", count, where);
    const json& value = check.array(tree, "split_conditions", count, where);
    const json& default_left = check.array(tree, "default_left", count, where);
    const json* split_type = check.optional(tree, "split_type");
    if (split_type != nullptr) split_type = &check.array(tree, "split_type", count, where);
    const std::unordered_map<std::int64_t, std::vector<std::uint32_t>> categories =
        parse_categories(tree, where, count);

    const std::size_t base = out.nodes.size();
    std::vector<std::uint8_t> seen(count, 0);
    std::vector<std::uint32_t> order{0};  // original ids, breadth-first
    std::vector<std::uint32_t> depth{0};
    seen[0] = 1;
    std::uint32_t max_depth = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::uint32_t id = order[i];
      const std::string at = where + " node " + std::to_string(id);
      const std::int64_t l = check.integer(left[id], at + " left child");
      const std::int64_t r = check.integer(right[id], at + " right child");
      max_depth = std::max(max_depth, depth[i]);
      TreeNode node{};
      if (l == -1 && r == -1) {
        const float leaf = check.to_float(value[id], at + ": leaf value") * weight;
        if (!std::isfinite(leaf)) check.fail(at + ": leaf value is not finite in float32");
        // A leaf is its own left child, so kernels that walk a fixed number of levels may step
        // past it without branching.
        node = {leaf, detail::kLeafBit, static_cast<std::uint32_t>(i), 0};
        out.nodes.push_back(node);
        continue;
      }
      for (const std::int64_t child : {l, r}) {
        if (child < 0 || child >= n) {
          check.fail(at + ": child index " + std::to_string(child) + " is out of range [0, " +
                     std::to_string(n) + ")");
        }
        if (seen[child]) {
          check.fail(at + ": node " + std::to_string(child) +
                     " is reached twice (a cycle or a shared child)");
        }
        seen[child] = 1;
        order.push_back(static_cast<std::uint32_t>(child));
        depth.push_back(depth[i] + 1);
      }
      const std::int64_t f = check.integer(feature[id], at + " split index");
      if (f < 0 || static_cast<std::size_t>(f) >= num_feature) {
        check.fail(at + ": split feature " + std::to_string(f) + " is out of range [0, " +
                   std::to_string(num_feature) + ")");
      }
      const bool dl = check.flag(default_left[id], at + ": default_left");
      const std::int64_t type =
          split_type == nullptr ? 0 : check.integer((*split_type)[id], at + " split type");
      node.feature = static_cast<std::uint32_t>(f) | (dl ? detail::kDefaultLeftBit : 0u);
      node.left = static_cast<std::uint32_t>(order.size() - 2);
      if (type == 0) {
        node.value = check.to_float(value[id], at + ": threshold");
      } else if (type == 1) {
        const auto it = categories.find(id);
        if (it == categories.end()) {
          check.fail(at + ": categorical split without an entry in categories_nodes");
        }
        node.feature |= detail::kCategoricalBit;
        node.category = add_category_split(it->second);
      } else {
        check.fail(at + ": split type " + std::to_string(type) + " is neither 0 nor 1");
      }
      out.nodes.push_back(node);
    }
    out.tree_offset.push_back(static_cast<std::uint32_t>(base + order.size()));
    out.tree_depth.push_back(max_depth);
  }

  // categories_nodes[i] lists categories[segments[i], segments[i] + sizes[i]).
  std::unordered_map<std::int64_t, std::vector<std::uint32_t>> parse_categories(
      const json& tree, const std::string& where, std::size_t count) const {
    std::unordered_map<std::int64_t, std::vector<std::uint32_t>> map;
    if (check.optional(tree, "categories_nodes") == nullptr) return map;
    const json& nodes = check.array(tree, "categories_nodes", where);
    const json& segments = check.array(tree, "categories_segments", nodes.size(), where);
    const json& sizes = check.array(tree, "categories_sizes", nodes.size(), where);
    const json& values = check.array(tree, "categories", where);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const std::string at = where + " categories entry " + std::to_string(i);
      const std::int64_t node = check.integer(nodes[i], at + " node");
      const std::int64_t begin = check.integer(segments[i], at + " segment");
      const std::int64_t size = check.integer(sizes[i], at + " size");
      if (node < 0 || static_cast<std::size_t>(node) >= count) {
        check.fail(at + ": node " + std::to_string(node) + " is out of range");
      }
      if (begin < 0 || size < 0 || static_cast<std::size_t>(begin) > values.size() ||
          static_cast<std::size_t>(size) > values.size() - static_cast<std::size_t>(begin)) {
        check.fail(at + ": segment [" + std::to_string(begin) + ", +" + std::to_string(size) +
                   ") is outside categories (" + std::to_string(values.size()) + " entries)");
      }
      std::vector<std::uint32_t> cats;
      for (std::int64_t k = begin; k < begin + size; ++k) {
        const std::int64_t c = check.integer(values[k], at + " category");
        if (c < 0 || c >= static_cast<std::int64_t>(detail::kMaxCategory)) {
          check.fail(at + ": category " + std::to_string(c) + " is outside [0, 2^24)");
        }
        cats.push_back(static_cast<std::uint32_t>(c));
      }
      if (!map.emplace(node, std::move(cats)).second) {
        check.fail(at + ": node " + std::to_string(node) + " is listed twice");
      }
    }
    return map;
  }

  std::uint32_t add_category_split(const std::vector<std::uint32_t>& cats) {
    const std::uint32_t max = cats.empty() ? 0 : *std::max_element(cats.begin(), cats.end());
    std::vector<std::uint32_t> bits(cats.empty() ? 0 : max / 32 + 1, 0u);
    for (std::uint32_t c : cats) bits[c / 32] |= 1u << (c % 32);
    return append_category_split(check, out, bits, detail::kXGBoostLowestCategory);
  }
};

ModelData parse_xgboost(const Checker& check, const json& root, const ModelOptions& options) {
  ModelData model;
  model.kind = ModelKind::TreeEnsemble;
  const json& learner = check.member(root, "learner", "the model");
  model.objective = check.string(
      check.member(check.member(learner, "objective", "learner"), "name", "learner.objective"),
      "learner.objective.name");
  const Objective& objective = find_objective(check, model.objective);
  model.link = objective.link;

  const json& param = check.member(learner, "learner_model_param", "learner");
  const std::string pw = "learner.learner_model_param";
  const std::int64_t num_feature = check.int_param(param, "num_feature", pw);
  // No batch is wider than kMaxBatchFeatures (and a model without names gets one per feature).
  if (num_feature < 1 || num_feature > static_cast<std::int64_t>(detail::kMaxBatchFeatures)) {
    check.fail("num_feature = " + std::to_string(num_feature) + " is out of range [1, " +
               std::to_string(detail::kMaxBatchFeatures) + "]");
  }
  const std::int64_t num_class = check.int_param(param, "num_class", pw);
  // Several targets (reg:quantileerror with several alphas, multi-label or multi-output
  // regression) are one output each, their trees told apart by tree_info, as classes are.
  const std::int64_t num_target =
      check.optional(param, "num_target") != nullptr ? check.int_param(param, "num_target", pw) : 1;
  if (num_target < 1 || num_target > kMaxOutputs) {
    check.fail("num_target = " + std::to_string(num_target) + " is out of range [1, " +
               std::to_string(kMaxOutputs) + "]");
  }
  if (objective.multi_class) {
    if (num_class < 2 || num_class > kMaxOutputs) {
      check.fail(model.objective + " needs num_class in [2, " + std::to_string(kMaxOutputs) +
                 "], the model has " + std::to_string(num_class));
    }
    if (num_target > 1) {
      check.fail(model.objective + " with num_target = " + std::to_string(num_target) +
                 " (several targets of several classes) is not supported");
    }
    model.outputs = static_cast<std::size_t>(num_class);
  } else if (num_class > 1) {
    check.fail("num_class = " + std::to_string(num_class) + " does not fit objective " +
               model.objective);
  } else {
    model.outputs = static_cast<std::size_t>(num_target);
  }
  model.trees.base_margin = base_margin(
      check, objective, check.string(check.member(param, "base_score", pw), pw + ".base_score"),
      model.outputs);

  if (const json* names = check.optional(learner, "feature_names");
      names != nullptr && !names->empty()) {
    if (!names->is_array()) check.fail("learner.feature_names is not an array");
    model.feature_names = check.names(*names, "learner.feature_names");
    if (model.feature_names.size() != static_cast<std::size_t>(num_feature)) {
      check.fail("learner.feature_names has " + std::to_string(model.feature_names.size()) +
                 " names, num_feature is " + std::to_string(num_feature));
    }
  } else {
    for (std::int64_t f = 0; f < num_feature; ++f) {
      model.feature_names.push_back(std::string("f").append(std::to_string(f)));
    }
  }

  const json& booster = check.member(learner, "gradient_booster", "learner");
  const std::string booster_name =
      check.string(check.member(booster, "name", "gradient_booster"), "gradient_booster.name");
  const json* gbtree = &booster;
  if (booster_name == "dart") {
    gbtree = &check.member(booster, "gbtree", "gradient_booster");
  } else if (booster_name != "gbtree") {
    check.fail("booster \"" + booster_name + "\" is not supported (gbtree and dart are)");
  }
  const json& trees_model = check.member(*gbtree, "model", "gradient_booster");
  const std::string mw = "gradient_booster.model";
  const json& tree_param = check.member(trees_model, "gbtree_model_param", mw);
  const std::int64_t num_trees =
      check.int_param(tree_param, "num_trees", mw + ".gbtree_model_param");
  if (num_trees < 0 || num_trees > static_cast<std::int64_t>(kMaxTotalNodes)) {
    check.fail("num_trees = " + std::to_string(num_trees) + " is out of range");
  }
  const auto n_trees = static_cast<std::size_t>(num_trees);
  std::int64_t parallel = 1;
  if (check.optional(tree_param, "num_parallel_tree") != nullptr) {
    parallel = check.int_param(tree_param, "num_parallel_tree", mw + ".gbtree_model_param");
  }
  if (parallel < 1 || parallel > num_trees + 1) {
    check.fail("num_parallel_tree = " + std::to_string(parallel) + " is out of range");
  }
  const json& trees = check.array(trees_model, "trees", n_trees, mw);
  const json& tree_info = check.array(trees_model, "tree_info", n_trees, mw);
  std::vector<float> weights(n_trees, 1.0f);
  if (booster_name == "dart") {
    const json& w = check.array(booster, "weight_drop", n_trees, "gradient_booster");
    for (std::size_t t = 0; t < n_trees; ++t) {
      weights[t] = check.to_float(w[t], "gradient_booster.weight_drop[" + std::to_string(t) + "]");
    }
  }

  // Rounds: iteration_indptr when present, else fixed-size layers.
  std::vector<std::size_t> indptr;
  if (const json* ptr = check.optional(trees_model, "iteration_indptr"); ptr != nullptr) {
    if (!ptr->is_array() || ptr->empty()) check.fail(mw + ".iteration_indptr is not a list");
    for (std::size_t i = 0; i < ptr->size(); ++i) {
      const std::int64_t v = check.integer((*ptr)[i], mw + ".iteration_indptr entry");
      if (v < 0 || v > num_trees || (i == 0 && v != 0) ||
          (i > 0 && static_cast<std::size_t>(v) < indptr.back())) {
        check.fail(mw + ".iteration_indptr is not an increasing list from 0 to num_trees");
      }
      indptr.push_back(static_cast<std::size_t>(v));
    }
    if (indptr.back() != n_trees) check.fail(mw + ".iteration_indptr does not end at num_trees");
  } else {
    const std::size_t layer = static_cast<std::size_t>(parallel) * model.outputs;
    for (std::size_t t = 0; t <= n_trees; t += layer) indptr.push_back(t);
    if (indptr.back() != n_trees) indptr.push_back(n_trees);
  }
  const std::size_t rounds = indptr.size() - 1;
  std::size_t begin = options.iteration_begin;
  std::size_t end = options.iteration_end == 0 ? rounds : options.iteration_end;
  if (options.use_best_iteration) {
    const json* attributes = check.optional(learner, "attributes");
    if (attributes != nullptr && check.optional(*attributes, "best_iteration") != nullptr) {
      const std::int64_t best = check.int_param(*attributes, "best_iteration", "attributes");
      if (best < 0 || static_cast<std::size_t>(best) >= rounds) {
        check.fail("best_iteration = " + std::to_string(best) + " is beyond the model's " +
                   std::to_string(rounds) + " rounds");
      }
      begin = 0;
      end = static_cast<std::size_t>(best) + 1;
    }
  }
  if (begin > end || end > rounds) {
    check.fail("iteration range [" + std::to_string(begin) + ", " + std::to_string(end) +
               ") is outside the model's " + std::to_string(rounds) + " rounds");
  }

  // Every tree is checked, including those outside the range; only those inside are kept.
  detail::TreeEnsemble& ensemble = model.trees;
  ensemble.tree_offset.push_back(0);
  TreeParser parser{check, static_cast<std::size_t>(num_feature), ensemble};
  for (std::size_t t = 0; t < n_trees; ++t) {
    const std::int64_t group = check.integer(tree_info[t], mw + ".tree_info entry");
    if (group < 0 || static_cast<std::size_t>(group) >= model.outputs) {
      check.fail("tree_info[" + std::to_string(t) + "] = " + std::to_string(group) +
                 " is not a class of this " + std::to_string(model.outputs) + "-output model");
    }
    const std::size_t nodes_before = ensemble.nodes.size();
    parser.parse(trees[t], t, weights[t]);
    if (t < indptr[begin] || t >= indptr[end]) {
      ensemble.nodes.resize(nodes_before);
      ensemble.tree_offset.pop_back();
      ensemble.tree_depth.pop_back();
      continue;
    }
    ensemble.tree_group.push_back(static_cast<std::uint32_t>(group));
  }
  return model;
}

// ---- LightGBM (Booster.save_model text) ----

// key=value lines of the header or of one "Tree=i" block, in file order.
struct TextBlock {
  std::string where;
  std::vector<std::pair<std::string_view, std::string_view>> entries;

  const std::string_view* find(std::string_view key) const {
    for (const auto& [k, v] : entries) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

struct LightGBMText {
  TextBlock header;
  std::vector<std::string_view> flags;  // header lines without '=' ("tree", "average_output")
  std::vector<TextBlock> trees;
  std::vector<std::size_t> tree_offsets;  // byte offset of each "Tree=i" line in the file
};

LightGBMText split_lightgbm_text(const Checker& check, std::string_view text) {
  // Checked first, so that a file cut short is named as such rather than by its broken last line.
  if (text.find("\nend of trees") == std::string_view::npos) {
    check.fail("no \"end of trees\" line (the model text is truncated)");
  }
  LightGBMText out;
  const char* const file_begin = text.data();
  out.header.where = "the header";
  TextBlock* block = &out.header;
  std::size_t line_number = 0;
  bool ended = false;
  while (!text.empty() && !ended) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line == "end of trees") {
      ended = true;
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      if (block != &out.header) {
        check.fail("line " + std::to_string(line_number) + " in " + block->where +
                   " is not key=value");
      }
      out.flags.push_back(line);
      continue;
    }
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "Tree") {
      const std::string expected = std::to_string(out.trees.size());
      if (value != expected) {
        check.fail("line " + std::to_string(line_number) + ": \"Tree=" + std::string(value) +
                   "\" where Tree=" + expected + " was expected");
      }
      out.trees.push_back({"tree " + expected, {}});
      out.tree_offsets.push_back(static_cast<std::size_t>(line.data() - file_begin));
      block = &out.trees.back();
      continue;
    }
    block->entries.emplace_back(key, value);
  }
  if (!ended) check.fail("no \"end of trees\" line (the model text is truncated)");
  return out;
}

std::string_view text_value(const Checker& check, const TextBlock& block, std::string_view key) {
  const std::string_view* value = block.find(key);
  if (value == nullptr) check.fail(block.where + " has no \"" + std::string(key) + "\"");
  return *value;
}

template <typename T>
T parse_text_number(const Checker& check, std::string_view token, const std::string& where) {
  T value{};
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc{} || end != token.data() + token.size()) {
    check.fail(where + " = \"" + std::string(token.substr(0, 40)) + "\" is not " +
               (std::is_integral_v<T> ? "an integer" : "a number"));
  }
  return value;
}

std::int64_t text_int(const Checker& check, const TextBlock& block, std::string_view key) {
  return parse_text_number<std::int64_t>(check, text_value(check, block, key),
                                         block.where + " " + std::string(key));
}

// The space-separated words of a value.
std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return words;
}

// A space-separated array of exactly `count` numbers (checked before they are parsed: a declared
// size never allocates more than the text holds).
template <typename T>
std::vector<T> text_array(const Checker& check, const TextBlock& block, std::string_view key,
                          std::size_t count) {
  const std::vector<std::string_view> words = split_words(text_value(check, block, key));
  const std::string where = block.where + " " + std::string(key);
  if (words.size() != count) {
    check.fail(where + " has " + std::to_string(words.size()) + " entries, expected " +
               std::to_string(count));
  }
  std::vector<T> out;
  out.reserve(count);
  for (const std::string_view word : words) {
    out.push_back(
        parse_text_number<T>(check, word, where + "[" + std::to_string(out.size()) + "]"));
  }
  return out;
}

// The smallest float greater than v (v < +inf).
float smallest_float_above(double v) {
  if (v >= static_cast<double>(std::numeric_limits<float>::max())) return INFINITY;
  if (v < -static_cast<double>(std::numeric_limits<float>::max())) {
    return -std::numeric_limits<float>::max();
  }
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) > v ? f : std::nextafter(f, INFINITY);
}

// LightGBM sends x left when x' <= t in double, x' = 0 for |x| <= kZeroBand. That map is monotone,
// so over floats the left side is x < T for the smallest float T that goes right.
float lightgbm_threshold(double t) {
  const float above = smallest_float_above(t);
  if (!(std::abs(above) <= detail::kZeroBand)) return above;
  // `above` reads as 0, and so does the whole band [-detail::kZeroBand, detail::kZeroBand]: it goes
  // right when 0 > t, left when 0 <= t.
  return t < 0.0 ? -detail::kZeroBand : std::nextafter(detail::kZeroBand, INFINITY);
}

struct LightGBMObjective {
  std::string name;
  Link link = Link::Identity;
  std::size_t outputs = 1;
};

LightGBMObjective lightgbm_objective(const Checker& check, std::string_view text,
                                     std::int64_t num_class, std::int64_t trees_per_iteration) {
  const std::vector<std::string_view> tokens = split_words(text);
  if (tokens.empty()) check.fail("the objective is empty");
  LightGBMObjective objective{std::string(tokens[0])};
  const std::string& name = objective.name;
  const auto param = [&](std::string_view key) -> std::optional<std::string_view> {
    for (std::size_t i = 1; i < tokens.size(); ++i) {
      if (tokens[i].starts_with(key) && tokens[i].size() > key.size() &&
          tokens[i][key.size()] == ':') {
        return tokens[i].substr(key.size() + 1);
      }
    }
    return std::nullopt;
  };
  const auto require_unit_sigmoid = [&] {
    if (const auto sigmoid = param("sigmoid");
        sigmoid && parse_text_number<double>(check, *sigmoid, "objective sigmoid") != 1.0) {
      check.fail("objective \"" + std::string(text) + "\": sigmoid other than 1 is not supported");
    }
  };
  constexpr const char* kIdentity[] = {"regression", "regression_l1", "huber",      "fair",
                                       "quantile",   "mape",          "lambdarank", "rank_xendcg"};
  constexpr const char* kExp[] = {"poisson", "gamma", "tweedie"};
  if (name == "binary" || name == "cross_entropy") {
    objective.link = Link::Logistic;
    require_unit_sigmoid();
  } else if (name == "multiclass" || name == "multiclassova") {
    objective.link = name == "multiclass" ? Link::Softmax : Link::Logistic;
    if (name == "multiclassova") require_unit_sigmoid();
    if (num_class < 2 || num_class > kMaxOutputs) {
      check.fail(name + " needs num_class in [2, " + std::to_string(kMaxOutputs) +
                 "], the model has " + std::to_string(num_class));
    }
    objective.outputs = static_cast<std::size_t>(num_class);
  } else if (std::find(std::begin(kExp), std::end(kExp), name) != std::end(kExp)) {
    objective.link = Link::Exp;
  } else if (std::find(std::begin(kIdentity), std::end(kIdentity), name) != std::end(kIdentity)) {
    for (std::size_t i = 1; i < tokens.size(); ++i) {
      if (tokens[i] == "sqrt") {
        check.fail("objective \"" + std::string(text) + "\" (reg_sqrt) is not supported");
      }
    }
  } else {
    check.fail("objective \"" + name +
               "\" is not supported (supported: binary, cross_entropy, multiclass, "
               "multiclassova, regression, regression_l1, huber, fair, quantile, mape, "
               "lambdarank, rank_xendcg, poisson, gamma, tweedie)");
  }
  if (objective.outputs == 1 && num_class != 1) {
    check.fail("num_class = " + std::to_string(num_class) + " does not fit objective " + name);
  }
  if (trees_per_iteration != static_cast<std::int64_t>(objective.outputs)) {
    check.fail("num_tree_per_iteration = " + std::to_string(trees_per_iteration) +
               " does not fit objective " + name + " with " + std::to_string(objective.outputs) +
               " outputs");
  }
  return objective;
}

// One LightGBM tree, re-laid out breadth-first from the root into `out`. LightGBM's node ids are
// 0.. for splits and ~leaf for leaves.
void add_lightgbm_tree(const Checker& check, const TextBlock& tree, std::size_t num_features,
                       detail::TreeEnsemble& out) {
  const std::string& where = tree.where;
  if (const std::string_view* linear = tree.find("is_linear");
      linear != nullptr && *linear != "0") {
    check.fail(where + ": linear trees (linear_tree) are not supported");
  }
  const std::int64_t num_leaves = text_int(check, tree, "num_leaves");
  if (num_leaves < 1 || num_leaves > kMaxNodesPerTree / 2) {
    check.fail(where + ": num_leaves = " + std::to_string(num_leaves) + " is out of range [1, " +
               std::to_string(kMaxNodesPerTree / 2) + "]");
  }
  const auto leaves = static_cast<std::size_t>(num_leaves), splits = leaves - 1;
  if (out.nodes.size() + 2 * leaves > kMaxTotalNodes) check.fail("the model has too many nodes");
  const std::vector<double> leaf_value = text_array<double>(check, tree, "leaf_value", leaves);
  const auto leaf_node = [&](std::size_t leaf, std::uint32_t self) {
    const double v = leaf_value[leaf];
    if (!(std::abs(v) <= std::numeric_limits<float>::max())) {
      check.fail(where + ": leaf " + std::to_string(leaf) + " value is not finite in float32");
    }
    // A leaf is its own left child (see the XGBoost parser).
    return TreeNode{static_cast<float>(v), detail::kLeafBit, self, 0};
  };
  const std::size_t base = out.nodes.size();
  if (leaves == 1) {
    out.nodes.push_back(leaf_node(0, 0));
    out.leaf_values.push_back(leaf_value[0]);
    out.tree_offset.push_back(static_cast<std::uint32_t>(base + 1));
    out.tree_depth.push_back(0);
    return;
  }
  const auto feature = text_array<std::int64_t>(check, tree, "split_feature", splits);
  const auto threshold = text_array<double>(check, tree, "threshold", splits);
  const auto decision = text_array<std::int64_t>(check, tree, "decision_type", splits);
  const auto left = text_array<std::int64_t>(check, tree, "left_child", splits);
  const auto right = text_array<std::int64_t>(check, tree, "right_child", splits);
  const std::int64_t num_cat = text_int(check, tree, "num_cat");
  if (num_cat < 0 || num_cat > num_leaves) {
    check.fail(where + ": num_cat = " + std::to_string(num_cat) + " is out of range");
  }
  std::vector<std::int64_t> cat_boundaries;
  std::vector<std::uint32_t> cat_threshold;
  if (num_cat > 0) {
    cat_boundaries = text_array<std::int64_t>(check, tree, "cat_boundaries",
                                              static_cast<std::size_t>(num_cat) + 1);
    for (std::size_t i = 0; i < cat_boundaries.size(); ++i) {
      if ((i == 0 && cat_boundaries[0] != 0) ||
          (i > 0 && (cat_boundaries[i] < cat_boundaries[i - 1] ||
                     cat_boundaries[i] > static_cast<std::int64_t>(kMaxCategoryWords)))) {
        check.fail(where + ": cat_boundaries is not an increasing list from 0");
      }
    }
    cat_threshold = text_array<std::uint32_t>(check, tree, "cat_threshold",
                                              static_cast<std::size_t>(cat_boundaries.back()));
  }

  // Breadth-first over LightGBM ids; `order` holds them in the new layout's order.
  std::vector<std::uint8_t> seen_split(splits, 0), seen_leaf(leaves, 0);
  std::vector<std::int64_t> order{0};
  std::vector<std::uint32_t> depth{0};
  seen_split[0] = 1;
  std::uint32_t max_depth = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::int64_t id = order[i];
    max_depth = std::max(max_depth, depth[i]);
    if (id < 0) {
      out.nodes.push_back(leaf_node(static_cast<std::size_t>(~id), static_cast<std::uint32_t>(i)));
      out.leaf_values.push_back(leaf_value[static_cast<std::size_t>(~id)]);
      continue;
    }
    const auto s = static_cast<std::size_t>(id);
    const std::string at = where + " split " + std::to_string(s);
    const std::int64_t type = decision[s];
    if (type < 0 || type > 15 || (type >> 2) == 3) {
      check.fail(at + ": decision_type " + std::to_string(type) + " is not valid");
    }
    const bool categorical = (type & 1) != 0;
    const bool default_left = (type & 2) != 0;
    const std::int64_t missing = type >> 2;  // 0 None, 1 Zero, 2 NaN
    if (feature[s] < 0 || static_cast<std::size_t>(feature[s]) >= num_features) {
      check.fail(at + ": split feature " + std::to_string(feature[s]) + " is out of range [0, " +
                 std::to_string(num_features) + ")");
    }
    if (std::isnan(threshold[s])) check.fail(at + ": threshold is NaN");
    TreeNode node{};
    node.feature = static_cast<std::uint32_t>(feature[s]);
    node.left = static_cast<std::uint32_t>(order.size());
    // LightGBM's categories go left; here a listed category goes right, so children swap.
    std::int64_t first = left[s], second = right[s];
    if (categorical) {
      const double index = threshold[s];
      if (!(index >= 0.0 && index < static_cast<double>(num_cat)) || index != std::floor(index)) {
        check.fail(at + ": categorical threshold " + std::to_string(index) +
                   " is not a category set of this tree (num_cat = " + std::to_string(num_cat) +
                   ")");
      }
      const auto k = static_cast<std::size_t>(index);
      const std::span<const std::uint32_t> bits(
          cat_threshold.data() + cat_boundaries[k],
          static_cast<std::size_t>(cat_boundaries[k + 1] - cat_boundaries[k]));
      std::size_t used = bits.size();
      while (used > 0 && bits[used - 1] == 0) --used;
      if (used * 32 > static_cast<std::size_t>(detail::kMaxCategory)) {
        check.fail(at + ": a category >= 2^24 is listed");
      }
      // NaN, negative and out-of-range values go to LightGBM's right child.
      node.feature |= detail::kCategoricalBit | detail::kDefaultLeftBit;
      node.category =
          append_category_split(check, out, bits.first(used), detail::kLightGBMLowestCategory);
      std::swap(first, second);
    } else {
      // None: NaN reads as 0.0 and goes where 0 goes. NaN: NaN goes the default way. Zero: NaN
      // and the zero band go the default way (kZeroBandBit); other values compare as they are.
      bool nan_left = missing == 0 ? 0.0 <= threshold[s] : default_left;
      if (missing == 1) {
        node.feature |= detail::kZeroBandBit;
        out.zero_band_splits = true;
      }
      if (threshold[s] == INFINITY) {
        // Every number, +inf too, goes left: no "x < T" says that, so the children swap and
        // every number goes right of -inf.
        node.value = -INFINITY;
        nan_left = !nan_left;
        std::swap(first, second);
      } else {
        node.value =
            missing == 1 ? smallest_float_above(threshold[s]) : lightgbm_threshold(threshold[s]);
      }
      node.feature |= nan_left ? detail::kDefaultLeftBit : 0u;
    }
    for (const std::int64_t child : {first, second}) {
      if (child >= 0) {
        if (static_cast<std::size_t>(child) >= splits) {
          check.fail(at + ": child " + std::to_string(child) + " is out of range [0, " +
                     std::to_string(splits) + ")");
        }
        if (seen_split[child]) {
          check.fail(at + ": split " + std::to_string(child) +
                     " is reached twice (a cycle or a shared child)");
        }
        seen_split[child] = 1;
      } else {
        const std::int64_t leaf = ~child;
        if (leaf >= num_leaves) {
          check.fail(at + ": leaf " + std::to_string(leaf) + " is out of range [0, " +
                     std::to_string(num_leaves) + ")");
        }
        if (seen_leaf[leaf])
          check.fail(at + ": leaf " + std::to_string(leaf) + " is reached twice");
        seen_leaf[leaf] = 1;
      }
      order.push_back(child);
      depth.push_back(depth[i] + 1);
    }
    out.nodes.push_back(node);
    out.leaf_values.push_back(0.0);
  }
  out.tree_offset.push_back(static_cast<std::uint32_t>(base + order.size()));
  out.tree_depth.push_back(max_depth);
}

// LightGBM finds its trees by the header's tree_sizes (bytes per "Tree=i" block), not by reading
// on: with fewer sizes than trees it silently drops the rest, and with a size that misses a
// "Tree=" line it aborts. A file whose sizes disagree with its trees is refused here, so that
// driftguard never scores trees LightGBM would not.
void check_lightgbm_tree_sizes(const Checker& check, const LightGBMText& file) {
  const std::string_view* listed = file.header.find("tree_sizes");
  if (listed == nullptr) return;  // LightGBM then reads the trees in order, as here
  const std::vector<std::string_view> sizes = split_words(*listed);
  if (sizes.size() != file.trees.size()) {
    check.fail("tree_sizes lists " + std::to_string(sizes.size()) + " sizes for " +
               std::to_string(file.trees.size()) + " trees");
  }
  std::size_t at = file.tree_offsets.empty() ? 0 : file.tree_offsets.front();
  for (std::size_t t = 0; t < sizes.size(); ++t) {
    if (file.tree_offsets[t] != at) {
      check.fail("tree_sizes puts tree " + std::to_string(t) + " at byte " + std::to_string(at) +
                 ", where \"Tree=" + std::to_string(t) + "\" starts at byte " +
                 std::to_string(file.tree_offsets[t]) +
                 " (sizes count bytes of \\n-terminated lines)");
    }
    std::size_t size = 0;
    const auto [end, error] =
        std::from_chars(sizes[t].data(), sizes[t].data() + sizes[t].size(), size);
    if (error != std::errc{} || end != sizes[t].data() + sizes[t].size()) {
      check.fail("tree_sizes entry \"" + std::string(sizes[t]) + "\" is not a byte count");
    }
    at += size;
  }
}

ModelData parse_lightgbm(const Checker& check, std::string_view text, const ModelOptions& options) {
  const LightGBMText file = split_lightgbm_text(check, text);
  const TextBlock& header = file.header;
  const std::string version(text_value(check, header, "version"));
  if (version != "v2" && version != "v3" && version != "v4") {
    check.fail("model version \"" + version + "\" is not supported (v2 to v4 are)");
  }
  const std::int64_t num_class = text_int(check, header, "num_class");
  const std::int64_t per_iteration = text_int(check, header, "num_tree_per_iteration");
  const LightGBMObjective objective =
      lightgbm_objective(check, text_value(check, header, "objective"), num_class, per_iteration);

  ModelData model;
  model.kind = ModelKind::TreeEnsemble;
  model.objective = objective.name;
  model.link = objective.link;
  model.outputs = objective.outputs;
  const std::int64_t max_feature = text_int(check, header, "max_feature_idx");
  if (max_feature < 0 || max_feature >= static_cast<std::int64_t>(detail::kFeatureMask)) {
    check.fail("max_feature_idx = " + std::to_string(max_feature) + " is out of range");
  }
  const auto num_features = static_cast<std::size_t>(max_feature) + 1;
  json names = json::array();
  for (const std::string_view name : split_words(text_value(check, header, "feature_names"))) {
    names.push_back(std::string(name));
  }
  model.feature_names = check.names(names, "feature_names");
  if (model.feature_names.size() != num_features) {
    check.fail("feature_names has " + std::to_string(model.feature_names.size()) +
               " names, max_feature_idx + 1 is " + std::to_string(num_features));
  }

  const std::size_t trees = file.trees.size();
  if (trees % model.outputs != 0) {
    check.fail(std::to_string(trees) + " trees are not whole iterations of " +
               std::to_string(model.outputs) + " trees");
  }
  const std::size_t rounds = trees / model.outputs;
  // LightGBM's text keeps no best iteration (save_model writes the trees up to it), so
  // use_best_iteration has nothing to select.
  const std::size_t begin = options.iteration_begin;
  const std::size_t end = options.iteration_end == 0 ? rounds : options.iteration_end;
  if (begin > end || end > rounds) {
    check.fail("iteration range [" + std::to_string(begin) + ", " + std::to_string(end) +
               ") is outside the model's " + std::to_string(rounds) + " rounds");
  }
  const bool average =
      std::find(file.flags.begin(), file.flags.end(), "average_output") != file.flags.end();

  detail::TreeEnsemble& ensemble = model.trees;
  ensemble.sum_in_double = true;
  // Random forests (average_output) divide each output's sum by the iterations used before the
  // link; LightGBM's raw score is the undivided sum.
  if (average && end > begin) ensemble.average_divisor = static_cast<double>(end - begin);
  ensemble.base_margin.assign(model.outputs, 0.0f);
  ensemble.tree_offset.push_back(0);
  for (std::size_t t = 0; t < trees; ++t) {
    const std::size_t nodes_before = ensemble.nodes.size();
    const std::size_t splits_before = ensemble.category_splits.size();
    const std::size_t bits_before = ensemble.category_bits.size();
    add_lightgbm_tree(check, file.trees[t], num_features, ensemble);
    const std::size_t round = t / model.outputs;
    if (round < begin || round >= end) {
      ensemble.nodes.resize(nodes_before);
      ensemble.leaf_values.resize(nodes_before);
      ensemble.category_splits.resize(splits_before);
      ensemble.category_bits.resize(bits_before);
      ensemble.tree_offset.pop_back();
      ensemble.tree_depth.pop_back();
      continue;
    }
    ensemble.tree_group.push_back(static_cast<std::uint32_t>(t % model.outputs));
  }
  // After the trees, so that a defect inside a tree is named rather than the sizes it shifted.
  check_lightgbm_tree_sizes(check, file);
  return model;
}

// ---- driftguard's linear model (docs/linear_model.md) ----

ModelData parse_linear(const Checker& check, const json& root) {
  ModelData model;
  model.kind = ModelKind::Linear;
  const std::int64_t version = check.integer(check.member(root, "version", "the model"), "version");
  if (version != 1) check.fail("linear model version " + std::to_string(version) + " is unknown");
  model.feature_names =
      check.names(check.array(root, "feature_names", "the model"), "feature_names");
  const std::size_t features = model.feature_names.size();
  if (features == 0) check.fail("feature_names is empty");

  const std::string link = check.string(check.member(root, "link", "the model"), "link");
  if (link == "identity") {
    model.link = Link::Identity;
  } else if (link == "logistic") {
    model.link = Link::Logistic;
  } else if (link == "softmax") {
    model.link = Link::Softmax;
  } else {
    check.fail("link \"" + link + "\" is unknown (identity, logistic or softmax)");
  }
  model.objective = "linear:" + link;

  // coefficients: [F] for one output or [K][F].
  const json& coefficients = check.array(root, "coefficients", "the model");
  if (coefficients.empty()) check.fail("coefficients is empty");
  detail::LinearModel& linear = model.linear;
  if (coefficients[0].is_array()) {
    if (coefficients.size() > static_cast<std::size_t>(kMaxOutputs)) {
      check.fail("coefficients has " + std::to_string(coefficients.size()) + " rows, at most " +
                 std::to_string(kMaxOutputs) + " classes are supported");
    }
    model.outputs = coefficients.size();
    for (std::size_t k = 0; k < model.outputs; ++k) {
      const std::string at = "coefficients[" + std::to_string(k) + "]";
      if (!coefficients[k].is_array() || coefficients[k].size() != features) {
        check.fail(at + " does not hold " + std::to_string(features) + " numbers");
      }
      for (std::size_t f = 0; f < features; ++f) {
        linear.coefficients.push_back(
            check.finite(coefficients[k][f], at + "[" + std::to_string(f) + "]"));
      }
    }
  } else {
    linear.coefficients = check.finite_array(root, "coefficients", features, "the model");
  }
  if (model.link == Link::Softmax && model.outputs < 2) {
    check.fail("link softmax needs coefficients for at least 2 classes");
  }
  if (model.link == Link::Logistic && model.outputs != 1) {
    check.fail("link logistic takes one row of coefficients (use softmax for classes)");
  }
  linear.intercepts = check.finite_array(root, "intercepts", model.outputs, "the model");

  if (const json* standardize = check.optional(root, "standardize"); standardize != nullptr) {
    linear.mean = check.finite_array(*standardize, "mean", features, "standardize");
    linear.scale = check.finite_array(*standardize, "scale", features, "standardize");
    for (std::size_t f = 0; f < features; ++f) {
      if (!(linear.scale[f] > 0.0)) {
        check.fail("standardize.scale[" + std::to_string(f) + "] is not positive");
      }
    }
  }
  if (check.optional(root, "impute") != nullptr) {
    linear.impute = check.finite_array(root, "impute", features, "the model");
  }
  if (const json* card = check.optional(root, "scorecard"); card != nullptr) {
    if (model.link != Link::Logistic) check.fail("scorecard points need link logistic");
    const double base_points =
        check.finite(check.member(*card, "base_points", "scorecard"), "scorecard.base_points");
    const double base_odds =
        check.finite(check.member(*card, "base_odds", "scorecard"), "scorecard.base_odds");
    const double pdo = check.finite(check.member(*card, "pdo", "scorecard"), "scorecard.pdo");
    if (!(base_odds > 0.0)) check.fail("scorecard.base_odds is not positive");
    if (pdo == 0.0) check.fail("scorecard.pdo is zero");
    linear.has_points = true;
    linear.points_factor = pdo / std::log(2.0);
    linear.points_offset = base_points - linear.points_factor * std::log(base_odds);
  }
  return model;
}

}  // namespace

namespace {

// XGBoost's binary model format (save_model("m.ubj"); the default since XGBoost 2.1): Universal
// Binary JSON of the same document. Its opening brace is followed by a key's length marker or a
// container marker, which no JSON text has there.
bool is_ubjson(std::string_view text) {
  return text.size() >= 2 && text[0] == '{' &&
         std::string_view("iUIlL$#").find(text[1]) != std::string_view::npos;
}

// nlohmann's document builder within the bounds of a UBJSON model file. Its UBJSON reader (unlike
// its JSON parser) recurses once per nesting level, and it builds as many elements as a
// container's count declares even where they take no bytes (arrays typed $Z, $T, $F): an 18-byte
// file could ask for 2^40 nulls. So nesting stops at kMaxDepth (XGBoost's documents nest 7 deep)
// and no container may declare more elements than the file has bytes.
class BoundedDocument : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  static constexpr std::size_t kMaxDepth = 64;
  BoundedDocument(json& root, std::size_t input_bytes)
      : json_sax_dom_parser(root), input_bytes_(input_bytes) {}
  bool start_object(std::size_t declared) {
    return enter(declared) && json_sax_dom_parser::start_object(declared);
  }
  bool start_array(std::size_t declared) {
    return enter(declared) && json_sax_dom_parser::start_array(declared);
  }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }
  const std::string& refused() const { return refused_; }

 private:
  bool enter(std::size_t declared) {
    if (++depth_ > kMaxDepth) {
      refused_ = "nested more than " + std::to_string(kMaxDepth) + " levels deep";
    } else if (declared != static_cast<std::size_t>(-1) && declared > input_bytes_) {
      refused_ = "a container declares " + std::to_string(declared) + " elements in a file of " +
                 std::to_string(input_bytes_) + " bytes";
    }
    return refused_.empty();
  }
  std::size_t input_bytes_;
  std::size_t depth_ = 0;
  std::string refused_;
};

}  // namespace

Model::Model(std::shared_ptr<const detail::ModelData> data) : data_(std::move(data)) {}

namespace {

ModelData with_fingerprint(ModelData data, std::string_view text, const ModelOptions& options) {
  detail::Fnv1a digest;
  digest.add_bytes(text);
  if (data.kind == ModelKind::TreeEnsemble) {
    digest.add_bytes("rounds " + std::to_string(options.iteration_begin) + " " +
                     std::to_string(options.iteration_end) +
                     (options.use_best_iteration ? " best" : ""));
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(digest.value()));
  data.fingerprint = hex;
  return data;
}

// XGBoost before 3.0 writes NaN, Infinity and -Infinity as bare literals, which JSON does not
// have: NaN at every categorical split's split_conditions, which nothing reads, and XGBoost itself
// reads them back. They become null, so that a value which is read says it is not a number.
// Returns the rewritten text when there was any to rewrite.
std::optional<std::string> nonfinite_literals_as_null(std::string_view text) {
  std::string out;
  std::size_t copied = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    for (const std::string_view literal : {"NaN", "Infinity", "-Infinity"}) {
      if (text.substr(i).starts_with(literal)) {
        out.append(text.substr(copied, i - copied)).append("null");
        i += literal.size() - 1;
        copied = i + 1;
        break;
      }
    }
  }
  if (copied == 0) return std::nullopt;
  out.append(text.substr(copied));
  return out;
}

ModelData parse_any(const Checker& check, std::string_view text, const ModelOptions& options) {
  if (text.starts_with("tree\n") || text.starts_with("tree\r\n")) {
    return parse_lightgbm(check, text, options);
  }
  json root;
  const bool binary = is_ubjson(text);
  const std::string not_valid = binary ? "not valid UBJSON: " : "not valid JSON: ";
  try {
    if (!binary) {
      // Iterative: neither deep nesting nor sizes are declared.
      const std::optional<std::string> rewritten = nonfinite_literals_as_null(text);
      root = rewritten ? json::parse(*rewritten) : json::parse(text);
    } else if (BoundedDocument document(root, text.size()); !json::sax_parse(
                   text.begin(), text.end(), &document, json::input_format_t::ubjson)) {
      check.fail(not_valid + (document.refused().empty() ? "stopped early" : document.refused()));
    }
  } catch (const json::exception& e) {
    check.fail(not_valid + e.what());
  }
  if (!root.is_object()) check.fail("not a JSON object");
  if (root.contains("learner")) return parse_xgboost(check, root, options);
  const json* format = check.optional(root, "format");
  if (format != nullptr && format->is_string() && *format == "driftguard-linear") {
    return parse_linear(check, root);
  }
  check.fail(
      "unknown model format (neither an XGBoost JSON or UBJSON model, a LightGBM text model nor "
      "driftguard-linear)");
}

}  // namespace

Model Model::parse(std::string_view text, const ModelOptions& options, const std::string& name) {
  return Model(std::make_shared<const ModelData>(
      with_fingerprint(parse_any(Checker(name), text, options), text, options)));
}

Model Model::load(const std::string& path, const ModelOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in || std::filesystem::is_directory(path)) {
    throw ModelError(path + ": cannot open the model file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ModelError(path + ": cannot read the model file");
  return parse(text.str(), options, path);
}

ModelKind Model::kind() const noexcept { return data_->kind; }
const std::string& Model::objective() const noexcept { return data_->objective; }
const std::vector<std::string>& Model::feature_names() const noexcept {
  return data_->feature_names;
}
std::size_t Model::outputs() const noexcept { return data_->outputs; }
bool Model::has_points() const noexcept { return data_->linear.has_points; }
std::size_t Model::trees() const noexcept { return data_->trees.tree_group.size(); }
const std::string& Model::fingerprint() const noexcept { return data_->fingerprint; }

// ---- binding to a batch layout ----

namespace {

std::vector<std::size_t> columns_by_name(const Model& model,
                                         const std::vector<std::string>& batch_names) {
  std::unordered_map<std::string, std::size_t> column;
  for (std::size_t c = 0; c < batch_names.size(); ++c) {
    if (!column.emplace(batch_names[c], c).second) {
      column[batch_names[c]] = std::numeric_limits<std::size_t>::max();  // ambiguous
    }
  }
  std::vector<std::size_t> out;
  for (const std::string& name : model.feature_names()) {
    const auto it = column.find(name);
    if (it == column.end()) {
      throw InvalidInput("the model's feature \"" + name + "\" is not among the batch's " +
                         std::to_string(batch_names.size()) + " features");
    }
    if (it->second == std::numeric_limits<std::size_t>::max()) {
      throw InvalidInput("the model's feature \"" + name + "\" appears twice in the batch");
    }
    out.push_back(it->second);
  }
  return out;
}

}  // namespace

BoundModel::BoundModel(const Model& model, const std::vector<std::string>& batch_feature_names)
    : BoundModel(model, columns_by_name(model, batch_feature_names), batch_feature_names.size()) {}

BoundModel::BoundModel(const Model& model, const std::vector<std::size_t>& column_of_feature,
                       std::size_t batch_features)
    : model_(model) {
  const ModelData& data = model.data();
  if (column_of_feature.size() != data.feature_names.size()) {
    throw InvalidInput("column_of_feature has " + std::to_string(column_of_feature.size()) +
                       " entries for a model of " + std::to_string(data.feature_names.size()) +
                       " features");
  }
  if (batch_features > detail::kMaxBatchFeatures) {
    throw InvalidInput("a batch of " + std::to_string(batch_features) +
                       " features is wider than scoring supports (2^24)");
  }
  for (std::size_t c : column_of_feature) {
    if (c >= batch_features) {
      throw InvalidInput("column " + std::to_string(c) + " is outside the batch's " +
                         std::to_string(batch_features) + " features");
    }
  }
  auto tables = std::make_unique<detail::BoundTables>();
  tables->model = &data;
  tables->batch_features = batch_features;
  tables->columns.assign(column_of_feature.begin(), column_of_feature.end());
  tables->nodes = data.trees.nodes;
  for (TreeNode& node : tables->nodes) {
    if (node.feature & detail::kLeafBit) continue;
    const std::uint32_t flags = node.feature & ~detail::kFeatureMask;
    node.feature =
        flags | static_cast<std::uint32_t>(column_of_feature[node.feature & detail::kFeatureMask]);
  }
  for (std::uint32_t depth : data.trees.tree_depth) {
    tables->max_depth = std::max(tables->max_depth, depth);
  }
  tables_ = std::move(tables);
}

BoundModel::~BoundModel() = default;
BoundModel::BoundModel(BoundModel&&) noexcept = default;
BoundModel& BoundModel::operator=(BoundModel&&) noexcept = default;
std::size_t BoundModel::batch_features() const noexcept { return tables_->batch_features; }

}  // namespace driftguard
