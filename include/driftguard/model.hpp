#pragma once
// Batch scoring with a production model: logistic/linear scorecards (driftguard's own JSON,
// docs/linear_model.md), XGBoost tree ensembles (Booster.save_model("m.json"), or "m.ubj": the same
// document in Universal Binary JSON, XGBoost's default format since 2.1) and LightGBM tree
// ensembles (Booster.save_model("m.txt")).
//
// XGBoost models score exactly as Booster.predict does on the CPU:
//   - numerical split: left when x < threshold, compared in float32; NaN takes default_left;
//   - categorical split: right when x is a valid category (0 <= x < 2^24, truncated to an
//     integer) listed in the node's categories, left otherwise; NaN takes default_left. Batches
//     hold the category codes the model was trained on (pandas' .cat.codes, NaN for missing);
//     the category names XGBoost >= 3.1 stores for re-coding are not read;
//   - margin[k] = base_margin[k] + leaf(t_0) + leaf(t_1) + ... over the trees of group k in model
//     order, summed in float32 (XGBoost's CPU predictor order). base_score is stored in
//     probability space for binary:logistic / reg:logistic (margin = -ln(1/p - 1) in float32), as
//     a mean for count:poisson / reg:gamma / reg:tweedie / survival:cox / survival:aft (margin =
//     ln(mean) in float32), as a margin for every other objective; both "0.5" and the array form
//     "[5E-1]" (XGBoost >= 3.1, one value per class or target) are read;
//   - several targets (num_target > 1: reg:quantileerror with several alphas, multi-output
//     regression, multi-label binary:logistic; trees with scalar leaves, one_output_per_tree) are
//     one output each, like classes; vector-leaf trees (multi_output_tree) are refused;
//   - dart boosters: each tree's leaves are multiplied by its weight_drop (float32), as
//     XGBoost's inference does;
//   - probability: sigmoid for binary:logistic / reg:logistic, softmax over the classes for
//     multi:softprob / multi:softmax (Booster.predict of multi:softmax returns the argmax of these
//     margins, first maximum on ties), exp(margin) (float32) for count:poisson / reg:gamma /
//     reg:tweedie / survival:cox (the hazard ratio) / survival:aft (the predicted time), the
//     margin itself for binary:logitraw, reg:squarederror, reg:squaredlogerror,
//     reg:pseudohubererror, reg:absoluteerror, reg:quantileerror and the ranking objectives
//     rank:pairwise / rank:ndcg / rank:map, and the class for binary:hinge (1 when margin > 0,
//     else 0; a NaN margin gives 0, as XGBoost's comparison does). Other objectives (custom
//     ones) are refused.
// Observed agreement with xgboost 3.2 (tests/golden/score_xgboost.json): see tests/test_score.cpp.
// The CUDA backend computes the same float sums in the same order, so margins are bit-identical
// to the CPU; probabilities may differ by the last bits of expf (tested to 1e-6 absolute).
//
// LightGBM models score as Booster.predict does on a dense float32 array:
//   - numerical split: left when x' <= threshold in double, where x' = 0 for |x| <= 1e-35
//     (LightGBM's kZeroThreshold: its dense input path drops such values). NaN reads as 0.0 when
//     the node's missing_type is None; missing_type NaN sends NaN the default_left way;
//     missing_type Zero (zero_as_missing) sends NaN and every |x| <= 1e-35 the default_left way.
//     Each threshold becomes the float32 T with "x < T" on exactly the same floats; a threshold of
//     +inf (which LightGBM writes) sends every number left;
//   - categorical split: left (LightGBM's side) when x truncated toward zero, x in (-1, 2^24), is
//     in the node's bitset; NaN, other negatives and larger values go right;
//   - margin[k] = sum in double of the leaves of the trees of class k (tree t is class t mod
//     num_tree_per_iteration), leaf values in double as the file gives them; random forests
//     (average_output) keep that sum as the margin, as LightGBM's raw score does, and divide it by
//     the iterations used before the link. The link runs in double; outputs are rounded to float32
//     once;
//   - objectives: binary and cross_entropy (sigmoid; sigmoid:1 only), multiclass (softmax),
//     multiclassova (sigmoid per class), poisson, gamma and tweedie (exp), and the identity
//     outputs regression, regression_l1, huber, fair, quantile, mape and the ranking objectives
//     lambdarank and rank_xendcg (the raw score). Others (cross_entropy_lambda, custom),
//     reg_sqrt, linear trees and model versions other than v2-v4 are refused. ModelOptions'
//     iteration range counts iterations; the text keeps no best iteration, so use_best_iteration
//     has no effect.
// Observed agreement with lightgbm 4.7 (tests/golden/score_lightgbm.json): margins and outputs are
// the float32 rounding of Booster.predict's doubles on every golden row (CPU; the CUDA backend's
// margins too, its exp may differ in the last bits): see tests/test_score.cpp.
//
// Linear models compute, per class k, in float64 with fused multiply-adds in feature order,
//   margin_k = intercept_k + sum_f coef_kf * (v_f - mean_f) / scale_f,  v_f = x_f, or the
//   imputation value when x_f is NaN and the model has one (NaN x without imputation gives NaN),
// then probability = sigmoid(margin) (logistic), softmax over k (softmax) or margin (identity),
// and scorecard points = offset + factor * margin (margin = ln(odds) of the modelled class),
// factor = pdo / ln 2, offset = base_points - factor * ln(base_odds). Outputs are stored as float.
//
// Every problem with a model file is a ModelError naming the file and what is wrong or
// unsupported; nothing in a model file can crash the library.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driftguard/batch.hpp"

namespace driftguard {

class Context;

namespace detail {
struct ModelData;
struct BoundTables;
}  // namespace detail

enum class ModelKind { Linear, TreeEnsemble };

struct ModelOptions {
  // Boosting rounds of a tree ensemble to use, [iteration_begin, iteration_end); iteration_end = 0
  // means all rounds, as Booster.predict(iteration_range=(0, 0)). Ignored for linear models.
  std::size_t iteration_begin = 0;
  std::size_t iteration_end = 0;
  // Use rounds [0, best_iteration] when the model records best_iteration (early stopping), as
  // scikit-learn's XGBClassifier.predict does; overrides the range above.
  bool use_best_iteration = false;
};

class Model {
 public:
  // Reads a model file and detects its format (text starting with a "tree" line: LightGBM; an
  // object with "learner": XGBoost; an object with "format": "driftguard-linear": linear).
  // ModelError for anything invalid or unsupported; the message starts with `path`.
  static Model load(const std::string& path, const ModelOptions& options = {});
  // The same for model text already in memory; `name` prefixes error messages.
  static Model parse(std::string_view text, const ModelOptions& options = {},
                     const std::string& name = "model");

  ModelKind kind() const noexcept;
  // "binary:logistic" etc. for XGBoost; LightGBM's name ("binary", "multiclass", ...);
  // "linear:identity" | "linear:logistic" | "linear:softmax".
  const std::string& objective() const noexcept;
  // The features the model reads, by name (XGBoost models without names get f0, f1, ...).
  const std::vector<std::string>& feature_names() const noexcept;
  // Columns of margin and probability per row: the classes of a multi-class model, else 1.
  std::size_t outputs() const noexcept;
  // True for linear models with scorecard points.
  bool has_points() const noexcept;
  // Trees used (after the iteration range); 0 for linear models.
  std::size_t trees() const noexcept;
  // 16 hex digits: FNV-1a (64 bits) of the model text and, for tree ensembles, of the rounds
  // chosen by ModelOptions. Models with equal fingerprints score alike; a reference profile
  // records its model's, so that a scan with another model is refused instead of comparing its
  // scores with the wrong reference scores. (A fixed function, unlike std::hash: a profile made on
  // one machine is recognised on another.)
  const std::string& fingerprint() const noexcept;

  const detail::ModelData& data() const noexcept { return *data_; }

 private:
  explicit Model(std::shared_ptr<const detail::ModelData> data);
  std::shared_ptr<const detail::ModelData> data_;
};

// A model bound to a batch layout: model feature i is read from batch column column_of(i).
// Resolved once, reused for every batch of that layout. It keeps its Model's data alive. Model
// and BoundModel are immutable: any number of threads may score with one at once (each with its
// own Context).
class BoundModel {
 public:
  // By name: every model feature must appear in `batch_feature_names` (InvalidInput naming the
  // first missing one). Extra batch columns are ignored.
  BoundModel(const Model& model, const std::vector<std::string>& batch_feature_names);
  // Explicit: column_of_feature[i] < batch_features for every model feature i.
  BoundModel(const Model& model, const std::vector<std::size_t>& column_of_feature,
             std::size_t batch_features);
  ~BoundModel();
  BoundModel(BoundModel&&) noexcept;
  BoundModel& operator=(BoundModel&&) noexcept;

  const Model& model() const noexcept { return model_; }
  std::size_t batch_features() const noexcept;
  const detail::BoundTables& tables() const noexcept { return *tables_; }

 private:
  Model model_;
  std::unique_ptr<const detail::BoundTables> tables_;
};

// Where score() writes: rows * model.outputs() floats each, row-major; null = not written.
// `points` must be null unless model.has_points(). Outputs live in the batch's memory space
// (device pointers for a device-resident batch on the CUDA backend).
struct ScoreOutputs {
  float* margin = nullptr;
  float* probability = nullptr;
  float* points = nullptr;
};

// Scores every row of `batch` (batch.features == bound.batch_features()). Synchronous: the outputs
// are written when it returns. The CUDA backend copies the bound model's packed tables to the
// device on each call (small next to a batch) and stages host batches in chunks.
void score(Context& ctx, const BoundModel& bound, BatchView batch, ScoreOutputs out);

}  // namespace driftguard
