// CUDA backend of batch scoring. One thread scores one row: a block first stages its rows from
// the row-major batch into shared memory with coalesced loads (a padded stride, so the threads'
// reads of one feature fall in different banks), then each thread walks every tree for its row.
// Trees are packed into 8-byte nodes when the features and child offsets fit (cuML FIL's sparse8
// layout), else the CPU's 16-byte nodes; they sit in shared memory when they fit beside the rows.
// Host batches go through in chunks, two in flight: while the GPU uploads and scores one, the
// Context's threads copy the next into pinned memory (a page-locked batch is uploaded directly).
//
// Same results as cpu::score: the per-node decision is detail::goes_right, and each output's
// margin is its base margin plus the leaves of its trees in model order, summed in float (double
// for LightGBM models, whose link then runs in double on d_scratch). XGBoost
// adds the trees of all outputs in one pass, but each output's sum only ever sees its own trees,
// so summing output by output gives the same floats. Linear models run detail::linear_margin.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/cuda/detail/cuda_check.cuh"
#include "kernels/cuda/detail/device_state.cuh"
#include "kernels/cuda/detail/workspace_layout.hpp"
#include "kernels/parallel_copy.hpp"
#include "kernels/score_model.hpp"

namespace driftguard::cuda {
namespace {

using driftguard::detail::BoundTables;
using driftguard::detail::CategorySplit;
using driftguard::detail::Link;
using driftguard::detail::TreeNode;

constexpr int kThreads = 128;  // rows per block
// Rows are staged when a block's rows take at most this much shared memory.
constexpr std::size_t kStagingBudget = 64 * 1024;
// Trees are copied into shared memory when they take at most this much beside the rows.
constexpr std::size_t kSharedBudget = 96 * 1024;
// Host batches go through the GPU in chunks of about this many input bytes, two in flight.
constexpr std::size_t kChunkBytes = std::size_t{16} << 20;

// 8 bytes: threshold (or leaf value, or category split index as bits) and
// flags[31:28] | feature[27:16] | offset of the left child from this node[15:0].
struct CompactNode {
  float value;
  std::uint32_t bits;
};
constexpr std::uint32_t kCompactFeatures = 1u << 12;
constexpr std::uint32_t kCompactOffsets = 1u << 16;

struct WideView {
  using Node = TreeNode;
  static __device__ __forceinline__ std::uint32_t flags(const Node& n) { return n.feature; }
  static __device__ __forceinline__ std::uint32_t feature(const Node& n) {
    return n.feature & driftguard::detail::kFeatureMask;
  }
  static __device__ __forceinline__ std::uint32_t category(const Node& n) { return n.category; }
  static __device__ __forceinline__ std::uint32_t left(const Node& n, std::uint32_t) {
    return n.left;
  }
};

struct CompactView {
  using Node = CompactNode;
  static __device__ __forceinline__ std::uint32_t flags(const Node& n) { return n.bits; }
  static __device__ __forceinline__ std::uint32_t feature(const Node& n) {
    return (n.bits >> 16) & (kCompactFeatures - 1);
  }
  static __device__ __forceinline__ std::uint32_t category(const Node& n) {
    return __float_as_uint(n.value);
  }
  static __device__ __forceinline__ std::uint32_t left(const Node& n, std::uint32_t self) {
    return self + (n.bits & (kCompactOffsets - 1));
  }
};

// Device addresses of one call's model tables (in the DeviceState workspace).
struct TreeTables {
  const void* d_nodes;                // CompactNode or TreeNode, trees back to back
  const std::uint32_t* d_tree_begin;  // per tree in group order: first node
  const std::uint32_t* d_group_end;   // per output: end of its trees in the group order
  const float* d_base_margin;         // per output
  const CategorySplit* d_splits;
  const std::uint32_t* d_category_bits;
  const double* d_leaf_values;  // double sums: per node as d_nodes, the leaf values in double
  std::uint32_t trees;
  std::uint32_t node_count;
  bool shared_nodes;       // copy the nodes into shared memory first
  double average_divisor;  // double sums: the link reads margin / average_divisor
};

struct LinearTables {
  const double* d_coefficients;  // outputs x features
  const double* d_intercepts;
  const double* d_mean;  // null: no standardisation
  const double* d_scale;
  const double* d_impute;  // null: no imputation
  const std::uint32_t* d_columns;
  std::uint32_t features;
  double points_offset, points_factor;
};

struct RowsArgs {
  const float* d_data;
  std::size_t rows;
  std::uint32_t features;  // batch columns
  bool staged;             // rows go through shared memory
  std::uint32_t outputs;
  Link link;
  float* d_margin;       // rows x outputs; always written (scratch when the caller wants none)
  float* d_probability;  // null: not written
  float* d_points;       // null: not written
  double* d_scratch;     // linear models and double sums: rows x outputs
};

// Odd, so that the threads of a warp reading one feature of their rows hit different banks.
__host__ __device__ constexpr std::uint32_t staged_stride(std::uint32_t features) {
  return features | 1u;
}

// The block's rows [first, first + n) into s_rows with stride staged_stride, coalesced: the rows
// are one contiguous range of the batch.
__device__ void stage_rows(float* s_rows, const RowsArgs& a, std::size_t first, std::uint32_t n) {
  // 32-bit index arithmetic: staged blocks hold at most kStagingBudget bytes.
  const std::uint32_t count = n * a.features;
  const float* d_src = a.d_data + first * a.features;
  for (std::uint32_t i = threadIdx.x; i < count; i += blockDim.x) {
    const std::uint32_t r = i / a.features;
    s_rows[r * staged_stride(a.features) + (i - r * a.features)] = __ldg(d_src + i);
  }
}

__device__ const float* row_of(const float* s_rows, const RowsArgs& a, std::size_t row) {
  return a.staged ? s_rows + threadIdx.x * staged_stride(a.features) : a.d_data + row * a.features;
}

// Launch: grid ceil(rows / kThreads) x kThreads threads, one row per thread; dynamic shared
// memory holds the staged rows (when staged) then the nodes (when shared_nodes), 16-byte aligned.
template <class View, bool kSpecialSplits, typename Sum>
__global__ void __launch_bounds__(kThreads) score_trees_kernel(TreeTables t, RowsArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  auto* s_rows = reinterpret_cast<float*>(smem);
  const std::size_t row_bytes =
      a.staged ? std::size_t{kThreads} * staged_stride(a.features) * 4 : 0;
  auto* s_nodes = reinterpret_cast<typename View::Node*>(smem + (row_bytes + 15) / 16 * 16);
  const auto* d_nodes = static_cast<const typename View::Node*>(t.d_nodes);

  const std::size_t first = std::size_t{blockIdx.x} * kThreads;
  const auto n = static_cast<std::uint32_t>(a.rows - first < kThreads ? a.rows - first : kThreads);
  if (a.staged) stage_rows(s_rows, a, first, n);
  if (t.shared_nodes) {
    for (std::uint32_t i = threadIdx.x; i < t.node_count; i += blockDim.x) s_nodes[i] = d_nodes[i];
  }
  __syncthreads();
  if (threadIdx.x >= n) return;

  const std::size_t row = first + threadIdx.x;
  const float* x = row_of(s_rows, a, row);
  const typename View::Node* nodes = t.shared_nodes ? s_nodes : d_nodes;
  float* margin = a.d_margin + row * a.outputs;
  std::uint32_t tree = 0;
  for (std::uint32_t g = 0; g < a.outputs; ++g) {
    Sum acc = t.d_base_margin[g];
    for (const std::uint32_t end = t.d_group_end[g]; tree < end; ++tree) {
      const typename View::Node* root = nodes + t.d_tree_begin[tree];
      std::uint32_t i = 0;
      typename View::Node node = root[0];
      while ((View::flags(node) & driftguard::detail::kLeafBit) == 0) {
        const float v = x[View::feature(node)];
        i = View::left(node, i) + driftguard::detail::goes_right<kSpecialSplits>(
                                      View::flags(node), node.value, View::category(node), v,
                                      t.d_splits, t.d_category_bits);
        node = root[i];
      }
      if constexpr (std::is_same_v<Sum, double>) {
        acc += t.d_leaf_values[t.d_tree_begin[tree] + i];
      } else {
        acc += node.value;
      }
    }
    margin[g] = static_cast<float>(acc);
    if constexpr (std::is_same_v<Sum, double>) a.d_scratch[row * a.outputs + g] = acc;
  }
  if (a.d_probability == nullptr) return;
  float* p = a.d_probability + row * a.outputs;
  if constexpr (std::is_same_v<Sum, double>) {
    double* z = a.d_scratch + row * a.outputs;
    for (std::uint32_t g = 0; g < a.outputs; ++g) z[g] /= t.average_divisor;
    driftguard::detail::apply_link(a.link, z, a.outputs);
    for (std::uint32_t g = 0; g < a.outputs; ++g) p[g] = static_cast<float>(z[g]);
  } else {
    for (std::uint32_t g = 0; g < a.outputs; ++g) p[g] = margin[g];
    driftguard::detail::apply_link(a.link, p, a.outputs);
  }
}

// Launch: as score_trees_kernel; dynamic shared memory holds the staged rows. d_scratch holds
// each row's margins in double for the link.
__global__ void __launch_bounds__(kThreads) score_linear_kernel(LinearTables m, RowsArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  auto* s_rows = reinterpret_cast<float*>(smem);
  const std::size_t first = std::size_t{blockIdx.x} * kThreads;
  const auto n = static_cast<std::uint32_t>(a.rows - first < kThreads ? a.rows - first : kThreads);
  if (a.staged) stage_rows(s_rows, a, first, n);
  __syncthreads();
  if (threadIdx.x >= n) return;

  const std::size_t row = first + threadIdx.x;
  const float* x = row_of(s_rows, a, row);
  double* z = a.d_scratch + row * a.outputs;
  for (std::uint32_t k = 0; k < a.outputs; ++k) {
    z[k] = driftguard::detail::linear_margin(x, m.d_columns, m.features,
                                             m.d_coefficients + std::size_t{k} * m.features,
                                             m.d_intercepts[k], m.d_mean, m.d_scale, m.d_impute);
    a.d_margin[row * a.outputs + k] = static_cast<float>(z[k]);
  }
  if (a.d_points != nullptr) {
    // Rounded twice, as on the CPU: nvcc would otherwise contract this into one fma.
    a.d_points[row] =
        static_cast<float>(__dadd_rn(m.points_offset, __dmul_rn(m.points_factor, z[0])));
  }
  if (a.d_probability == nullptr) return;
  driftguard::detail::apply_link(a.link, z, a.outputs);
  for (std::uint32_t k = 0; k < a.outputs; ++k) {
    a.d_probability[row * a.outputs + k] = static_cast<float>(z[k]);
  }
}

// The model's tables in one host image, uploaded to the workspace with one copy.
struct ModelImage {
  Layout layout;
  std::vector<std::byte> bytes;
  std::size_t nodes = 0, tree_begin = 0, group_end = 0, base = 0, splits = 0, category_bits = 0;
  std::size_t leaf_values = 0;
  std::size_t coefficients = 0, intercepts = 0, mean = 0, scale = 0, impute = 0, columns = 0;
  bool compact = false;
  std::uint32_t node_count = 0;  // the nodes of the trees in the image, as laid out
  std::size_t node_bytes = 0;

  template <class T>
  std::size_t put(const std::vector<T>& values) {
    const std::size_t at = layout.add<T>(values.size());
    bytes.resize(layout.bytes());
    if (!values.empty()) std::memcpy(bytes.data() + at, values.data(), values.size() * sizeof(T));
    return at;
  }
};

// Per-node values (nodes, leaf values) with the trees taken in `order`.
template <class T>
std::vector<T> in_tree_order(const std::vector<T>& per_node,
                             const std::vector<std::uint32_t>& tree_offset,
                             const std::vector<std::uint32_t>& order) {
  std::vector<T> out;
  out.reserve(per_node.size());
  for (const std::uint32_t t : order) {
    out.insert(out.end(), per_node.begin() + tree_offset[t], per_node.begin() + tree_offset[t + 1]);
  }
  return out;
}

// Trees in group order (stable, so each output keeps the model's order) and packed nodes.
ModelImage tree_image(const BoundTables& tables) {
  const driftguard::detail::TreeEnsemble& e = tables.model->trees;
  const std::size_t trees = e.tree_group.size(), outputs = tables.model->outputs;
  std::vector<std::uint32_t> order(trees);
  for (std::uint32_t t = 0; t < trees; ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return e.tree_group[a] < e.tree_group[b];
  });
  std::vector<std::uint32_t> group_end(outputs, 0), tree_begin(trees);
  for (std::uint32_t t : order) ++group_end[e.tree_group[t]];
  for (std::size_t g = 1; g < outputs; ++g) group_end[g] += group_end[g - 1];

  ModelImage image;
  image.compact = tables.batch_features <= kCompactFeatures;
  for (std::size_t t = 0; image.compact && t < trees; ++t) {
    for (std::uint32_t i = 0; i < e.tree_offset[t + 1] - e.tree_offset[t]; ++i) {
      const TreeNode& n = tables.nodes[e.tree_offset[t] + i];
      if ((n.feature & driftguard::detail::kLeafBit) == 0 && n.left - i >= kCompactOffsets) {
        image.compact = false;
      }
    }
  }
  std::uint32_t next = 0;
  for (std::size_t k = 0; k < trees; ++k) {
    const std::uint32_t t = order[k];
    tree_begin[k] = next;
    next += e.tree_offset[t + 1] - e.tree_offset[t];
  }
  image.node_count = next;
  if (image.compact) {
    std::vector<CompactNode> packed;
    packed.reserve(tables.nodes.size());
    for (const std::uint32_t t : order) {
      for (std::uint32_t i = 0; i < e.tree_offset[t + 1] - e.tree_offset[t]; ++i) {
        const TreeNode& n = tables.nodes[e.tree_offset[t] + i];
        const std::uint32_t flags = n.feature & ~driftguard::detail::kFeatureMask;
        if (flags & driftguard::detail::kLeafBit) {
          packed.push_back({n.value, flags});
          continue;
        }
        float value = n.value;
        if (flags & driftguard::detail::kCategoricalBit) std::memcpy(&value, &n.category, 4);
        packed.push_back(
            {value, flags | (n.feature & driftguard::detail::kFeatureMask) << 16 | (n.left - i)});
      }
    }
    image.nodes = image.put(packed);
    image.node_bytes = packed.size() * sizeof(CompactNode);
  } else {
    const std::vector<TreeNode> nodes = in_tree_order(tables.nodes, e.tree_offset, order);
    image.nodes = image.put(nodes);
    image.node_bytes = nodes.size() * sizeof(TreeNode);
  }
  image.tree_begin = image.put(tree_begin);
  image.group_end = image.put(group_end);
  image.base = image.put(e.base_margin);
  image.splits = image.put(e.category_splits);
  image.category_bits = image.put(e.category_bits);
  if (e.sum_in_double) {
    image.leaf_values = image.put(in_tree_order(e.leaf_values, e.tree_offset, order));
  }
  return image;
}

ModelImage linear_image(const BoundTables& tables) {
  const driftguard::detail::LinearModel& m = tables.model->linear;
  ModelImage image;
  image.coefficients = image.put(m.coefficients);
  image.intercepts = image.put(m.intercepts);
  image.mean = image.put(m.mean);
  image.scale = image.put(m.scale);
  image.impute = image.put(m.impute);
  image.columns = image.put(tables.columns);
  return image;
}

class Scorer {
 public:
  Scorer(DeviceState& state, const BoundTables& tables)
      : state_(state),
        tables_(tables),
        linear_(tables.model->kind == ModelKind::Linear),
        image_(linear_ ? linear_image(tables) : tree_image(tables)) {
    const std::size_t f = tables.batch_features;
    const std::size_t rows_bytes = std::size_t{kThreads} * staged_stride(f) * sizeof(float);
    staged_ = rows_bytes <= kStagingBudget;
    row_bytes_ = staged_ ? (rows_bytes + 15) / 16 * 16 : 0;
    shared_nodes_ = !linear_ && row_bytes_ + image_.node_bytes <= kSharedBudget;
    shared_bytes_ = row_bytes_ + (shared_nodes_ ? image_.node_bytes : 0);
  }

  // Scores rows [0, rows) of d_data into the d_ outputs (device memory).
  void launch(const float* d_data, std::size_t rows, float* d_margin, float* d_probability,
              float* d_points, double* d_scratch, std::byte* d_model) {
    const driftguard::detail::ModelData& model = *tables_.model;
    const RowsArgs args{d_data,
                        rows,
                        static_cast<std::uint32_t>(tables_.batch_features),
                        staged_,
                        static_cast<std::uint32_t>(model.outputs),
                        model.link,
                        d_margin,
                        d_probability,
                        d_points,
                        d_scratch};
    const auto grid = static_cast<unsigned>((rows + kThreads - 1) / kThreads);
    if (linear_) {
      const driftguard::detail::LinearModel& m = model.linear;
      const LinearTables t{at<double>(d_model, image_.coefficients),
                           at<double>(d_model, image_.intercepts),
                           m.mean.empty() ? nullptr : at<double>(d_model, image_.mean),
                           m.scale.empty() ? nullptr : at<double>(d_model, image_.scale),
                           m.impute.empty() ? nullptr : at<double>(d_model, image_.impute),
                           at<std::uint32_t>(d_model, image_.columns),
                           static_cast<std::uint32_t>(model.feature_names.size()),
                           m.points_offset,
                           m.points_factor};
      run(score_linear_kernel, grid, "score_linear_kernel", t, args);
      return;
    }
    const driftguard::detail::TreeEnsemble& e = model.trees;
    const TreeTables t{at<void>(d_model, image_.nodes),
                       at<std::uint32_t>(d_model, image_.tree_begin),
                       at<std::uint32_t>(d_model, image_.group_end),
                       at<float>(d_model, image_.base),
                       at<CategorySplit>(d_model, image_.splits),
                       at<std::uint32_t>(d_model, image_.category_bits),
                       at<double>(d_model, image_.leaf_values),
                       static_cast<std::uint32_t>(e.tree_group.size()),
                       image_.node_count,
                       shared_nodes_,
                       e.average_divisor};
    if (e.sum_in_double) {
      launch_trees<double>(grid, t, args);
    } else {
      launch_trees<float>(grid, t, args);
    }
  }

  const ModelImage& image() const noexcept { return image_; }
  // Rows x outputs doubles of d_scratch per launch: linear models and double-sum ensembles.
  bool needs_scratch() const noexcept { return linear_ || tables_.model->trees.sum_in_double; }

 private:
  template <typename Sum>
  void launch_trees(unsigned grid, const TreeTables& t, const RowsArgs& args) {
    const bool special = tables_.model->trees.special_splits();
    if (image_.compact) {
      if (special) {
        run(score_trees_kernel<CompactView, true, Sum>, grid, "score_trees_kernel", t, args);
      } else {
        run(score_trees_kernel<CompactView, false, Sum>, grid, "score_trees_kernel", t, args);
      }
    } else if (special) {
      run(score_trees_kernel<WideView, true, Sum>, grid, "score_trees_kernel", t, args);
    } else {
      run(score_trees_kernel<WideView, false, Sum>, grid, "score_trees_kernel", t, args);
    }
  }

  template <class Tables>
  void run(void (*kernel)(Tables, RowsArgs), unsigned grid, const char* name, const Tables& t,
           const RowsArgs& args) {
    // Raises the kernel's dynamic shared-memory limit when needed (cached per kernel).
    state_.blocks_per_sm(reinterpret_cast<const void*>(kernel), kThreads, shared_bytes_);
    kernel<<<grid, kThreads, shared_bytes_, state_.stream()>>>(t, args);
    DG_CUDA_TRY_LAUNCH(name);
  }

  DeviceState& state_;
  const BoundTables& tables_;
  bool linear_;
  ModelImage image_;
  bool staged_ = false, shared_nodes_ = false;
  std::size_t row_bytes_ = 0, shared_bytes_ = 0;
};

}  // namespace

void score(DeviceState& state, int host_threads, const BoundTables& tables, BatchView batch,
           const ScoreOutputs& out) {
  if (batch.rows == 0) return;
  DeviceGuard guard(state.device());
  state.follow_caller(batch);
  Scorer scorer(state, tables);
  const cudaStream_t stream = state.stream();
  const std::size_t k = tables.model->outputs, f = tables.batch_features;
  const std::size_t model_bytes = scorer.image().bytes.size();
  const bool device = batch.space == MemorySpace::Device;
  const std::size_t chunk =
      device ? batch.rows : std::max<std::size_t>(1, std::min(batch.rows, kChunkBytes / (f * 4)));
  const std::size_t chunks = (batch.rows + chunk - 1) / chunk;
  constexpr int kSlots = DeviceState::kStagingSlots;
  const int slots = device ? 0 : static_cast<int>(std::min<std::size_t>(kSlots, chunks));

  // Workspace: the model; margins (unless the caller's device buffer takes them), probabilities
  // and points (host batches) and the scratch, which the chunks share: their kernels and
  // downloads run in order on one stream. Per staging slot, a chunk's input: the upload of the
  // next chunk (copy stream) overlaps the kernel of this one.
  Layout layout;
  const std::size_t model_at = layout.add<std::byte>(model_bytes);
  const std::size_t margin_at = layout.add<float>(device && out.margin != nullptr ? 0 : chunk * k);
  const std::size_t prob_at = layout.add<float>(device ? 0 : chunk * k);
  const std::size_t points_at = layout.add<float>(device ? 0 : chunk);
  const std::size_t scratch_at = layout.add<double>(scorer.needs_scratch() ? chunk * k : 0);
  std::array<std::size_t, kSlots> input_at{};
  for (int s = 0; s < slots; ++s) input_at[s] = layout.add<float>(chunk * f);
  // Pinned staging: the model, then per slot a chunk's input and its downloaded outputs, so that
  // the CPU fills one slot and empties its last outputs while the GPU works on the other.
  Layout staging;
  const std::size_t h_model_at = staging.add<std::byte>(model_bytes);
  std::array<std::size_t, kSlots> h_input_at{}, h_margin_at{}, h_prob_at{}, h_points_at{};
  for (int s = 0; s < slots; ++s) {
    h_input_at[s] = staging.add<float>(chunk * f);
    h_margin_at[s] = staging.add<float>(out.margin != nullptr ? chunk * k : 0);
    h_prob_at[s] = staging.add<float>(out.probability != nullptr ? chunk * k : 0);
    h_points_at[s] = staging.add<float>(out.points != nullptr ? chunk : 0);
  }
  std::byte* d_work = state.device_workspace(layout.bytes());
  std::byte* h_stage = state.host_staging(staging.bytes());
  std::memcpy(h_stage + h_model_at, scorer.image().bytes.data(), model_bytes);
  DG_CUDA_TRY(cudaMemcpyAsync(d_work + model_at, h_stage + h_model_at, model_bytes,
                              cudaMemcpyHostToDevice, stream));

  if (device) {
    float* d_margin = out.margin != nullptr ? out.margin : at<float>(d_work, margin_at);
    scorer.launch(batch.data, batch.rows, d_margin, out.probability, out.points,
                  at<double>(d_work, scratch_at), d_work + model_at);
    DG_CUDA_TRY(cudaStreamSynchronize(stream));
    return;
  }

  // A page-locked batch (HostBuffer) is uploaded from where it lies.
  const bool source_page_locked = is_page_locked(batch.data);
  auto rows_of = [&](std::size_t c) { return std::min(chunk, batch.rows - c * chunk); };
  // Copies chunk c's downloaded outputs out of its pinned slot into the caller's arrays.
  auto drain = [&](std::size_t c) {
    const int s = static_cast<int>(c % kSlots);
    DG_CUDA_TRY(cudaEventSynchronize(state.slot_events(s).d2h_done));
    const std::size_t n = rows_of(c), first = c * chunk;
    const auto copy_out = [&](float* h_dst, std::size_t h_at, std::size_t width) {
      if (h_dst != nullptr) {
        std::memcpy(h_dst + first * width, h_stage + h_at, n * width * sizeof(float));
      }
    };
    copy_out(out.margin, h_margin_at[s], k);
    copy_out(out.probability, h_prob_at[s], k);
    copy_out(out.points, h_points_at[s], 1);
  };
  for (std::size_t c = 0; c < chunks; ++c) {
    const int s = static_cast<int>(c % kSlots);
    const DeviceState::SlotEvents& events = state.slot_events(s);
    const std::size_t n = rows_of(c), bytes = n * f * sizeof(float);
    // The slot's previous chunk must be out of its pinned buffers before they are reused.
    DG_CUDA_TRY(cudaEventSynchronize(events.h2d_done));
    if (c >= kSlots) drain(c - kSlots);
    const float* h_source = batch.data + c * chunk * f;
    if (!source_page_locked) {
      float* h_input = at<float>(h_stage, h_input_at[s]);
      driftguard::detail::parallel_copy(host_threads, h_input, h_source, bytes);
      h_source = h_input;
    }
    float* d_input = at<float>(d_work, input_at[s]);
    DG_CUDA_TRY(cudaStreamWaitEvent(state.copy_stream(), events.compute_done, 0));
    DG_CUDA_TRY(
        cudaMemcpyAsync(d_input, h_source, bytes, cudaMemcpyHostToDevice, state.copy_stream()));
    DG_CUDA_TRY(cudaEventRecord(events.h2d_done, state.copy_stream()));
    DG_CUDA_TRY(cudaStreamWaitEvent(stream, events.h2d_done, 0));
    scorer.launch(d_input, n, at<float>(d_work, margin_at),
                  out.probability != nullptr ? at<float>(d_work, prob_at) : nullptr,
                  out.points != nullptr ? at<float>(d_work, points_at) : nullptr,
                  at<double>(d_work, scratch_at), d_work + model_at);
    DG_CUDA_TRY(cudaEventRecord(events.compute_done, stream));
    const auto download = [&](const float* h_dst, std::size_t h_at, std::size_t d_at,
                              std::size_t count) {
      if (h_dst == nullptr) return;
      DG_CUDA_TRY(cudaMemcpyAsync(h_stage + h_at, d_work + d_at, count * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream));
    };
    download(out.margin, h_margin_at[s], margin_at, n * k);
    download(out.probability, h_prob_at[s], prob_at, n * k);
    download(out.points, h_points_at[s], points_at, n);
    DG_CUDA_TRY(cudaEventRecord(events.d2h_done, stream));
  }
  for (std::size_t c = chunks > kSlots ? chunks - kSlots : 0; c < chunks; ++c) drain(c);
}

}  // namespace driftguard::cuda
