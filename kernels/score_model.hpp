#pragma once
// Internal: a parsed model (ModelData, built by host/model.cpp) and the tables the scoring kernels
// read once it is bound to a batch layout (BoundTables). Trees are laid out breadth-first so the
// right child always follows the left one; the per-node decision below is shared by the CPU and
// CUDA kernels, so both take the same path through every tree.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "driftguard/model.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard::detail {

// Exp: count and positive-valued regressions (Poisson, gamma, Tweedie) model log(mean).
// Hinge: XGBoost's binary:hinge predicts the class, 1 when the margin is above 0 (NaN gives 0).
enum class Link : std::uint8_t { Identity, Logistic, Softmax, Exp, Hinge };

// One tree node, 16 bytes. `value` is the split threshold of a numerical split, the leaf value of
// a leaf; `left` is the tree-local index of the left child (right = left + 1), a leaf's own index
// for a leaf; `category` indexes TreeEnsemble::category_splits for a categorical split. A leaf's
// feature bits are kLeafBit alone (column 0).
struct TreeNode {
  float value;
  std::uint32_t feature;  // column | flags below
  std::uint32_t left;
  std::uint32_t category;
};
static_assert(sizeof(TreeNode) == 16);

constexpr std::uint32_t kLeafBit = 1u << 31;
constexpr std::uint32_t kDefaultLeftBit = 1u << 30;
constexpr std::uint32_t kCategoricalBit = 1u << 29;
// LightGBM's missing_type Zero (zero_as_missing): values in [-kZeroBand, kZeroBand] go the
// default way, as NaN does.
constexpr std::uint32_t kZeroBandBit = 1u << 28;
constexpr std::uint32_t kFeatureMask = kZeroBandBit - 1;
// LightGBM's kZeroThreshold (meta.h: the float literal 1e-35f, compared in double). Its dense
// input path reads values with |x| <= it as 0.0 before any split sees them.
constexpr float kZeroBand = 1e-35f;
// Batches wider than this are refused at binding: a block of CPU rows is indexed in int32.
constexpr std::size_t kMaxBatchFeatures = std::size_t{1} << 24;

// A categorical split's set: bit c of words [offset, offset + words) of category_bits. Values in
// [lowest, kMaxCategory) are categories, truncated toward zero: lowest is 0 for XGBoost (a
// negative value is no category) and the float just above -1 for LightGBM, whose int cast takes
// -0.5 to category 0.
struct CategorySplit {
  std::uint32_t offset;
  std::uint32_t words;
  float lowest;
};
constexpr float kXGBoostLowestCategory = 0.0f;
constexpr float kLightGBMLowestCategory = -0.99999994f;  // nextafterf(-1, 0)

// XGBoost's largest category (categorical.h, OutOfRangeCat): codes outside [0, 2^24) go left.
constexpr float kMaxCategory = 16777216.0f;

// True when a row with value `x` goes right at an internal node with these flag bits (the flags
// sit at the same bits in every node layout), threshold and category split index.
// kSpecialSplits = false is for models with neither categorical nor zero-band splits (no table
// lookups compiled in).
template <bool kSpecialSplits>
DG_HOST_DEVICE inline bool goes_right(std::uint32_t flags, float threshold, std::uint32_t category,
                                      float x, const CategorySplit* splits,
                                      const std::uint32_t* category_bits) {
  if (!kSpecialSplits) {
    // Branch-free: !(x < threshold) also holds for NaN, which then goes right unless default-left.
    const bool not_less = !(x < threshold);
    return not_less & ((x == x) | ((flags & kDefaultLeftBit) == 0));
  }
  if (x != x) return (flags & kDefaultLeftBit) == 0;
  if ((flags & kZeroBandBit) != 0 && x >= -kZeroBand && x <= kZeroBand) {
    return (flags & kDefaultLeftBit) == 0;
  }
  if ((flags & kCategoricalBit) == 0) return !(x < threshold);
  const CategorySplit split = splits[category];
  if (!(x >= split.lowest && x < kMaxCategory)) return false;
  // Through int32: x in (-1, 0) truncates to 0 without a negative-to-unsigned conversion.
  const auto c = static_cast<std::uint32_t>(static_cast<std::int32_t>(x));
  return c / 32 < split.words && ((category_bits[split.offset + c / 32] >> (c % 32)) & 1u) != 0;
}

struct TreeEnsemble {
  std::vector<TreeNode> nodes;             // all trees, breadth-first each
  std::vector<std::uint32_t> tree_offset;  // trees + 1 entries into nodes
  std::vector<std::uint32_t> tree_group;   // output column of each tree
  std::vector<std::uint32_t> tree_depth;   // edges on the longest root-to-leaf path
  std::vector<CategorySplit> category_splits;
  std::vector<std::uint32_t> category_bits;
  std::vector<float> base_margin;  // one per output
  // Margins summed in double (LightGBM's predictor) instead of float (XGBoost's); the link then
  // runs in double too and the outputs are rounded to float once.
  bool sum_in_double = false;
  // Double sums: every node's leaf value as the model file gives it (0 for a split), parallel to
  // nodes; a leaf's TreeNode::value is its float rounding.
  std::vector<double> leaf_values;
  bool zero_band_splits = false;  // some node has kZeroBandBit
  // LightGBM random forests (average_output): the link reads margin / average_divisor (the
  // iterations used) while the margin stays the sum, as LightGBM's raw score does. Double sums
  // only.
  double average_divisor = 1.0;

  // Trees need the general per-node decision (goes_right<true>).
  bool special_splits() const noexcept { return !category_splits.empty() || zero_band_splits; }
};

struct LinearModel {
  std::vector<double> coefficients;  // outputs x features, row-major
  std::vector<double> intercepts;    // outputs
  std::vector<double> mean, scale;   // features each, or empty: no standardisation
  std::vector<double> impute;        // features, or empty: NaN in gives NaN out
  bool has_points = false;
  double points_offset = 0.0, points_factor = 0.0;
};

struct ModelData {
  ModelKind kind = ModelKind::TreeEnsemble;
  std::string objective;
  std::vector<std::string> feature_names;
  std::size_t outputs = 1;
  Link link = Link::Identity;
  TreeEnsemble trees;       // kind == TreeEnsemble
  LinearModel linear;       // kind == Linear
  std::string fingerprint;  // Model::fingerprint()
};

// A model with its feature indices replaced by batch columns: what the kernels read.
struct BoundTables {
  const ModelData* model = nullptr;  // owned by the BoundModel's Model
  std::size_t batch_features = 0;
  std::vector<TreeNode> nodes;         // TreeEnsemble::nodes with columns in place of features
  std::vector<std::uint32_t> columns;  // linear: batch column of each model feature
  std::uint32_t max_depth = 0;
};

// Sigmoid and softmax as XGBoost computes them (float32), so probabilities match
// Booster.predict to rounding; double versions for linear models.
DG_HOST_DEVICE inline float exp_of(float x) { return expf(x); }
DG_HOST_DEVICE inline double exp_of(double x) { return ::exp(x); }
// XGBoost's common::Sigmoid clamps the exponent so that very negative margins give a tiny
// positive probability instead of 1/inf.
DG_HOST_DEVICE inline float sigmoid(float margin) {
  const float e = 88.7f < -margin ? 88.7f : -margin;
  return 1.0f / (expf(e) + 1.0f);
}
DG_HOST_DEVICE inline double sigmoid(double margin) { return 1.0 / (1.0 + ::exp(-margin)); }

// In place over k values, XGBoost's common::Softmax (and LightGBM's): max, exp(x - max), the
// sum in double, divide by the sum in T.
template <typename T>
DG_HOST_DEVICE inline void softmax(T* values, std::size_t k) {
  T max = values[0];
  for (std::size_t i = 1; i < k; ++i) max = values[i] > max ? values[i] : max;
  double sum = 0;
  for (std::size_t i = 0; i < k; ++i) {
    values[i] = exp_of(values[i] - max);
    sum += values[i];
  }
  for (std::size_t i = 0; i < k; ++i) values[i] /= static_cast<T>(sum);
}

// Linear margin of one output for one row, in float64 with fused multiply-adds in feature order
// (both backends call this, so they agree bit for bit). `coefficients` holds the output's row;
// mean/scale/impute may be null.
DG_HOST_DEVICE inline double linear_margin(const float* row, const std::uint32_t* columns,
                                           std::size_t features, const double* coefficients,
                                           double intercept, const double* mean,
                                           const double* scale, const double* impute) {
  double acc = intercept;
  for (std::size_t f = 0; f < features; ++f) {
    double v = row[columns[f]];
    if (impute != nullptr && v != v) v = impute[f];
    if (mean != nullptr) v = (v - mean[f]) / scale[f];
    acc = fma(coefficients[f], v, acc);
  }
  return acc;
}

// Probability of one row from its margins (k values), in the margins' precision.
template <typename T>
DG_HOST_DEVICE inline void apply_link(Link link, T* values, std::size_t k) {
  if (link == Link::Logistic) {
    for (std::size_t i = 0; i < k; ++i) values[i] = sigmoid(values[i]);
  } else if (link == Link::Softmax) {
    softmax(values, k);
  } else if (link == Link::Exp) {
    for (std::size_t i = 0; i < k; ++i) values[i] = exp_of(values[i]);
  } else if (link == Link::Hinge) {
    for (std::size_t i = 0; i < k; ++i) values[i] = values[i] > T(0) ? T(1) : T(0);
  }
}

}  // namespace driftguard::detail
