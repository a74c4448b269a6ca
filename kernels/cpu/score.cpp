// CPU backend of batch scoring. Row blocks are spread over OpenMP threads. Within a block, all
// kBlockRows rows walk one tree together, level by level: the rows' node loads are independent,
// so their latencies overlap, and the block's rows stay in L1 while every tree passes over them.
// Margins are summed in model tree order after the base margin, in float as XGBoost's CPU
// predictor does (so the sums match it bit for bit), or in double as LightGBM's does.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/score_model.hpp"

namespace driftguard::cpu {
namespace {

using detail::BoundTables;
using detail::TreeNode;

constexpr std::size_t kBlockRows = 64;

// One level of one tree for a block's rows: pos[r] moves to the child row r takes. No branch per
// row (a leaf steps to itself: its left is its own index), so the rows' steps are independent and
// overlap. Built for the baseline ISA on purpose: AVX2 / AVX-512 gathers measured slower here.
template <bool kSpecialSplits>
void step_level(const TreeNode* __restrict__ nodes, const float* __restrict__ rows,
                std::int32_t features, std::int32_t* __restrict__ pos, std::int32_t n,
                const detail::CategorySplit* splits, const std::uint32_t* bits) {
  // 32-bit signed indices: with 64-bit ones GCC does not vectorise the loop.
  for (std::int32_t r = 0; r < n; ++r) {
    const TreeNode& node = nodes[pos[r]];
    const float x =
        rows[r * features + static_cast<std::int32_t>(node.feature & detail::kFeatureMask)];
    const bool internal = (node.feature & detail::kLeafBit) == 0;
    pos[r] = static_cast<std::int32_t>(node.left) +
             (internal & detail::goes_right<kSpecialSplits>(node.feature, node.value, node.category,
                                                            x, splits, bits));
  }
}

template <bool kSpecialSplits, typename Sum>
void score_trees(int threads, const BoundTables& tables, BatchView batch, const ScoreOutputs& out) {
  const detail::ModelData& model = *tables.model;
  const detail::TreeEnsemble& ensemble = model.trees;
  const std::size_t k = model.outputs;
  const std::size_t trees = ensemble.tree_group.size();
  const std::size_t blocks = (batch.rows + kBlockRows - 1) / kBlockRows;
  const TreeNode* all_nodes = tables.nodes.data();
  const detail::CategorySplit* splits = ensemble.category_splits.data();
  const std::uint32_t* bits = ensemble.category_bits.data();

#pragma omp parallel num_threads(threads)
  {
    std::vector<Sum> margin(kBlockRows * k);
    std::int32_t pos[kBlockRows];
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t first = b * kBlockRows;
      const std::size_t n = std::min(kBlockRows, batch.rows - first);
      const float* rows = batch.data + first * batch.features;
      for (std::size_t r = 0; r < n; ++r) {
        std::copy(ensemble.base_margin.begin(), ensemble.base_margin.end(), margin.begin() + r * k);
      }
      for (std::size_t t = 0; t < trees; ++t) {
        const TreeNode* nodes = all_nodes + ensemble.tree_offset[t];
        std::fill(pos, pos + n, 0);
        for (std::uint32_t level = 0; level < ensemble.tree_depth[t]; ++level) {
          step_level<kSpecialSplits>(nodes, rows, static_cast<std::int32_t>(batch.features), pos,
                                     static_cast<std::int32_t>(n), splits, bits);
        }
        const std::uint32_t group = ensemble.tree_group[t];
        if constexpr (std::is_same_v<Sum, double>) {
          const double* leaf = ensemble.leaf_values.data() + ensemble.tree_offset[t];
          for (std::size_t r = 0; r < n; ++r) margin[r * k + group] += leaf[pos[r]];
        } else {
          for (std::size_t r = 0; r < n; ++r) margin[r * k + group] += nodes[pos[r]].value;
        }
      }
      for (std::size_t r = 0; r < n; ++r) {
        Sum* m = margin.data() + r * k;
        const std::size_t at = (first + r) * k;
        const auto to_float = [](Sum v) { return static_cast<float>(v); };
        if (out.margin != nullptr) std::transform(m, m + k, out.margin + at, to_float);
        if (out.probability != nullptr) {
          if (ensemble.average_divisor != 1.0) {
            for (std::size_t c = 0; c < k; ++c)
              m[c] = static_cast<Sum>(m[c] / ensemble.average_divisor);
          }
          detail::apply_link(model.link, m, k);
          std::transform(m, m + k, out.probability + at, to_float);
        }
      }
    }
  }
}

void score_linear(int threads, const BoundTables& tables, BatchView batch,
                  const ScoreOutputs& out) {
  const detail::ModelData& model = *tables.model;
  const detail::LinearModel& linear = model.linear;
  const std::size_t k = model.outputs;
  const std::size_t features = model.feature_names.size();
  const double* mean = linear.mean.empty() ? nullptr : linear.mean.data();
  const double* scale = linear.scale.empty() ? nullptr : linear.scale.data();
  const double* impute = linear.impute.empty() ? nullptr : linear.impute.data();
  const auto rows = static_cast<std::int64_t>(batch.rows);

#pragma omp parallel num_threads(threads)
  {
    std::vector<double> margin(k);
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* row = batch.data + static_cast<std::size_t>(r) * batch.features;
      for (std::size_t c = 0; c < k; ++c) {
        margin[c] = detail::linear_margin(row, tables.columns.data(), features,
                                          linear.coefficients.data() + c * features,
                                          linear.intercepts[c], mean, scale, impute);
      }
      const std::size_t at = static_cast<std::size_t>(r) * k;
      if (out.margin != nullptr) {
        for (std::size_t c = 0; c < k; ++c) out.margin[at + c] = static_cast<float>(margin[c]);
      }
      if (out.points != nullptr) {
        out.points[r] = static_cast<float>(linear.points_offset + linear.points_factor * margin[0]);
      }
      if (out.probability != nullptr) {
        detail::apply_link(model.link, margin.data(), k);
        for (std::size_t c = 0; c < k; ++c) {
          out.probability[at + c] = static_cast<float>(margin[c]);
        }
      }
    }
  }
}

}  // namespace

void score(int threads, const BoundTables& tables, BatchView batch, const ScoreOutputs& out) {
  if (batch.rows == 0) return;
  if (tables.model->kind == ModelKind::Linear) {
    score_linear(threads, tables, batch, out);
    return;
  }
  const detail::TreeEnsemble& ensemble = tables.model->trees;
  const bool special = ensemble.special_splits();
  if (ensemble.sum_in_double) {
    special ? score_trees<true, double>(threads, tables, batch, out)
            : score_trees<false, double>(threads, tables, batch, out);
  } else {
    special ? score_trees<true, float>(threads, tables, batch, out)
            : score_trees<false, float>(threads, tables, batch, out);
  }
}

}  // namespace driftguard::cpu
