// CUDA backend of KS. Features are processed in chunks that bound the workspace:
//   1. transpose_keys_kernel: row-major batch -> column-major sort keys (NaN -> largest key,
//      counted per feature);
//   2. cub::DeviceSegmentedRadixSort, one segment per feature, or for a few long columns one
//      cub::DeviceRadixSort per column (NaN keys end up last either way);
//   3. from_batch: keys decoded in place and each column's non-NaN prefix downloaded;
//      ks_statistics: ks_merge_kernel merges the sorted current column with the sorted reference
//      column tile by tile (merge path) and keeps the extremes of F_R - F_C per tile, then
//      ks_reduce_kernel picks each feature's extremes among its tiles.
// Exactness: the keys, ECDF differences and candidate order are the CPU backend's
// (kernels/ks_common.hpp), evaluated at the same pooled values, so both give the same bits.
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "kernels/backend.hpp"
#include "kernels/cuda/detail/cuda_check.cuh"
#include "kernels/cuda/detail/device_state.cuh"
#include "kernels/cuda/detail/ks_merge.hpp"
#include "kernels/cuda/detail/workspace_layout.hpp"
#include "kernels/ks_common.hpp"

namespace driftguard::cuda {
namespace {

using detail::KsCandidate;
using detail::KsExtremes;
using Count = unsigned long long;  // the 64-bit type of atomicAdd

constexpr int kTileSide = 32;         // transpose tile: 32 rows x 32 features
constexpr int kTileRowsPerPass = 8;   // transpose block: 32 x 8 threads
constexpr int kTransposeRows = 1024;  // rows per transpose block
constexpr int kMergeThreads = 256;
constexpr int kMergeItems = 8;  // merged values per thread
constexpr int kMergeTile = kMergeThreads * kMergeItems;
constexpr int kReduceThreads = 256;
// Keys sorted per chunk (two key buffers of this many uint32), and CUB's limits: int item counts,
// segments on grid.y of the merge.
constexpr std::size_t kChunkKeys = std::size_t{1} << 28;
constexpr std::size_t kMaxChunkFeatures = 65535;
constexpr std::uint32_t kNanKey = 0xffffffffu;
// Columns at least this long are sorted by the device-wide radix sort when they are few.
constexpr std::size_t kColumnSortRows = std::size_t{1} << 16;

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Extremes of F_R - F_C within one merge tile.
struct TileExtremes {
  KsCandidate max;
  KsCandidate min;
};

struct MaxOp {
  __device__ KsCandidate operator()(const KsCandidate& a, const KsCandidate& b) const {
    return detail::ks_precedes_as_max(b, a) ? b : a;
  }
};
struct MinOp {
  __device__ KsCandidate operator()(const KsCandidate& a, const KsCandidate& b) const {
    return detail::ks_precedes_as_min(b, a) ? b : a;
  }
};

// Launch: grid (ceil(rows / kTransposeRows), ceil(features / 32)), block (32, 8). A block moves a
// 32-feature slice of kTransposeRows rows through a shared tile, so that both the row-major reads
// (32 consecutive features) and the column-major writes (32 consecutive rows) are coalesced.
// Warp ty owns features ty, ty + 8, ty + 16, ty + 24 of the slice and counts their NaN in
// registers: one atomic per feature and block.
__global__ void __launch_bounds__(kTileSide* kTileRowsPerPass)
    transpose_keys_kernel(const float* d_in, std::size_t pitch, std::size_t rows,
                          std::uint32_t features, std::uint32_t* d_keys, Count* d_nan) {
  __shared__ std::uint32_t tile[kTileSide][kTileSide + 1];
  const unsigned tx = threadIdx.x, ty = threadIdx.y;
  const std::uint32_t f0 = blockIdx.y * kTileSide;
  const std::size_t row_begin = std::size_t{blockIdx.x} * kTransposeRows;
  const std::size_t row_end = min(rows, row_begin + kTransposeRows);
  std::uint32_t nan_count[kTileSide / kTileRowsPerPass] = {};
  for (std::size_t r0 = row_begin; r0 < row_end; r0 += kTileSide) {
#pragma unroll
    for (int k = 0; k < kTileSide / kTileRowsPerPass; ++k) {
      const std::size_t r = r0 + ty + k * kTileRowsPerPass;
      const std::uint32_t f = f0 + tx;
      tile[ty + k * kTileRowsPerPass][tx] =
          r < row_end && f < features ? detail::ks_sort_key(d_in[r * pitch + f]) : kNanKey;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTileSide / kTileRowsPerPass; ++k) {
      const std::uint32_t f = f0 + ty + k * kTileRowsPerPass;
      const std::size_t r = r0 + tx;
      const std::uint32_t key = tile[tx][ty + k * kTileRowsPerPass];
      const bool valid = r < row_end && f < features;
      if (valid) d_keys[f * rows + r] = key;
      nan_count[k] += __popc(__ballot_sync(0xffffffffu, valid && key == kNanKey));
    }
    __syncthreads();
  }
  if (tx == 0) {
#pragma unroll
    for (int k = 0; k < kTileSide / kTileRowsPerPass; ++k) {
      const std::uint32_t f = f0 + ty + k * kTileRowsPerPass;
      if (f < features && nan_count[k] != 0) atomicAdd(&d_nan[f], Count{nan_count[k]});
    }
  }
}

// Launch: any grid of 256-thread blocks, grid-stride over n keys. Keys become their floats in
// place (the NaN keys past each column's values are left as they are).
__global__ void decode_keys_kernel(std::uint32_t* d_keys, std::size_t n) {
  for (std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    const std::uint32_t key = d_keys[i];
    if (key != kNanKey) d_keys[i] = __float_as_uint(detail::ks_key_value(key));
  }
}

struct MergeArgs {
  const float* d_reference;            // the chunk's reference columns, concatenated
  const std::uint64_t* d_ref_offsets;  // chunk features + 1, into d_reference
  const std::uint32_t* d_keys;         // sorted current keys, [feature][rows]
  const Count* d_nan;                  // NaN per feature: the last keys of each column
  std::size_t rows;
  std::uint32_t tiles;       // tiles per feature (grid.x)
  TileExtremes* d_partials;  // [feature][tiles]
};

// Launch: grid (tiles, chunk features), kMergeThreads threads. Block (t, f) owns positions
// [t * kMergeTile, (t + 1) * kMergeTile) of feature f's pooled sorted sample (split by merge
// path); tiles past its end write neutral extremes. The tile's reference and current values, plus
// their neighbours, are staged in shared memory; thread k merges kMergeItems values from tile
// position k * kMergeItems (ks_merge_items) and the block reduces the threads' extremes.
// kExact: every feature's n1 n2 is within kKsMaxExactProduct.
template <bool kExact>
__global__ void __launch_bounds__(kMergeThreads) ks_merge_kernel(const MergeArgs args) {
  using BlockReduce = cub::BlockReduce<KsCandidate, kMergeThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  __shared__ float s_ref[kMergeTile + 2];  // R[i0 - 1], R[i0 .. i1), R[i1]
  __shared__ float s_cur[kMergeTile + 1];  // C[j0 .. j1), C[j1]
  __shared__ std::uint64_t s_split[2];

  const std::uint32_t f = blockIdx.y;
  const unsigned tid = threadIdx.x;
  const float* ref = args.d_reference + args.d_ref_offsets[f];
  const std::uint64_t n1 = args.d_ref_offsets[f + 1] - args.d_ref_offsets[f];
  const std::uint32_t* cur = args.d_keys + std::size_t{f} * args.rows;
  const std::uint64_t n2 = args.rows - args.d_nan[f];
  const std::uint64_t d0 = std::uint64_t{blockIdx.x} * kMergeTile;
  TileExtremes* out = args.d_partials + std::size_t{f} * args.tiles + blockIdx.x;
  if (n1 == 0 || n2 == 0 || d0 >= n1 + n2) {
    if (tid == 0) *out = {detail::ks_no_max(), detail::ks_no_min()};
    return;
  }
  const std::uint64_t d1 = min(d0 + kMergeTile, n1 + n2);
  auto ref_at = [ref](std::uint64_t i) { return ref[i]; };
  auto cur_at = [cur](std::uint64_t j) { return detail::ks_key_value(cur[j]); };
  if (tid < 2) s_split[tid] = ks_merge_path(ref_at, n1, cur_at, n2, tid == 0 ? d0 : d1);
  __syncthreads();
  const std::uint64_t i0 = s_split[0], i1 = s_split[1];
  const std::uint64_t j0 = d0 - i0, j1 = d1 - i1;
  const KsTile tile{s_ref + 1,
                    s_cur,
                    i0,
                    j0,
                    n1,
                    n2,
                    static_cast<std::uint32_t>(i1 - i0),
                    static_cast<std::uint32_t>(j1 - j0)};
  for (std::uint32_t t = tid; t < tile.a + 2; t += kMergeThreads) {
    const std::uint64_t i = i0 + t;  // s_ref[t] = R[i - 1]
    s_ref[t] = i >= 1 && i - 1 < n1 ? ref[i - 1] : 0.0f;
  }
  for (std::uint32_t t = tid; t < tile.b + 1; t += kMergeThreads) {
    const std::uint64_t j = j0 + t;
    s_cur[t] = j < n2 ? cur_at(j) : 0.0f;
  }
  __syncthreads();
  KsCandidate best_max = detail::ks_no_max(), best_min = detail::ks_no_min();
  ks_merge_items<kExact>(tile, tid * kMergeItems, kMergeItems, best_max, best_min);
  const KsCandidate tile_max = BlockReduce(reduce_storage).Reduce(best_max, MaxOp{});
  __syncthreads();
  const KsCandidate tile_min = BlockReduce(reduce_storage).Reduce(best_min, MinOp{});
  if (tid == 0) *out = {tile_max, tile_min};
}

// Launch: grid (chunk features), kReduceThreads threads. Block f reduces feature f's tiles and
// writes its KsExtremes ({NaN, NaN, 0} extremes when a sample is empty, as the CPU backend).
__global__ void __launch_bounds__(kReduceThreads)
    ks_reduce_kernel(const TileExtremes* d_partials, std::uint32_t tiles,
                     const std::uint64_t* d_ref_offsets, const Count* d_nan, std::size_t rows,
                     KsExtremes* d_out) {
  using BlockReduce = cub::BlockReduce<KsCandidate, kReduceThreads>;
  __shared__ typename BlockReduce::TempStorage reduce_storage;
  const std::uint32_t f = blockIdx.x;
  KsCandidate best_max = detail::ks_no_max(), best_min = detail::ks_no_min();
  for (std::uint32_t t = threadIdx.x; t < tiles; t += kReduceThreads) {
    const TileExtremes& p = d_partials[std::size_t{f} * tiles + t];
    best_max = MaxOp{}(best_max, p.max);
    best_min = MinOp{}(best_min, p.min);
  }
  best_max = BlockReduce(reduce_storage).Reduce(best_max, MaxOp{});
  __syncthreads();
  best_min = BlockReduce(reduce_storage).Reduce(best_min, MinOp{});
  if (threadIdx.x == 0) {
    const std::uint64_t n1 = d_ref_offsets[f + 1] - d_ref_offsets[f];
    const std::uint64_t n2 = rows - d_nan[f];
    if (n1 == 0 || n2 == 0) best_max = best_min = detail::ks_no_test();
    d_out[f] = {best_max, best_min, n2, d_nan[f]};
  }
}

// Features are sorted `chunk_features` at a time, so that the keys of a chunk stay within CUB's
// int item count and the workspace within 2 * kChunkKeys keys. Batches sorted through the same
// buffers share the chunk width of the longest: `widest_rows`.
struct Chunking {
  std::size_t rows;
  std::size_t features;        // of the batch
  std::size_t chunk_features;  // per chunk (the last may have fewer)

  explicit Chunking(const BatchView& batch, std::size_t widest_rows = 0)
      : rows(batch.rows), features(batch.features) {
    widest_rows = std::max(widest_rows, rows);
    if (widest_rows > static_cast<std::size_t>(INT_MAX)) {
      throw InvalidInput("KS on the CUDA backend: at most " + std::to_string(INT_MAX) +
                         " rows per batch, got " + std::to_string(widest_rows));
    }
    chunk_features = std::clamp<std::size_t>(kChunkKeys / std::max<std::size_t>(widest_rows, 1), 1,
                                             std::min(features, kMaxChunkFeatures));
  }
  std::size_t chunks() const { return ceil_div(features, chunk_features); }
  std::size_t first(std::size_t chunk) const { return chunk * chunk_features; }
  std::size_t count(std::size_t chunk) const {
    return std::min(chunk_features, features - first(chunk));
  }
};

// The part of one call's workspace that sorting a chunk needs.
struct SortBuffers {
  std::size_t keys_at, alt_at, input_at, nan_at, segments_at, temp_at, temp_bytes;
};

SortBuffers plan_sort(Layout& layout, const Chunking& c, bool host_input) {
  SortBuffers s{};
  const std::size_t keys = c.rows * c.chunk_features;
  s.keys_at = layout.add<std::uint32_t>(keys);
  s.alt_at = layout.add<std::uint32_t>(keys);
  s.input_at = layout.add<float>(host_input ? keys : 0);
  s.nan_at = layout.add<Count>(c.chunk_features);
  s.segments_at = layout.add<int>(c.chunk_features + 1);
  cub::DoubleBuffer<std::uint32_t> no_keys(nullptr, nullptr);
  DG_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(
      nullptr, s.temp_bytes, no_keys, static_cast<int>(keys), static_cast<int>(c.chunk_features),
      static_cast<const int*>(nullptr), static_cast<const int*>(nullptr)));
  if (c.rows >= kColumnSortRows) {
    std::size_t column_bytes = 0;
    DG_CUDA_TRY(
        cub::DeviceRadixSort::SortKeys(nullptr, column_bytes, no_keys, static_cast<int>(c.rows)));
    s.temp_bytes = std::max(s.temp_bytes, column_bytes);
  }
  s.temp_at = layout.add<std::byte>(s.temp_bytes);
  return s;
}

// CUB's segmented radix sort gives each segment one thread block (NVIDIA/cccl#875): with fewer
// columns than SMs most of the GPU would idle while each block makes its passes over millions of
// keys. Such columns are sorted one after another, each by the device-wide radix sort.
bool sort_by_column(const DeviceState& state, std::size_t rows, std::size_t count) {
  return rows >= kColumnSortRows &&
         count < static_cast<std::size_t>(state.properties().multiProcessorCount);
}

// Sorts the keys of `count` features starting at `first`; returns the buffer holding them.
// d_nan receives each feature's NaN count.
std::uint32_t* sort_chunk(DeviceState& state, int host_threads, std::byte* d_base,
                          const SortBuffers& s, const BatchView& batch, const Chunking& c,
                          std::size_t first, std::size_t count) {
  const cudaStream_t stream = state.stream();
  const std::size_t rows = c.rows;
  Count* d_nan = at<Count>(d_base, s.nan_at);
  DG_CUDA_TRY(cudaMemsetAsync(d_nan, 0, count * sizeof(Count), stream));
  const float* d_in = batch.data + first;
  std::size_t pitch = batch.features;
  if (batch.space == MemorySpace::Host) {
    // The chunk's columns, packed: staged when the chunk spans every feature (the rows are one
    // block), else a strided copy by the driver.
    float* d_staged = at<float>(d_base, s.input_at);
    if (count == batch.features) {
      state.upload(host_threads, d_staged, batch.data, rows * count * sizeof(float));
    } else {
      DG_CUDA_TRY(cudaMemcpy2DAsync(d_staged, count * sizeof(float), batch.data + first,
                                    batch.features * sizeof(float), count * sizeof(float), rows,
                                    cudaMemcpyHostToDevice, stream));
    }
    d_in = d_staged;
    pitch = count;
  }
  std::uint32_t* d_keys = at<std::uint32_t>(d_base, s.keys_at);
  const dim3 grid(static_cast<unsigned>(ceil_div(rows, kTransposeRows)),
                  static_cast<unsigned>(ceil_div(count, kTileSide)));
  transpose_keys_kernel<<<grid, dim3(kTileSide, kTileRowsPerPass), 0, stream>>>(
      d_in, pitch, rows, static_cast<std::uint32_t>(count), d_keys, d_nan);
  DG_CUDA_TRY_LAUNCH("transpose_keys_kernel");

  std::uint32_t* d_alt = at<std::uint32_t>(d_base, s.alt_at);
  std::byte* d_temp = at<std::byte>(d_base, s.temp_at);
  if (sort_by_column(state, rows, count)) {
    // Every column takes the same passes, so all end in the same buffer; one that did not would
    // be moved there.
    int selector = -1;
    for (std::size_t f = 0; f < count; ++f) {
      cub::DoubleBuffer<std::uint32_t> column(d_keys + f * rows, d_alt + f * rows);
      std::size_t temp_bytes = s.temp_bytes;
      DG_CUDA_TRY(cub::DeviceRadixSort::SortKeys(d_temp, temp_bytes, column, static_cast<int>(rows),
                                                 0, 32, stream));
      if (selector < 0) selector = column.selector;
      if (column.selector != selector) {
        DG_CUDA_TRY(cudaMemcpyAsync(column.d_buffers[selector], column.Current(),
                                    rows * sizeof(std::uint32_t), cudaMemcpyDeviceToDevice,
                                    stream));
      }
    }
    return selector == 0 ? d_keys : d_alt;
  }
  std::vector<int> segments(count + 1);
  for (std::size_t f = 0; f <= count; ++f) segments[f] = static_cast<int>(f * rows);
  int* d_segments = at<int>(d_base, s.segments_at);
  DG_CUDA_TRY(cudaMemcpyAsync(d_segments, segments.data(), segments.size() * sizeof(int),
                              cudaMemcpyHostToDevice, stream));
  cub::DoubleBuffer<std::uint32_t> keys(d_keys, d_alt);
  std::size_t temp_bytes = s.temp_bytes;
  const int* d_begin = d_segments;
  DG_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(
      d_temp, temp_bytes, keys, static_cast<int>(rows * count), static_cast<int>(count), d_begin,
      d_begin + 1, 0, 32, stream));
  return keys.Current();
}

// The part of one call's workspace that merging a chunk needs.
struct MergeBuffers {
  std::size_t ref_offsets_at, partials_at, out_at;
  std::uint32_t tiles;  // merge tiles per feature: the most any feature needs
};

MergeBuffers plan_merge(Layout& layout, const Chunking& c, std::size_t max_tiles) {
  if (max_tiles > static_cast<std::size_t>(INT_MAX)) {
    throw InvalidInput("KS on the CUDA backend: reference column too long");
  }
  MergeBuffers m{};
  m.ref_offsets_at = layout.add<std::uint64_t>(c.chunk_features + 1);
  m.partials_at = layout.add<TileExtremes>(c.chunk_features * max_tiles);
  m.out_at = layout.add<KsExtremes>(c.chunk_features);
  m.tiles = static_cast<std::uint32_t>(max_tiles);
  return m;
}

// One chunk of the current window, sorted by sort_chunk (its NaN counts in the sort buffers).
struct SortedChunk {
  const std::uint32_t* d_keys;
  const Chunking& c;
  std::size_t first, count;
};

// Merges the chunk's current columns against its reference columns (d_ref; `ref_offsets`: count
// + 1 offsets into it, from 0) and downloads their extremes into out[first, first + count).
void merge_chunk(DeviceState& state, std::byte* d_base, const SortBuffers& s, const MergeBuffers& m,
                 const SortedChunk& current, const float* d_ref,
                 const std::vector<std::uint64_t>& ref_offsets, std::span<KsExtremes> out) {
  const cudaStream_t stream = state.stream();
  const std::size_t count = current.count;
  auto* d_ref_offsets = at<std::uint64_t>(d_base, m.ref_offsets_at);
  DG_CUDA_TRY(cudaMemcpyAsync(d_ref_offsets, ref_offsets.data(),
                              (count + 1) * sizeof(std::uint64_t), cudaMemcpyHostToDevice, stream));
  const MergeArgs args{.d_reference = d_ref,
                       .d_ref_offsets = d_ref_offsets,
                       .d_keys = current.d_keys,
                       .d_nan = at<Count>(d_base, s.nan_at),
                       .rows = current.c.rows,
                       .tiles = m.tiles,
                       .d_partials = at<TileExtremes>(d_base, m.partials_at)};
  std::uint64_t longest_ref = 0;
  for (std::size_t f = 0; f < count; ++f) {
    longest_ref = std::max(longest_ref, ref_offsets[f + 1] - ref_offsets[f]);
  }
  // A current column has at most `rows` values.
  const dim3 grid(args.tiles, static_cast<unsigned>(count));
  if (detail::ks_exact_in_integers(longest_ref, std::max<std::size_t>(args.rows, 1))) {
    ks_merge_kernel<true><<<grid, kMergeThreads, 0, stream>>>(args);
  } else {
    ks_merge_kernel<false><<<grid, kMergeThreads, 0, stream>>>(args);
  }
  DG_CUDA_TRY_LAUNCH("ks_merge_kernel");
  KsExtremes* d_out = at<KsExtremes>(d_base, m.out_at);
  ks_reduce_kernel<<<static_cast<unsigned>(count), kReduceThreads, 0, stream>>>(
      args.d_partials, args.tiles, d_ref_offsets, args.d_nan, args.rows, d_out);
  DG_CUDA_TRY_LAUNCH("ks_reduce_kernel");
  DG_CUDA_TRY(cudaMemcpyAsync(out.data() + current.first, d_out, count * sizeof(KsExtremes),
                              cudaMemcpyDeviceToHost, stream));
  // Also keeps `ref_offsets` (pageable, staged by the copy above) unchanged until it has landed.
  DG_CUDA_TRY(cudaStreamSynchronize(stream));
}

// Sorts the chunk's columns of `batch` and decodes the keys to floats in place (each column's NaN
// keys stay last), then fills columns.nan_counts and columns.offsets for the chunk's features
// (waiting for the counts). Returns the decoded columns, c.rows values apart.
const float* sorted_chunk_values(DeviceState& state, int host_threads, std::byte* d_base,
                                 const SortBuffers& s, const BatchView& batch, const Chunking& c,
                                 std::size_t first, std::size_t count, SortedColumns& columns) {
  const cudaStream_t stream = state.stream();
  std::uint32_t* d_keys = sort_chunk(state, host_threads, d_base, s, batch, c, first, count);
  const std::size_t n = c.rows * count;
  const unsigned blocks = static_cast<unsigned>(std::min<std::size_t>(
      ceil_div(n, 256), std::size_t{8} * state.properties().multiProcessorCount));
  decode_keys_kernel<<<blocks, 256, 0, stream>>>(d_keys, n);
  DG_CUDA_TRY_LAUNCH("decode_keys_kernel");
  std::vector<Count> nan(count);
  DG_CUDA_TRY(cudaMemcpyAsync(nan.data(), at<Count>(d_base, s.nan_at), count * sizeof(Count),
                              cudaMemcpyDeviceToHost, stream));
  DG_CUDA_TRY(cudaStreamSynchronize(stream));
  for (std::size_t f = 0; f < count; ++f) {
    columns.nan_counts[first + f] = nan[f];
    columns.offsets[first + f + 1] = columns.offsets[first + f] + (c.rows - nan[f]);
  }
  return reinterpret_cast<const float*>(d_keys);
}

}  // namespace

void sort_columns(DeviceState& state, int host_threads, BatchView batch, SortedColumns& out) {
  DeviceGuard guard(state.device());
  const Chunking c(batch);
  out.features = batch.features;
  out.offsets.assign(batch.features + 1, 0);
  out.nan_counts.assign(batch.features, 0);
  if (c.rows == 0) {
    out.values.clear();
    return;
  }
  // Every value may be finite, and the chunks' values arrive one chunk at a time: room for all,
  // so that the resizes below never move what earlier chunks downloaded.
  detail::make_room_for_values(out, c.rows * c.features);
  state.follow_caller(batch);
  Layout layout;
  const SortBuffers s = plan_sort(layout, c, batch.space == MemorySpace::Host);
  std::byte* d_base = state.device_workspace(layout.bytes());
  const cudaStream_t stream = state.stream();
  for (std::size_t chunk = 0; chunk < c.chunks(); ++chunk) {
    const std::size_t first = c.first(chunk), count = c.count(chunk);
    const float* d_values =
        sorted_chunk_values(state, host_threads, d_base, s, batch, c, first, count, out);
    // Each column's non-NaN prefix, packed into the other sort buffer when a column has NaN, so
    // that the chunk comes down in one staged download.
    const std::size_t packed = out.offsets[first + count] - out.offsets[first];
    const float* d_packed = d_values;
    if (packed != c.rows * count) {
      float* d_other =
          at<float>(d_base, d_values == at<float>(d_base, s.keys_at) ? s.alt_at : s.keys_at);
      for (std::size_t f = 0; f < count; ++f) {
        const std::size_t n_f = out.offsets[first + f + 1] - out.offsets[first + f];
        if (n_f == 0) continue;
        DG_CUDA_TRY(cudaMemcpyAsync(d_other + (out.offsets[first + f] - out.offsets[first]),
                                    d_values + f * c.rows, n_f * sizeof(float),
                                    cudaMemcpyDeviceToDevice, stream));
      }
      d_packed = d_other;
    }
    // Only what grows past the last size is zero-filled.
    out.values.resize(out.offsets[first + count]);
    state.download(host_threads, out.values.data() + out.offsets[first], d_packed,
                   packed * sizeof(float));
  }
}

float* upload_values(DeviceState& state, int host_threads, std::span<const float> values) {
  if (values.empty()) return nullptr;
  DeviceGuard guard(state.device());
  float* d_values = nullptr;
  DG_CUDA_TRY(cudaMalloc(&d_values, values.size_bytes()));
  // On the Context's stream and waited for (DeviceState::upload): a plain cudaMemcpy from
  // pageable memory may return before its last DMA lands, and it orders only the legacy default
  // stream, which the non-blocking stream of ks_merge_kernel does not wait for.
  try {
    state.upload(host_threads, d_values, values.data(), values.size_bytes());
  } catch (...) {
    cudaFree(d_values);
    throw;
  }
  return d_values;
}

void free_values(DeviceState& state, float* d_values) noexcept {
  if (d_values == nullptr) return;
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return;
  cudaSetDevice(state.device());
  cudaFree(d_values);
  cudaSetDevice(previous);
}

void ks_statistics(DeviceState& state, int host_threads, const SortedColumns& reference,
                   const float* d_reference_values, BatchView current, std::span<KsExtremes> out) {
  DeviceGuard guard(state.device());
  // A chunk's reference values (uploaded when not resident) and merge tiles grow with the longest
  // reference column as its sort buffers do with the current's rows: both bound the chunk's width,
  // or a 1Mi-row reference against a 1000-row window would take 1000 features, 4 GB, per chunk.
  // (The cap only keeps Chunking's check on CUB's int counts, which cover the current's rows.)
  std::size_t longest = 0;
  for (std::size_t f = 0; f < reference.features; ++f) {
    longest = std::max<std::size_t>(longest, reference.offsets[f + 1] - reference.offsets[f]);
  }
  const Chunking c(current, std::min<std::size_t>(longest, INT_MAX));
  if (c.rows == 0) {
    // An empty current window: every feature has an empty sample.
    std::fill(out.begin(), out.end(), KsExtremes{detail::ks_no_test(), detail::ks_no_test(), 0, 0});
    return;
  }
  state.follow_caller(current);
  // Sizes of the largest chunk: reference values and merge tiles.
  std::size_t max_ref = 0, max_tiles = 0;
  for (std::size_t chunk = 0; chunk < c.chunks(); ++chunk) {
    const std::size_t first = c.first(chunk), count = c.count(chunk);
    max_ref =
        std::max<std::size_t>(max_ref, reference.offsets[first + count] - reference.offsets[first]);
    for (std::size_t f = first; f < first + count; ++f) {
      const std::size_t n1 = reference.offsets[f + 1] - reference.offsets[f];
      max_tiles = std::max(max_tiles, ceil_div(n1 + c.rows, kMergeTile));
    }
  }
  Layout layout;
  const SortBuffers s = plan_sort(layout, c, current.space == MemorySpace::Host);
  const std::size_t ref_at = layout.add<float>(d_reference_values != nullptr ? 0 : max_ref);
  const MergeBuffers m = plan_merge(layout, c, max_tiles);
  std::byte* d_base = state.device_workspace(layout.bytes());
  std::vector<std::uint64_t> ref_offsets(c.chunk_features + 1);
  for (std::size_t chunk = 0; chunk < c.chunks(); ++chunk) {
    const std::size_t first = c.first(chunk), count = c.count(chunk);
    const std::uint32_t* d_sorted =
        sort_chunk(state, host_threads, d_base, s, current, c, first, count);
    const std::uint64_t ref_begin = reference.offsets[first];
    for (std::size_t f = 0; f <= count; ++f) {
      ref_offsets[f] = reference.offsets[first + f] - ref_begin;
    }
    const float* d_ref =
        d_reference_values != nullptr ? d_reference_values + ref_begin : at<float>(d_base, ref_at);
    if (d_reference_values == nullptr) {
      state.upload(host_threads, at<float>(d_base, ref_at), reference.values.data() + ref_begin,
                   ref_offsets[count] * sizeof(float));
    }
    merge_chunk(state, d_base, s, m, {d_sorted, c, first, count}, d_ref, ref_offsets, out);
  }
}

SortedColumns ks_statistics_raw(DeviceState& state, int host_threads, BatchView reference,
                                BatchView current, std::span<KsExtremes> out) {
  DeviceGuard guard(state.device());
  const std::size_t widest = std::max(reference.rows, current.rows);
  const Chunking cr(reference, widest), cc(current, widest);
  SortedColumns columns;  // the reference's layout; its values stay on the device
  columns.features = reference.features;
  columns.offsets.assign(reference.features + 1, 0);
  columns.nan_counts.assign(reference.features, 0);
  if (cr.rows == 0 || cc.rows == 0) {
    throw InvalidInput("ks_statistics_raw: both windows need rows");  // dispatch sorts those
  }
  state.follow_caller(reference);
  state.follow_caller(current);
  Layout layout;
  const bool host_input =
      reference.space == MemorySpace::Host || current.space == MemorySpace::Host;
  const SortBuffers s = plan_sort(layout, cr.rows >= cc.rows ? cr : cc, host_input);
  const std::size_t ref_at = layout.add<float>(cr.rows * cr.chunk_features);
  const MergeBuffers m = plan_merge(layout, cc, ceil_div(cr.rows + cc.rows, kMergeTile));
  std::byte* d_base = state.device_workspace(layout.bytes());
  const cudaStream_t stream = state.stream();
  float* d_ref = at<float>(d_base, ref_at);
  std::vector<std::uint64_t> ref_offsets(cr.chunk_features + 1);
  for (std::size_t chunk = 0; chunk < cr.chunks(); ++chunk) {
    const std::size_t first = cr.first(chunk), count = cr.count(chunk);
    // The reference's columns, sorted, each non-NaN prefix packed into d_ref (the sort buffers
    // are the current's next).
    const float* d_values =
        sorted_chunk_values(state, host_threads, d_base, s, reference, cr, first, count, columns);
    for (std::size_t f = 0; f < count; ++f) {
      const std::size_t n_f = columns.offsets[first + f + 1] - columns.offsets[first + f];
      ref_offsets[f + 1] = ref_offsets[f] + n_f;
      if (n_f == 0) continue;
      DG_CUDA_TRY(cudaMemcpyAsync(d_ref + ref_offsets[f], d_values + f * cr.rows,
                                  n_f * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    }
    const std::uint32_t* d_sorted =
        sort_chunk(state, host_threads, d_base, s, current, cc, first, count);
    merge_chunk(state, d_base, s, m, {d_sorted, cc, first, count}, d_ref, ref_offsets, out);
  }
  return columns;
}

}  // namespace driftguard::cuda
