// CUDA backend of the batch pass: validation and per-feature histograms in one read of a
// row-major float32 batch, device-resident or staged from the host through pinned memory.
//
// Exactness: every comparison is float against float on the tables of detail::PreparedPass (bounds
// and edges rounded towards the value they guard), and the per-value decisions are
// detail::cell_flags / detail::slot_from_count, shared with the CPU backend, so both give the same
// bits.
#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/cuda/detail/bin_search.hpp"
#include "kernels/cuda/detail/cuda_check.cuh"
#include "kernels/cuda/detail/device_state.cuh"
#include "kernels/cuda/detail/workspace_layout.hpp"
#include "kernels/parallel_copy.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard::cuda {

namespace {

using driftguard::detail::FeatureBins;
using driftguard::detail::FeatureRule;
using Count = unsigned long long;  // the 64-bit type of atomicAdd

// Blocks have about kTargetThreads threads; a row wider than kMaxColsPerPass vectors is read in
// several column passes.
constexpr int kMaxThreads = 512;
constexpr std::uint32_t kTargetThreads = 256;
constexpr std::uint32_t kMaxColsPerPass = 512;
// Rows each thread loads before it uses the first: independent loads in flight.
constexpr int kUnroll = 4;
// A slot of a block's uint32 shared counts gets at most one count per row.
constexpr std::size_t kMaxRowsPerBlock = std::size_t{1} << 30;
// Host batches go through the GPU in chunks of about this many input bytes.
constexpr std::size_t kChunkBytes = std::size_t{8} << 20;
// Tables larger than this stay in global memory, so that two blocks still fit on an SM.
constexpr std::size_t kSharedTablesBudget = 96 * 1024;
constexpr std::uint32_t kNoSlot = 0xffffffffu;
constexpr int kFinishThreads = 256;

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Device views of one call's tables and counts (all in the DeviceState workspace).
struct PassTables {
  const FeatureBins* d_bins;  // point offsets refer to d_points' layout (padded or not)
  const float* d_points;
  const FeatureRule* d_rules;
  const float* d_codes;
  std::uint32_t point_count;
  std::uint32_t code_count;
  std::uint32_t total_slots;
  Count* d_slot_counts;  // total_slots
  Count* d_flag_counts;  // features * kCellFlagCount
  Count* d_rows_ok;      // 1
};

// How one launch walks its rows. A thread owns one column of `vec`-float vectors, so a row is
// read by `cols_per_pass` neighbouring threads and a block reads `rows_per_pass` rows at once.
struct PassShape {
  const float* d_data;
  std::size_t rows;
  std::size_t rows_per_block;
  std::uint32_t features;
  std::uint32_t vec;
  std::uint32_t vec_cols;  // features / vec
  std::uint32_t cols_per_pass;
  std::uint32_t rows_per_pass;
  std::uint32_t warp_rows;     // 1: a row's threads share a warp (vec_cols divides 32)
  std::uint8_t* d_cell_flags;  // null: not written
  std::uint8_t* d_row_ok;      // null: not written
  std::uint8_t* d_row_bad;     // per-row scratch for finish_rows_kernel when !warp_rows
};

__device__ __forceinline__ float component(float v, int) { return v; }
__device__ __forceinline__ float component(const float4& v, int k) {
  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}

// The part of a FeatureRule a thread keeps in registers for its features.
struct RuleRegs {
  static constexpr std::uint32_t kCategorical = 1u << 8;
  float min_up;
  float max_down;
  std::uint32_t bits;  // row_bad_flags | kCategorical

  __device__ static RuleRegs of(const FeatureRule& rule) {
    return {rule.min_up, rule.max_down,
            rule.row_bad_flags | (rule.categorical ? kCategorical : 0u)};
  }
};

// Numeric features whose finite value lies inside its bounds, the common case, decide from
// registers; every other value gets detail::cell_flags with the full rule.
__device__ __forceinline__ std::uint32_t cell_flags_of(float x, const RuleRegs& regs,
                                                       const FeatureRule* d_rule,
                                                       const float* codes) {
  if (!(regs.bits & RuleRegs::kCategorical) && x >= regs.min_up && x <= regs.max_down &&
      fabsf(x) != INFINITY) {
    return 0;
  }
  const FeatureRule rule = *d_rule;
  return driftguard::detail::cell_flags(x, rule, codes + rule.code_offset);
}

template <int kSteps>
__device__ __forceinline__ std::uint32_t slot_of_value(float x, const FeatureBins& bins,
                                                       const float* points) {
  if constexpr (kSteps > 0) {
    return slot_of_padded<kSteps>(x, bins, points + bins.point_offset);
  } else {
    return driftguard::detail::slot_of(x, bins, points + bins.point_offset);
  }
}

// Launch: grid = ceil(rows / rows_per_block) blocks of rows_per_pass * cols_per_pass threads;
// dynamic shared memory holds the tables when kSharedTables (layout: slot counts, flag counts,
// points, codes). Thread t reads vector column t % cols_per_pass of rows t / cols_per_pass +
// k * rows_per_pass, so a warp reads consecutive memory and a thread's features never change
// within a column pass: its per-feature rules and run lengths stay in registers.
// Invariants: rows_per_block <= kMaxRowsPerBlock (uint32 counts cannot wrap); warp_rows implies
// cols_per_pass == vec_cols and whole warps.
template <bool kValidate, bool kHistogram, int kVec, bool kSharedTables, int kSteps>
__global__ void __launch_bounds__(kMaxThreads, 1)
    batch_pass_kernel(const PassShape shape, const PassTables tables) {
  using Vector = std::conditional_t<kVec == 4, float4, float>;
  using WarpReduce = cub::WarpReduce<std::uint32_t>;
  __shared__ typename WarpReduce::TempStorage warp_reduce_storage[kMaxThreads / 32];
  extern __shared__ __align__(16) unsigned char shared_tables[];

  const std::uint32_t flag_slots = kValidate ? shape.features * kCellFlagCount : 0;
  std::uint32_t* s_slots = reinterpret_cast<std::uint32_t*>(shared_tables);
  std::uint32_t* s_flags = s_slots + (kHistogram ? tables.total_slots : 0);
  float* s_points = reinterpret_cast<float*>(s_flags + flag_slots);
  float* s_codes = s_points + (kHistogram ? tables.point_count : 0);
  const unsigned tid = threadIdx.x;
  if constexpr (kSharedTables) {
    if constexpr (kHistogram) {
      for (std::uint32_t i = tid; i < tables.total_slots; i += blockDim.x) s_slots[i] = 0;
      for (std::uint32_t i = tid; i < tables.point_count; i += blockDim.x) {
        s_points[i] = tables.d_points[i];
      }
    }
    if constexpr (kValidate) {
      for (std::uint32_t i = tid; i < flag_slots; i += blockDim.x) s_flags[i] = 0;
      for (std::uint32_t i = tid; i < tables.code_count; i += blockDim.x) {
        s_codes[i] = tables.d_codes[i];
      }
    }
    __syncthreads();
  }
  const float* points = kSharedTables ? s_points : tables.d_points;
  const float* codes = kSharedTables ? s_codes : tables.d_codes;
  auto add_slot = [&](std::uint32_t slot, std::uint32_t n) {
    if constexpr (kSharedTables) {
      atomicAdd(&s_slots[slot], n);
    } else {
      atomicAdd(&tables.d_slot_counts[slot], Count{n});
    }
  };
  // Adds n cells with flags `cell` of `feature`.
  auto add_flags = [&](std::uint32_t feature, std::uint32_t cell, std::uint32_t n) {
#pragma unroll
    for (std::uint32_t j = 0; j < kCellFlagCount; ++j) {
      if (!((cell >> j) & 1u)) continue;
      if constexpr (kSharedTables) {
        atomicAdd(&s_flags[feature * kCellFlagCount + j], n);
      } else {
        atomicAdd(&tables.d_flag_counts[feature * kCellFlagCount + j], Count{n});
      }
    }
  };

  const std::size_t row_begin = std::size_t{blockIdx.x} * shape.rows_per_block;
  const std::size_t row_end = min(shape.rows, row_begin + shape.rows_per_block);
  const std::uint32_t row_lane = tid / shape.cols_per_pass;
  const std::uint32_t col_lane = tid % shape.cols_per_pass;
  // The loop below is bounded by the warp's first row, so all lanes of a warp take the same
  // number of iterations and can meet in the ballot.
  const std::uint32_t warp_row_lane = (tid & ~31u) / shape.cols_per_pass;
  const std::size_t row_step = shape.rows_per_pass;
  const std::size_t pitch = shape.features;
  const unsigned lane = tid & 31u;
  const unsigned row_lane_mask = shape.vec_cols >= 32 ? 0xffffffffu : (1u << shape.vec_cols) - 1u;
  std::uint32_t ok_rows = 0;

  for (std::uint32_t col0 = 0; col0 < shape.vec_cols; col0 += shape.cols_per_pass) {
    const std::uint32_t col = col0 + col_lane;
    const bool col_ok = col < shape.vec_cols;
    const std::uint32_t first_feature = (col_ok ? col : 0) * kVec;
    // Run lengths: the last slot (flags) seen in each of the thread's features and how many
    // values in a row had it. A value like the previous one costs no atomic, so a column whose
    // values share one bin (or one flag, such as all missing) never contends on a counter.
    FeatureBins bins[kVec];
    RuleRegs rules[kVec];
    std::uint32_t last_slot[kVec];
    std::uint32_t slot_run[kVec];
    std::uint32_t last_cell[kVec];
    std::uint32_t cell_run[kVec];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if constexpr (kHistogram) bins[k] = tables.d_bins[first_feature + k];
      if constexpr (kValidate) rules[k] = RuleRegs::of(tables.d_rules[first_feature + k]);
      last_slot[k] = kNoSlot;
      slot_run[k] = 0;
      last_cell[k] = 0;
      cell_run[k] = 0;
    }

    for (std::size_t warp_row = row_begin + warp_row_lane; warp_row < row_end;
         warp_row += kUnroll * row_step) {
      const std::size_t first_row = warp_row - warp_row_lane + row_lane;
      Vector x[kUnroll];
      bool valid[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const std::size_t row = first_row + u * row_step;
        valid[u] = col_ok && row < row_end;
        x[u] = valid[u] ? __ldcs(reinterpret_cast<const Vector*>(shape.d_data + row * pitch +
                                                                 first_feature))
                        : Vector{};
      }
      // Pure per-value work first, so the compiler can overlap the searches of all values;
      // counting (atomics) follows.
      std::uint32_t slot[kUnroll][kVec];
      std::uint32_t cells[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        cells[u] = 0;
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          const float v = component(x[u], k);
          if constexpr (kHistogram) {
            slot[u][k] = bins[k].slot_offset + slot_of_value<kSteps>(v, bins[k], points);
          }
          if constexpr (kValidate) {
            cells[u] |= cell_flags_of(v, rules[k], tables.d_rules + first_feature + k, codes)
                        << (8 * k);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const std::size_t row = first_row + u * row_step;
        std::uint32_t bad = 0;
        if (valid[u]) {
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            if constexpr (kHistogram) {
              if (slot[u][k] != last_slot[k]) {
                if (slot_run[k] != 0) add_slot(last_slot[k], slot_run[k]);
                last_slot[k] = slot[u][k];
                slot_run[k] = 0;
              }
              ++slot_run[k];
            }
            if constexpr (kValidate) {
              const std::uint32_t cell = (cells[u] >> (8 * k)) & 0xffu;
              if (cell != 0) {
                bad |= cell & rules[k].bits;
                if (cell != last_cell[k]) {
                  if (cell_run[k] != 0) add_flags(first_feature + k, last_cell[k], cell_run[k]);
                  last_cell[k] = cell;
                  cell_run[k] = 0;
                }
                ++cell_run[k];
              }
            }
          }
          if constexpr (kValidate) {
            if (shape.d_cell_flags != nullptr) {
              std::uint8_t* out = shape.d_cell_flags + row * pitch + first_feature;
              if constexpr (kVec == 4) {
                *reinterpret_cast<std::uint32_t*>(out) = cells[u];
              } else {
                *out = static_cast<std::uint8_t>(cells[u]);
              }
            }
          }
        }
        if constexpr (kValidate) {
          if (shape.warp_rows) {
            // A row's threads are vec_cols adjacent lanes; the first of them (col_lane 0) reads
            // their bits.
            const unsigned bad_lanes = __ballot_sync(0xffffffffu, bad != 0);
            if (valid[u] && col_lane == 0) {
              const bool ok = ((bad_lanes >> lane) & row_lane_mask) == 0;
              ok_rows += ok ? 1u : 0u;
              if (shape.d_row_ok != nullptr) shape.d_row_ok[row] = ok ? 1 : 0;
            }
          } else if (bad != 0) {
            // Every writer stores the same value; finish_rows_kernel reads it after this grid.
            shape.d_row_bad[row] = 1;
          }
        }
      }
    }

#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if constexpr (kHistogram) {
        if (slot_run[k] != 0) add_slot(last_slot[k], slot_run[k]);
      }
      if constexpr (kValidate) {
        if (cell_run[k] != 0) add_flags(first_feature + k, last_cell[k], cell_run[k]);
      }
    }
  }

  if constexpr (kValidate) {
    if (shape.warp_rows) {
      const std::uint32_t warp_ok = WarpReduce(warp_reduce_storage[tid / 32]).Sum(ok_rows);
      if (lane == 0 && warp_ok != 0) atomicAdd(tables.d_rows_ok, Count{warp_ok});
    }
  }
  if constexpr (kSharedTables) {
    __syncthreads();
    if constexpr (kHistogram) {
      for (std::uint32_t i = tid; i < tables.total_slots; i += blockDim.x) {
        if (s_slots[i] != 0) atomicAdd(&tables.d_slot_counts[i], Count{s_slots[i]});
      }
    }
    if constexpr (kValidate) {
      for (std::uint32_t i = tid; i < flag_slots; i += blockDim.x) {
        if (s_flags[i] != 0) atomicAdd(&tables.d_flag_counts[i], Count{s_flags[i]});
      }
    }
  }
}

// Launch: any grid of kFinishThreads-thread blocks, grid-stride over rows (one byte each).
// Turns the per-row "bad" bytes of batch_pass_kernel into row_ok and adds the ok rows.
__global__ void __launch_bounds__(kFinishThreads)
    finish_rows_kernel(const std::uint8_t* d_row_bad, std::size_t rows, std::uint8_t* d_row_ok,
                       Count* d_rows_ok) {
  using BlockReduce = cub::BlockReduce<std::uint32_t, kFinishThreads>;
  __shared__ typename BlockReduce::TempStorage storage;
  std::uint32_t ok_rows = 0;
  for (std::size_t row = std::size_t{blockIdx.x} * kFinishThreads + threadIdx.x; row < rows;
       row += std::size_t{gridDim.x} * kFinishThreads) {
    const bool ok = d_row_bad[row] == 0;
    ok_rows += ok ? 1u : 0u;
    if (d_row_ok != nullptr) d_row_ok[row] = ok ? 1 : 0;
  }
  const std::uint32_t block_ok = BlockReduce(storage).Sum(ok_rows);
  if (threadIdx.x == 0 && block_ok != 0) atomicAdd(d_rows_ok, Count{block_ok});
}

// Where the tables live and how bins are searched for one call.
struct TablePlan {
  bool shared = false;  // tables and counts in shared memory
  int steps = 0;        // padded search steps; 0 = detail::slot_of over unpadded points
  std::size_t shared_bytes = 0;
};

TablePlan plan_tables(const DeviceState& state, bool validate, const detail::PreparedPass& prep,
                      std::size_t features) {
  std::uint32_t max_points = 0;
  for (const FeatureBins& b : prep.bins) max_points = std::max(max_points, b.point_count);
  const std::size_t fixed_words =
      prep.total_slots + (validate ? features * kCellFlagCount + prep.codes.size() : 0);
  const std::size_t budget =
      std::min<std::size_t>(kSharedTablesBudget, state.properties().sharedMemPerBlockOptin - 1024);
  TablePlan plan;
  const int steps = prep.bins.empty() ? 0 : padded_steps_for(max_points);
  if (steps > 0) {
    const std::size_t bytes = (fixed_words + prep.bins.size() * padded_points(steps)) * 4;
    if (bytes <= budget) return {true, steps, bytes};
  }
  const std::size_t bytes = (fixed_words + prep.points.size()) * 4;
  if (bytes <= budget) return {true, 0, bytes};
  return plan;
}

template <class Kernel>
void launch_kernel(DeviceState& state, Kernel kernel, PassShape shape, const PassTables& tables,
                   std::size_t shared_bytes) {
  const std::uint32_t threads = shape.rows_per_pass * shape.cols_per_pass;
  const int per_sm = state.blocks_per_sm(reinterpret_cast<const void*>(kernel),
                                         static_cast<int>(threads), shared_bytes);
  // One wave of equal blocks: each block sets up and flushes its tables once.
  const std::size_t resident =
      static_cast<std::size_t>(std::max(per_sm, 1)) * state.properties().multiProcessorCount;
  std::size_t blocks =
      std::min(resident, ceil_div(shape.rows, std::size_t{shape.rows_per_pass} * kUnroll));
  blocks = std::max(blocks, ceil_div(shape.rows, kMaxRowsPerBlock));
  shape.rows_per_block = ceil_div(shape.rows, blocks);
  blocks = ceil_div(shape.rows, shape.rows_per_block);
  kernel<<<static_cast<unsigned>(blocks), threads, shared_bytes, state.stream()>>>(shape, tables);
  DG_CUDA_TRY_LAUNCH("batch_pass_kernel");
}

template <bool kValidate, bool kHistogram, int kVec>
void launch_vec(DeviceState& state, const PassShape& shape, const PassTables& tables,
                const TablePlan& plan) {
  if (!plan.shared) {
    launch_kernel(state, batch_pass_kernel<kValidate, kHistogram, kVec, false, 0>, shape, tables,
                  0);
    return;
  }
  if constexpr (kHistogram) {
    if (plan.steps == 4) {
      launch_kernel(state, batch_pass_kernel<kValidate, kHistogram, kVec, true, 4>, shape, tables,
                    plan.shared_bytes);
      return;
    }
    if (plan.steps == 7) {
      launch_kernel(state, batch_pass_kernel<kValidate, kHistogram, kVec, true, 7>, shape, tables,
                    plan.shared_bytes);
      return;
    }
  }
  launch_kernel(state, batch_pass_kernel<kValidate, kHistogram, kVec, true, 0>, shape, tables,
                plan.shared_bytes);
}

template <bool kValidate, bool kHistogram>
void launch_pass(DeviceState& state, const PassShape& shape, const PassTables& tables,
                 const TablePlan& plan) {
  if (shape.vec == 4) {
    launch_vec<kValidate, kHistogram, 4>(state, shape, tables, plan);
  } else {
    launch_vec<kValidate, kHistogram, 1>(state, shape, tables, plan);
  }
}

// The thread arrangement for `features` columns read `vec` floats at a time.
PassShape make_shape(std::size_t features, std::uint32_t vec) {
  PassShape shape{};
  shape.features = static_cast<std::uint32_t>(features);
  shape.vec = vec;
  shape.vec_cols = static_cast<std::uint32_t>(features / vec);
  const std::uint32_t col_passes =
      static_cast<std::uint32_t>(ceil_div(shape.vec_cols, kMaxColsPerPass));
  shape.cols_per_pass = static_cast<std::uint32_t>(ceil_div(shape.vec_cols, col_passes));
  shape.rows_per_pass = std::max<std::uint32_t>(1, kTargetThreads / shape.cols_per_pass);
  shape.warp_rows = shape.vec_cols <= 32 && 32 % shape.vec_cols == 0 ? 1 : 0;
  return shape;
}

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace

void batch_pass(DeviceState& state, int host_threads, const detail::BatchPassArgs& args) {
  const BatchView& batch = args.batch;
  const bool validate = args.rules != nullptr;
  const bool histogram = args.spec != nullptr;
  if (batch.rows == 0 || (!validate && !histogram)) return;

  DeviceGuard guard(state.device());
  state.follow_caller(batch);
  detail::PreparedPass prep(args);
  const std::size_t rows = batch.rows;
  const std::size_t features = batch.features;
  const bool host = batch.space == MemorySpace::Host;
  std::uint8_t* cell_flags = validate ? args.masks.cell_flags : nullptr;
  std::uint8_t* row_ok = validate ? args.masks.row_ok : nullptr;

  // Host chunks live in our own aligned buffers; a device batch is read where it is.
  const bool vec_aligned =
      host || (aligned(batch.data, 16) && (cell_flags == nullptr || aligned(cell_flags, 4)));
  const std::uint32_t vec = features % 4 == 0 && vec_aligned ? 4 : 1;
  PassShape shape = make_shape(features, vec);
  const std::size_t chunk_rows =
      host ? std::clamp<std::size_t>(kChunkBytes / (features * sizeof(float)), 1, rows) : rows;

  const TablePlan plan = plan_tables(state, validate, prep, features);
  if (plan.steps > 0) pad_points(plan.steps, prep.bins, prep.points);

  Layout tables_layout;
  const std::size_t bins_at = tables_layout.add<FeatureBins>(prep.bins.size());
  const std::size_t rules_at = tables_layout.add<FeatureRule>(prep.rules.size());
  const std::size_t points_at = tables_layout.add<float>(prep.points.size());
  const std::size_t codes_at = tables_layout.add<float>(prep.codes.size());
  const std::size_t flag_slots = validate ? features * kCellFlagCount : 0;
  const std::size_t count_slots = prep.total_slots + flag_slots + 1;

  Layout device;
  const std::size_t d_counts_at = device.add<Count>(count_slots);
  const std::size_t d_tables_at = device.add<std::byte>(tables_layout.bytes());
  const bool need_row_bad = validate && !shape.warp_rows;
  const std::size_t d_row_bad_at = device.add<std::uint8_t>(need_row_bad ? chunk_rows : 0);
  std::size_t d_in_at[DeviceState::kStagingSlots] = {};
  std::size_t d_cells_at = 0;
  std::size_t d_row_ok_at = 0;
  Layout pinned;
  const std::size_t h_tables_at = pinned.add<std::byte>(tables_layout.bytes());
  const std::size_t h_counts_at = pinned.add<Count>(count_slots);
  std::size_t h_in_at[DeviceState::kStagingSlots] = {};
  std::size_t h_cells_at[DeviceState::kStagingSlots] = {};
  std::size_t h_row_ok_at[DeviceState::kStagingSlots] = {};
  if (host) {
    // Kernels and mask downloads share one stream, so one device mask buffer suffices; inputs
    // and pinned buffers alternate between slots so that copies overlap compute.
    for (int s = 0; s < DeviceState::kStagingSlots; ++s) {
      d_in_at[s] = device.add<float>(chunk_rows * features);
      h_in_at[s] = pinned.add<float>(chunk_rows * features);
      h_cells_at[s] = pinned.add<std::uint8_t>(cell_flags != nullptr ? chunk_rows * features : 0);
      h_row_ok_at[s] = pinned.add<std::uint8_t>(row_ok != nullptr ? chunk_rows : 0);
    }
    d_cells_at = device.add<std::uint8_t>(cell_flags != nullptr ? chunk_rows * features : 0);
    d_row_ok_at = device.add<std::uint8_t>(row_ok != nullptr ? chunk_rows : 0);
  }
  std::byte* d_base = state.device_workspace(device.bytes());
  std::byte* h_base = state.host_staging(pinned.bytes());
  const cudaStream_t stream = state.stream();

  std::byte* h_tables = h_base + h_tables_at;
  auto stage = [&](std::size_t offset, const auto& values) {
    if (!values.empty()) {
      std::memcpy(h_tables + offset, values.data(), values.size() * sizeof(values[0]));
    }
  };
  stage(bins_at, prep.bins);
  stage(rules_at, prep.rules);
  stage(points_at, prep.points);
  stage(codes_at, prep.codes);
  std::byte* d_tables = d_base + d_tables_at;
  Count* d_counts = at<Count>(d_base, d_counts_at);
  DG_CUDA_TRY(
      cudaMemcpyAsync(d_tables, h_tables, tables_layout.bytes(), cudaMemcpyHostToDevice, stream));
  DG_CUDA_TRY(cudaMemsetAsync(d_counts, 0, count_slots * sizeof(Count), stream));

  const PassTables tables{
      .d_bins = at<const FeatureBins>(d_tables, bins_at),
      .d_points = at<const float>(d_tables, points_at),
      .d_rules = at<const FeatureRule>(d_tables, rules_at),
      .d_codes = at<const float>(d_tables, codes_at),
      .point_count = static_cast<std::uint32_t>(prep.points.size()),
      .code_count = static_cast<std::uint32_t>(prep.codes.size()),
      .total_slots = prep.total_slots,
      .d_slot_counts = d_counts,
      .d_flag_counts = d_counts + prep.total_slots,
      .d_rows_ok = d_counts + prep.total_slots + flag_slots,
  };
  std::uint8_t* d_row_bad = need_row_bad ? at<std::uint8_t>(d_base, d_row_bad_at) : nullptr;

  // Validation and/or histogram of `n` rows at d_data, on the stream.
  auto run_rows = [&](const float* d_data, std::size_t n, std::uint8_t* d_cells,
                      std::uint8_t* d_rows_ok_mask) {
    shape.d_data = d_data;
    shape.rows = n;
    shape.d_cell_flags = d_cells;
    shape.d_row_ok = d_rows_ok_mask;
    shape.d_row_bad = d_row_bad;
    if (need_row_bad) DG_CUDA_TRY(cudaMemsetAsync(d_row_bad, 0, n, stream));
    if (validate && histogram) {
      launch_pass<true, true>(state, shape, tables, plan);
    } else if (validate) {
      launch_pass<true, false>(state, shape, tables, plan);
    } else {
      launch_pass<false, true>(state, shape, tables, plan);
    }
  };
  auto finish_rows = [&](std::size_t n, std::uint8_t* d_rows_ok_mask) {
    if (!need_row_bad) return;
    const std::size_t blocks = std::min<std::size_t>(
        ceil_div(n, kFinishThreads),
        std::size_t{8} * static_cast<std::size_t>(state.properties().multiProcessorCount));
    finish_rows_kernel<<<static_cast<unsigned>(blocks), kFinishThreads, 0, stream>>>(
        d_row_bad, n, d_rows_ok_mask, tables.d_rows_ok);
    DG_CUDA_TRY_LAUNCH("finish_rows_kernel");
  };

  if (!host) {
    run_rows(batch.data, rows, cell_flags, row_ok);
    finish_rows(rows, row_ok);
  } else {
    const std::size_t chunks = ceil_div(rows, chunk_rows);
    std::uint8_t* d_cells = cell_flags != nullptr ? at<std::uint8_t>(d_base, d_cells_at) : nullptr;
    std::uint8_t* d_row_ok = row_ok != nullptr ? at<std::uint8_t>(d_base, d_row_ok_at) : nullptr;
    const bool masks = d_cells != nullptr || d_row_ok != nullptr;
    // A page-locked batch (HostBuffer, the scan's ring) is copied from where it lies.
    const bool source_page_locked = is_page_locked(batch.data);
    auto chunk_size = [&](std::size_t chunk) {
      return std::min(chunk_rows, rows - chunk * chunk_rows);
    };
    // Copies chunk `chunk`'s downloaded masks out of its pinned slot into the caller's arrays.
    auto drain_masks = [&](std::size_t chunk) {
      const int s = static_cast<int>(chunk % DeviceState::kStagingSlots);
      const std::size_t n = chunk_size(chunk);
      DG_CUDA_TRY(cudaEventSynchronize(state.slot_events(s).d2h_done));
      if (cell_flags != nullptr) {
        std::memcpy(cell_flags + chunk * chunk_rows * features, h_base + h_cells_at[s],
                    n * features);
      }
      if (row_ok != nullptr) std::memcpy(row_ok + chunk * chunk_rows, h_base + h_row_ok_at[s], n);
    };
    for (std::size_t chunk = 0; chunk < chunks; ++chunk) {
      const int s = static_cast<int>(chunk % DeviceState::kStagingSlots);
      const DeviceState::SlotEvents& events = state.slot_events(s);
      const std::size_t n = chunk_size(chunk);
      const std::size_t bytes = n * features * sizeof(float);
      float* h_in = at<float>(h_base, h_in_at[s]);
      float* d_in = at<float>(d_base, d_in_at[s]);
      // The slot's previous chunk must be out of its pinned buffers before they are reused.
      DG_CUDA_TRY(cudaEventSynchronize(events.h2d_done));
      if (masks && chunk >= DeviceState::kStagingSlots) {
        drain_masks(chunk - DeviceState::kStagingSlots);
      }
      const float* h_source = batch.data + chunk * chunk_rows * features;
      if (!source_page_locked) {
        driftguard::detail::parallel_copy(host_threads, h_in, h_source, bytes);
        h_source = h_in;
      }
      DG_CUDA_TRY(cudaStreamWaitEvent(state.copy_stream(), events.compute_done, 0));
      DG_CUDA_TRY(
          cudaMemcpyAsync(d_in, h_source, bytes, cudaMemcpyHostToDevice, state.copy_stream()));
      DG_CUDA_TRY(cudaEventRecord(events.h2d_done, state.copy_stream()));
      DG_CUDA_TRY(cudaStreamWaitEvent(stream, events.h2d_done, 0));
      run_rows(d_in, n, d_cells, d_row_ok);
      DG_CUDA_TRY(cudaEventRecord(events.compute_done, stream));
      finish_rows(n, d_row_ok);
      if (masks) {
        if (d_cells != nullptr) {
          DG_CUDA_TRY(cudaMemcpyAsync(h_base + h_cells_at[s], d_cells, n * features,
                                      cudaMemcpyDeviceToHost, stream));
        }
        if (d_row_ok != nullptr) {
          DG_CUDA_TRY(cudaMemcpyAsync(h_base + h_row_ok_at[s], d_row_ok, n, cudaMemcpyDeviceToHost,
                                      stream));
        }
        DG_CUDA_TRY(cudaEventRecord(events.d2h_done, stream));
      }
    }
    if (masks) {
      const std::size_t first =
          chunks > DeviceState::kStagingSlots ? chunks - DeviceState::kStagingSlots : 0;
      for (std::size_t chunk = first; chunk < chunks; ++chunk) drain_masks(chunk);
    }
  }

  Count* h_counts = at<Count>(h_base, h_counts_at);
  DG_CUDA_TRY(cudaMemcpyAsync(h_counts, d_counts, count_slots * sizeof(Count),
                              cudaMemcpyDeviceToHost, stream));
  DG_CUDA_TRY(cudaStreamSynchronize(stream));
  if (histogram) {
    std::vector<std::uint64_t>& total = args.histogram->raw();
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += h_counts[i];
  }
  if (validate) {
    std::vector<std::uint64_t>& total = args.validation->flag_counts;
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += h_counts[prep.total_slots + i];
    args.validation->rows_ok += h_counts[prep.total_slots + flag_slots];
    args.validation->rows += rows;
  }
}

}  // namespace driftguard::cuda
