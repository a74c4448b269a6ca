// CUDA backend of the MMD tests.
//
// Quadratic test, one call:
//  1. host windows are staged through pinned memory; a scan rejects rows with NaN / +-inf;
//  2. sigma, when not given: squared distances of the median subsample's pairs into the
//     workspace, CUB radix sort, the element kernels/mmd_common.cpp's rule picks;
//  3. side bits of every pooled row for every column (permutation_words(P) words a row): per
//     permutation, Philox keys of all rows, a CUB segmented sort, and a row is on the X side when
//     its (key, row) is at most the n-th smallest (detail::on_x_side);
//  4. mmd_pairs_kernel walks the upper triangle of the pooled kernel matrix in 64 x 64 tiles,
//     computes each kernel value once in float64 and adds it to up to 128 columns (observed + 127
//     permutations) per pass, as a product of the kernel tile with the 0/1 side bits on the FP64
//     tensor cores; block partials are summed in block order by a second kernel, so the result is
//     deterministic on a given device.
// Everything is float64 (distances, exp, sums): FP32 distances would move kernel values by ~1e-7
// and, with them, permuted statistics across the observed one, breaking the promise that the CPU
// and the GPU count the same permutations. Hopper runs FP64 at half its FP32 rate, FP64 tensor
// core products at its FP32 rate. The quadratic test needs compute capability 8.0.
// Memory: O((n+m)(d + P)) plus the sorts' O((n+m) * 64) keys per batch of permutations.
#include <mma.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "kernels/backend.hpp"
#include "kernels/cuda/detail/cuda_check.cuh"
#include "kernels/cuda/detail/device_state.cuh"
#include "kernels/cuda/detail/workspace_layout.hpp"
#include "kernels/mmd_common.hpp"
#include "kernels/parallel_copy.hpp"

namespace driftguard::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;             // pooled rows per tile
constexpr int kThreads = 256;         // mmd_pairs_kernel block
constexpr int kFeatureChunk = 32;     // features staged in shared memory at a time
constexpr int kPad = kTile + 1;       // shared row stride in doubles (bank spread)
constexpr int kLdK = kTile + 8;       // kernel-value tile stride in doubles: even, as wmma needs,
                                      // and a fragment's 4 columns on different banks
constexpr int kHalfTile = kTile / 2;  // B rows expanded to doubles at a time
constexpr int kWarps = kThreads / 32;
constexpr int kGroupColumns = 16;  // columns of a word one thread folds
constexpr int kMaxPassWords = 2;   // mmd_pairs_kernel handles up to 128 columns a pass
constexpr std::size_t kSortItems = std::size_t{1} << 25;  // permutation keys sorted at once
constexpr int kSimpleThreads = 256;                       // the one-thread-per-item kernels

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// The two windows as one matrix: pooled row r < n is reference row r, else current row r - n.
struct Pooled {
  const float* d_reference;
  const float* d_current;
  std::uint32_t n, total, features;
  __device__ const float* row(std::uint32_t r) const {
    return r < n ? d_reference + std::size_t{r} * features
                 : d_current + std::size_t{r - n} * features;
  }
};

// The distances the bandwidth is chosen from: rounded product, then rounded sum, as the CPU
// backend computes them (sum += diff * diff, not fused), so that both pick the same median and
// sigma bit for bit. The _rn intrinsics are never contracted into an fma.
__device__ double squared_distance(const float* a, const float* b, std::uint32_t features) {
  double sum = 0;
  for (std::uint32_t f = 0; f < features; ++f) {
    const double diff = static_cast<double>(a[f]) - static_cast<double>(b[f]);
    sum = __dadd_rn(sum, __dmul_rn(diff, diff));
  }
  return sum;
}

// Grid-stride over `count` values of one window: *d_first_bad becomes the smallest row holding
// NaN or +-inf (it starts at ~0).
__global__ void first_non_finite_kernel(const float* d_values, std::uint64_t count,
                                        std::uint32_t features, unsigned long long* d_first_bad) {
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    if (!isfinite(d_values[i])) atomicMin(d_first_bad, i / features);
  }
}

// 16 x 16 threads per block over a sample x sample square, one thread per pair t < u of the
// median subsample; writes the pairs in row-major upper-triangle order.
__global__ void median_distance_kernel(Pooled pooled, std::uint32_t sample, double* d_out) {
  const std::uint32_t t = blockIdx.y * 16 + threadIdx.y, u = blockIdx.x * 16 + threadIdx.x;
  if (t >= sample || u >= sample || u <= t) return;
  const float* a =
      pooled.row(static_cast<std::uint32_t>(detail::median_sample_row(t, pooled.n, sample)));
  const float* b =
      pooled.row(static_cast<std::uint32_t>(detail::median_sample_row(u, pooled.n, sample)));
  d_out[std::uint64_t{t} * (2ull * sample - t - 1) / 2 + (u - t - 1)] =
      squared_distance(a, b, pooled.features);
}

// Grid-stride over segments x total: Philox keys of permutations first..first+segments-1, with
// the row as the value, and the segment offsets of the sort.
__global__ void permutation_keys_kernel(std::uint64_t seed, std::uint32_t first,
                                        std::uint32_t segments, std::uint32_t total,
                                        std::uint64_t* d_keys, std::uint32_t* d_rows,
                                        int* d_offsets) {
  const std::uint64_t count = std::uint64_t{segments} * total;
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const auto segment = static_cast<std::uint32_t>(i / total);
    const auto row = static_cast<std::uint32_t>(i % total);
    d_keys[i] = detail::permutation_key(seed, first + segment, row);
    d_rows[i] = row;
    if (row == 0) d_offsets[segment] = static_cast<int>(i);
    if (i == count - 1) d_offsets[segments] = static_cast<int>(count);
  }
}

// One thread per pooled row: ORs the bits of permutations first..first+segments-1 (all in word
// `word`) into the row's side bits, from each permutation's sorted keys; `observed` also sets
// column 0.
__global__ void side_bits_kernel(std::uint64_t seed, std::uint32_t n, std::uint32_t total,
                                 std::uint32_t words, std::uint32_t word, std::uint32_t first,
                                 std::uint32_t segments, bool observed,
                                 const std::uint64_t* d_sorted_keys,
                                 const std::uint32_t* d_sorted_rows, std::uint64_t* d_bits) {
  const std::uint32_t row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= total) return;
  std::uint64_t bits = observed && row < n ? 1 : 0;
  for (std::uint32_t s = 0; s < segments; ++s) {
    const std::uint64_t last = std::uint64_t{s} * total + n - 1;
    const std::uint32_t column = first + s + 1;
    if (detail::on_x_side(detail::permutation_key(seed, first + s, row), row, d_sorted_keys[last],
                          d_sorted_rows[last])) {
      bits |= std::uint64_t{1} << (column % 64);
    }
  }
  d_bits[std::uint64_t{row} * words + word] |= bits;
}

struct PairsArgs {
  Pooled pooled;
  double gamma;                 // 1 / (2 sigma^2)
  const std::uint64_t* d_bits;  // [total][words]
  std::uint32_t words;
  std::uint32_t first_word;  // this pass covers words first_word..first_word+kWords-1
  std::uint32_t tiles;       // row tiles of the pooled matrix
  std::uint64_t tile_pairs;  // tiles (tiles + 1) / 2: tile (I, J) for J >= I
  double* d_partials;        // [gridDim.x][3][kWords * 64]
};

// First tile pair of row tile I in the I-major order of tile pairs (I, J >= I).
__device__ std::uint64_t row_start(std::uint64_t row_tile, std::uint64_t tiles) {
  return row_tile * tiles - row_tile * (row_tile - 1) / 2;
}

// Shared memory of mmd_pairs_kernel<kWords>, in doubles (dynamic: 81 KiB for two words,
// so two blocks fit an SM).
// The stage region holds the distance phase's feature chunks, then the tile's kernel values K
// [b][a]; the B region holds half a tile's side bits as 0/1 doubles [b][column]; when the block
// leaves a row tile, T [a][column] spans both. Every region starts on 32 bytes, as wmma needs.
template <int kWords>
struct PairsShared {
  static constexpr int kColumns = kWords * 64;
  static constexpr int kLdB = kColumns + 4;  // B and T row stride: a fragment's 4 rows hit
                                             // different banks
  static constexpr int kStageDoubles = std::max(2 * kFeatureChunk * kPad, kTile* kLdK);
  static constexpr int kB = kStageDoubles;
  static constexpr int kRowSums = kB + kHalfTile * kLdB;  // [g][a]
  static constexpr int kWarpSums = kRowSums + (kThreads / kTile) * kTile;
  static constexpr int kSums = kWarpSums + kWarps * 3 * kWords * kGroupColumns;
  static constexpr int kBits = kSums + 3 * kColumns;
  static constexpr int kDoubles = kBits + kTile * kWords;
  static constexpr std::size_t kBytes = kDoubles * sizeof(double);
  static_assert(kTile * kLdB <= kRowSums, "T at the fold must fit the stage and B regions");
  static_assert(kB % 4 == 0 && kLdK % 2 == 0 && kLdB % 2 == 0, "wmma alignment");
};

// Launch: kThreads threads, PairsShared<kWords>::kBytes of dynamic shared memory, a persistent
// grid; block b walks tile pairs [b P / G, (b+1) P / G) of the I-major order, so it changes row
// tile rarely. Per tile pair, 16 x 16 threads compute 4 x 4 distances each from shared-memory
// feature chunks, then kernel values go to shared memory (zero outside the matrix and on / below
// a diagonal tile's diagonal, so each unordered pair counts once). Then T += K B on the FP64
// tensor cores (wmma m8n8k4), where B[b][c] is 1 when row b of the J tile is on the X side in
// column c: warp w owns rows 32 (w % 2) .. + 31 and columns (w / 2) kColumns / 4 .. of T, in
// accumulator fragments that stay in registers; and thread (a = t % 64, g = t / 64) adds
// k(a, b) for b in [16 g, 16 g + 16) to r. The scalar loop this replaces spent 84% of the MMD
// call in predicated adds (results/h200_20261127_b/profile.log).
// When the block leaves a row tile it stores T to shared memory, turns (T, r) into the xx / yy /
// xy sums of row a (kernels/cpu/mmd.cpp has the algebra), reduces them over the 64 rows and adds
// them to the block's shared totals. Invariant: T and r hold row a's sums over the J tiles seen
// since the block entered the current row tile.
// Two blocks an SM cap registers at 128 (ptxas, sm_90: 176 bytes spilled for two words); the
// scalar kernel had taken 252 and run one block an SM. FP64 tensor cores need compute
// capability 8.0 and code built for it: mmd() launches only where mmd_runs_here.
template <int kWords>
__global__ void __launch_bounds__(kThreads, 2) mmd_pairs_kernel(PairsArgs args) {
#if __CUDA_ARCH__ >= 800
  using Shared = PairsShared<kWords>;
  using FragmentA = wmma::fragment<wmma::matrix_a, 8, 8, 4, double, wmma::col_major>;
  using FragmentB = wmma::fragment<wmma::matrix_b, 8, 8, 4, double, wmma::row_major>;
  using Accumulator = wmma::fragment<wmma::accumulator, 8, 8, 4, double>;
  constexpr int kColumns = Shared::kColumns;
  constexpr int kLdB = Shared::kLdB;
  constexpr int kWarpRows = 32;                          // 2 warps down the tile
  constexpr int kWarpColumns = kColumns / (kWarps / 2);  // 4 warps across the columns
  constexpr int kFragmentRows = kWarpRows / 8;           // 4
  constexpr int kFragmentColumns = kWarpColumns / 8;     // 2 kWords
  constexpr int kRowGroups = kThreads / kTile;           // 4
  extern __shared__ __align__(128) double s_dynamic[];
  double* s_stage = s_dynamic;  // [2][feature][row], stride kPad
  double* s_k = s_dynamic;      // [b][a], stride kLdK
  double* s_t = s_dynamic;      // at the fold: [a][column], stride kLdB
  double* s_b = s_dynamic + Shared::kB;
  double* s_row_sums = s_dynamic + Shared::kRowSums;
  auto* s_warp =
      reinterpret_cast<double(*)[3][kWords * kGroupColumns]>(s_dynamic + Shared::kWarpSums);
  auto* s_sums = reinterpret_cast<double(*)[kColumns]>(s_dynamic + Shared::kSums);
  auto* s_bits_j = reinterpret_cast<std::uint64_t(*)[kWords]>(s_dynamic + Shared::kBits);

  const int t = threadIdx.x;
  const int tx = t % 16, ty = t / 16;      // distance phase
  const int a = t % kTile, g = t / kTile;  // row sums and the fold
  const int warp = t / 32, lane = t % 32;
  const int warp_row0 = (warp % 2) * kWarpRows, warp_column0 = (warp / 2) * kWarpColumns;
  const Pooled& p = args.pooled;
  for (int i = t; i < 3 * kColumns; i += kThreads) (&s_sums[0][0])[i] = 0;

  const std::uint64_t begin = blockIdx.x * args.tile_pairs / gridDim.x;
  const std::uint64_t end = (blockIdx.x + 1ull) * args.tile_pairs / gridDim.x;
  // Row tile of `begin`: the root of row_start, then exact fix-ups.
  const double tt = 2.0 * args.tiles + 1.0;
  std::uint64_t row_tile = static_cast<std::uint64_t>(
      fmax(0.0, floor((tt - sqrt(fmax(0.0, tt * tt - 8.0 * static_cast<double>(begin)))) / 2)));
  while (row_tile > 0 && row_start(row_tile, args.tiles) > begin) --row_tile;
  while (row_tile + 1 < args.tiles && row_start(row_tile + 1, args.tiles) <= begin) ++row_tile;
  std::uint64_t col_tile = row_tile + (begin - row_start(row_tile, args.tiles));

  Accumulator acc[kFragmentRows][kFragmentColumns];
#pragma unroll
  for (int i = 0; i < kFragmentRows; ++i) {
#pragma unroll
    for (int j = 0; j < kFragmentColumns; ++j) wmma::fill_fragment(acc[i][j], 0.0);
  }
  double r = 0;
  for (std::uint64_t pair = begin; pair < end; ++pair) {
    const std::uint32_t i0 = static_cast<std::uint32_t>(row_tile) * kTile;
    const std::uint32_t j0 = static_cast<std::uint32_t>(col_tile) * kTile;

    double dist[4][4] = {};
    double* s_xi = s_stage;
    double* s_xj = s_stage + kFeatureChunk * kPad;
    for (std::uint32_t f0 = 0; f0 < p.features; f0 += kFeatureChunk) {
      // Warp w stages rows w, w + 8, ...: lane f reads feature f0 + f, coalesced along the row.
      const int f = t % kFeatureChunk;
      const bool in_chunk = f0 + f < p.features;
#pragma unroll
      for (int s = 0; s < kTile / (kThreads / kFeatureChunk); ++s) {
        const int row = t / kFeatureChunk + s * (kThreads / kFeatureChunk);
        s_xi[f * kPad + row] =
            in_chunk && i0 + row < p.total ? static_cast<double>(p.row(i0 + row)[f0 + f]) : 0.0;
        s_xj[f * kPad + row] =
            in_chunk && j0 + row < p.total ? static_cast<double>(p.row(j0 + row)[f0 + f]) : 0.0;
      }
      __syncthreads();
      const int chunk =
          p.features - f0 < kFeatureChunk ? static_cast<int>(p.features - f0) : kFeatureChunk;
      for (int k = 0; k < chunk; ++k) {
        double xi[4], xj[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          xi[q] = s_xi[k * kPad + ty + 16 * q];
          xj[q] = s_xj[k * kPad + tx + 16 * q];
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const double diff = xi[q] - xj[c];
            dist[q][c] = fma(diff, diff, dist[q][c]);
          }
        }
      }
      __syncthreads();
    }

#pragma unroll
    for (int q = 0; q < 4; ++q) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int ra = ty + 16 * q, cb = tx + 16 * c;
        const bool valid = i0 + ra < p.total && j0 + cb < p.total && (i0 != j0 || cb > ra);
        s_k[cb * kLdK + ra] = valid ? exp(-args.gamma * dist[q][c]) : 0.0;
      }
    }
    for (int i = t; i < kTile * kWords; i += kThreads) {
      const std::uint32_t row = j0 + i / kWords;
      s_bits_j[i / kWords][i % kWords] =
          row < p.total
              ? args.d_bits[std::uint64_t{row} * args.words + args.first_word + i % kWords]
              : 0;
    }
    __syncthreads();

#pragma unroll 4
    for (int b = g * (kTile / kRowGroups); b < (g + 1) * (kTile / kRowGroups); ++b) {
      r += s_k[b * kLdK + a];
    }
    for (int half = 0; half < 2; ++half) {
      for (int i = t; i < kHalfTile * kColumns; i += kThreads) {
        const int row = i / kColumns, column = i % kColumns;
        const std::uint64_t bits = s_bits_j[half * kHalfTile + row][column / 64];
        s_b[row * kLdB + column] = (bits >> (column % 64)) & 1u ? 1.0 : 0.0;
      }
      __syncthreads();
#pragma unroll
      for (int k0 = 0; k0 < kHalfTile; k0 += 4) {
        FragmentA k_fragment[kFragmentRows];
#pragma unroll
        for (int i = 0; i < kFragmentRows; ++i) {
          wmma::load_matrix_sync(k_fragment[i],
                                 s_k + (half * kHalfTile + k0) * kLdK + warp_row0 + 8 * i, kLdK);
        }
#pragma unroll
        for (int j = 0; j < kFragmentColumns; ++j) {
          FragmentB side;
          wmma::load_matrix_sync(side, s_b + k0 * kLdB + warp_column0 + 8 * j, kLdB);
#pragma unroll
          for (int i = 0; i < kFragmentRows; ++i) {
            wmma::mma_sync(acc[i][j], k_fragment[i], side, acc[i][j]);
          }
        }
      }
      __syncthreads();
    }

    // Leaving the row tile (or the block's range): fold row a's sums into the block totals.
    if (col_tile + 1 == args.tiles || pair + 1 == end) {
#pragma unroll
      for (int i = 0; i < kFragmentRows; ++i) {
#pragma unroll
        for (int j = 0; j < kFragmentColumns; ++j) {
          wmma::store_matrix_sync(s_t + (warp_row0 + 8 * i) * kLdB + warp_column0 + 8 * j,
                                  acc[i][j], kLdB, wmma::mem_row_major);
          wmma::fill_fragment(acc[i][j], 0.0);
        }
      }
      s_row_sums[g * kTile + a] = r;
      r = 0;
      __syncthreads();
      double row_sum = 0;
#pragma unroll
      for (int group = 0; group < kRowGroups; ++group) row_sum += s_row_sums[group * kTile + a];
      const std::uint32_t i = i0 + a;
#pragma unroll
      for (int w = 0; w < kWords; ++w) {
        const std::uint64_t own =
            i < p.total ? args.d_bits[std::uint64_t{i} * args.words + args.first_word + w] : 0;
#pragma unroll
        for (int u = 0; u < kGroupColumns; ++u) {
          const bool on_x = ((own >> (g * kGroupColumns + u)) & 1u) != 0;
          const double same = s_t[a * kLdB + w * 64 + g * kGroupColumns + u];
          const double other = row_sum - same;
          double sums[3] = {on_x ? same : 0.0, on_x ? 0.0 : other, on_x ? other : same};
#pragma unroll
          for (int s = 0; s < 3; ++s) {
#pragma unroll
            for (int offset = 16; offset > 0; offset /= 2) {
              sums[s] += __shfl_down_sync(0xffffffffu, sums[s], offset);
            }
            if (lane == 0) s_warp[warp][s][w * kGroupColumns + u] = sums[s];
          }
        }
      }
      __syncthreads();
      // Warps 2g and 2g + 1 hold rows 0..31 and 32..63 of group g.
      for (int o = t; o < 3 * kColumns; o += kThreads) {
        const int s = o / kColumns, column = o % kColumns;
        const int w = column / 64, group = column % 64 / kGroupColumns, u = column % kGroupColumns;
        s_sums[s][column] += s_warp[2 * group][s][w * kGroupColumns + u] +
                             s_warp[2 * group + 1][s][w * kGroupColumns + u];
      }
      __syncthreads();
    }
    if (++col_tile == args.tiles) col_tile = ++row_tile;
  }
  __syncthreads();
  double* out = args.d_partials + std::uint64_t{blockIdx.x} * 3 * kColumns;
  for (int i = t; i < 3 * kColumns; i += kThreads) out[i] = (&s_sums[0][0])[i];
#else
  __trap();
#endif
}

// One thread per output: the blocks' partials added in block order.
__global__ void sum_partials_kernel(const double* d_partials, std::uint32_t blocks,
                                    std::uint32_t width, double* d_out) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= width) return;
  double sum = 0;
  for (std::uint32_t b = 0; b < blocks; ++b) sum += d_partials[std::uint64_t{b} * width + i];
  d_out[i] = sum;
}

// Linear test: one thread per pair (grid-stride), reference pair distances for the bandwidth.
__global__ void paired_distance_kernel(const float* d_reference, std::uint32_t features,
                                       std::uint64_t pairs, double* d_out) {
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < pairs;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    d_out[i] = squared_distance(d_reference + 2 * i * features,
                                d_reference + (2 * i + 1) * features, features);
  }
}

// Linear test: one thread per pair (grid-stride), h_i of mmd.hpp.
__global__ void linear_terms_kernel(const float* d_x, const float* d_y, std::uint32_t features,
                                    std::uint64_t pairs, double gamma, double* d_h) {
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < pairs;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const float* x0 = d_x + 2 * i * features;
    const float* x1 = x0 + features;
    const float* y0 = d_y + 2 * i * features;
    const float* y1 = y0 + features;
    const auto k = [&](const float* u, const float* v) {
      return exp(-gamma * squared_distance(u, v, features));
    };
    d_h[i] = k(x0, x1) + k(y0, y1) - k(x0, y1) - k(x1, y0);
  }
}

unsigned grid_for(const DeviceState& state, std::uint64_t items) {
  const std::uint64_t limit =
      8ull * static_cast<std::uint64_t>(state.properties().multiProcessorCount);
  return static_cast<unsigned>(
      std::clamp<std::uint64_t>(ceil_div(items, kSimpleThreads), 1, limit));
}

// The windows on the device: host windows are copied in (through pinned staging), device windows
// are read where they are. Then rows with NaN / +-inf are rejected.
struct Windows {
  const float* d_reference;
  const float* d_current;
};

class Staging {
 public:
  // Reserves, in the layouts, what stage() needs.
  Staging(const BatchView& reference, const BatchView& current, Layout& device, Layout& pinned)
      : reference_(reference), current_(current) {
    for (int w = 0; w < 2; ++w) {
      const BatchView& v = w == 0 ? reference : current;
      const std::size_t count = v.space == MemorySpace::Host ? v.rows * v.features : 0;
      d_at_[w] = device.add<float>(count);
      h_at_[w] = pinned.add<float>(count);
    }
    d_flags_at_ = device.add<unsigned long long>(2);
    h_flags_at_ = pinned.add<unsigned long long>(2);
  }

  Windows stage(DeviceState& state, int host_threads, const char* what, std::byte* d_base,
                std::byte* h_base) {
    const cudaStream_t stream = state.stream();
    const float* d_window[2];
    for (int w = 0; w < 2; ++w) {
      const BatchView& v = w == 0 ? reference_ : current_;
      d_window[w] = v.data;
      if (v.space == MemorySpace::Host) {
        const std::size_t bytes = v.rows * v.features * sizeof(float);
        float* h_copy = at<float>(h_base, h_at_[w]);
        float* d_copy = at<float>(d_base, d_at_[w]);
        driftguard::detail::parallel_copy(host_threads, h_copy, v.data, bytes);
        DG_CUDA_TRY(cudaMemcpyAsync(d_copy, h_copy, bytes, cudaMemcpyHostToDevice, stream));
        d_window[w] = d_copy;
      }
    }
    auto* d_flags = at<unsigned long long>(d_base, d_flags_at_);
    auto* h_flags = at<unsigned long long>(h_base, h_flags_at_);
    DG_CUDA_TRY(cudaMemsetAsync(d_flags, 0xff, 2 * sizeof(unsigned long long), stream));
    for (int w = 0; w < 2; ++w) {
      const BatchView& v = w == 0 ? reference_ : current_;
      const std::uint64_t count = std::uint64_t{v.rows} * v.features;
      first_non_finite_kernel<<<grid_for(state, count), kSimpleThreads, 0, stream>>>(
          d_window[w], count, static_cast<std::uint32_t>(v.features), d_flags + w);
      DG_CUDA_TRY_LAUNCH("first_non_finite_kernel");
    }
    DG_CUDA_TRY(cudaMemcpyAsync(h_flags, d_flags, 2 * sizeof(unsigned long long),
                                cudaMemcpyDeviceToHost, stream));
    DG_CUDA_TRY(cudaStreamSynchronize(stream));
    if (h_flags[0] < reference_.rows) detail::throw_non_finite_row(what, "reference", h_flags[0]);
    if (h_flags[1] < current_.rows) detail::throw_non_finite_row(what, "current", h_flags[1]);
    return {d_window[0], d_window[1]};
  }

 private:
  BatchView reference_, current_;
  std::size_t d_at_[2] = {}, h_at_[2] = {};
  std::size_t d_flags_at_ = 0, h_flags_at_ = 0;
};

// Permutations [first, first + segments) of one word: the range kernels and sorts run over.
struct PermutationBatch {
  std::uint32_t word, first, segments;
  bool observed;
};

std::vector<PermutationBatch> permutation_batches(std::uint32_t permutations, std::uint32_t total) {
  const auto per_sort =
      static_cast<std::uint32_t>(std::clamp<std::size_t>(kSortItems / total, 1, 64));
  std::vector<PermutationBatch> batches;
  for (std::uint32_t word = 0; word < detail::permutation_words(permutations); ++word) {
    // Column c >= 1 is permutation c - 1; word 0 also holds column 0, the observed split.
    const std::uint32_t first = word == 0 ? 0 : 64 * word - 1;
    const std::uint32_t last = std::min(64 * word + 63, permutations);  // exclusive
    for (std::uint32_t k = first; k < last; k += per_sort) {
      batches.push_back({word, k, std::min(per_sort, last - k), word == 0 && k == 0});
    }
  }
  return batches;
}

}  // namespace

detail::MmdSums mmd(DeviceState& state, int host_threads, BatchView reference, BatchView current,
                    const MmdOptions& options) {
  // CUB's segmented sort counts items in int.
  if (reference.rows + current.rows > static_cast<std::size_t>(INT_MAX)) {
    throw InvalidInput("mmd_test: the CUDA backend takes at most 2^31 - 1 rows in the two windows");
  }
  if (!mmd_runs_here(state)) {
    throw BackendUnavailable(
        "mmd_test: the CUDA backend needs FP64 tensor cores (compute capability 8.0, and code "
        "built for it); this device has " +
        std::to_string(state.properties().major) + "." + std::to_string(state.properties().minor) +
        ": pass host windows (tested on the CPU) or use the CPU backend");
  }
  DeviceGuard guard(state.device());
  state.follow_caller(reference);
  state.follow_caller(current);
  const cudaStream_t stream = state.stream();
  const auto n = static_cast<std::uint32_t>(reference.rows);
  const auto total = static_cast<std::uint32_t>(reference.rows + current.rows);
  const auto features = static_cast<std::uint32_t>(reference.features);
  const std::uint32_t words = detail::permutation_words(options.permutations);
  const std::uint32_t columns = options.permutations + 1;

  // Sizes first: CUB reports its temporary storage for a problem size without running.
  const std::uint64_t sample = detail::median_sample_rows(n);
  const std::uint64_t median_pairs = options.sigma ? 0 : sample * (sample - 1) / 2;
  std::size_t median_temp = 0;
  if (median_pairs > 0) {
    cub::DoubleBuffer<double> keys(nullptr, nullptr);
    DG_CUDA_TRY(
        cub::DeviceRadixSort::SortKeys(nullptr, median_temp, keys, median_pairs, 0, 64, stream));
  }
  const std::vector<PermutationBatch> batches = permutation_batches(options.permutations, total);
  std::uint32_t max_segments = 0;
  for (const PermutationBatch& b : batches) max_segments = std::max(max_segments, b.segments);
  const std::size_t sort_items = std::size_t{max_segments} * total;
  std::size_t sort_temp = 0;
  {
    cub::DoubleBuffer<std::uint64_t> keys(nullptr, nullptr);
    cub::DoubleBuffer<std::uint32_t> rows(nullptr, nullptr);
    int* offsets = nullptr;
    DG_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairs(
        nullptr, sort_temp, keys, rows, static_cast<int>(sort_items),
        static_cast<int>(max_segments), offsets, offsets, 0, 64, stream));
  }
  const std::uint64_t tiles = ceil_div(total, kTile);
  const std::uint64_t tile_pairs = tiles * (tiles + 1) / 2;
  // blocks_per_sm also raises each kernel's dynamic shared-memory limit to what it launches with.
  static_assert(kMaxPassWords == 2);
  const int per_sm = state.blocks_per_sm(reinterpret_cast<const void*>(&mmd_pairs_kernel<2>),
                                         kThreads, PairsShared<2>::kBytes);
  state.blocks_per_sm(reinterpret_cast<const void*>(&mmd_pairs_kernel<1>), kThreads,
                      PairsShared<1>::kBytes);
  const auto grid = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      tile_pairs,
      static_cast<std::uint64_t>(std::max(per_sm, 1)) * state.properties().multiProcessorCount));
  const std::uint32_t passes = static_cast<std::uint32_t>(ceil_div(words, kMaxPassWords));
  constexpr std::uint32_t kPassWidth = 3 * kMaxPassWords * 64;  // sum_partials_kernel outputs

  Layout device, pinned;
  Staging staging(reference, current, device, pinned);
  const std::size_t bits_at = device.add<std::uint64_t>(std::size_t{total} * words);
  const std::size_t partials_at = device.add<double>(std::size_t{grid} * kPassWidth);
  const std::size_t sums_at = device.add<double>(std::size_t{passes} * kPassWidth);
  // The median and the permutation sorts run one after the other and share scratch.
  Layout median, perms;
  const std::size_t m_keys_at = median.add<double>(median_pairs);
  const std::size_t m_alt_at = median.add<double>(median_pairs);
  const std::size_t m_temp_at = median.add<std::byte>(median_temp);
  const std::size_t p_keys_at = perms.add<std::uint64_t>(sort_items);
  const std::size_t p_keys_alt_at = perms.add<std::uint64_t>(sort_items);
  const std::size_t p_rows_at = perms.add<std::uint32_t>(sort_items);
  const std::size_t p_rows_alt_at = perms.add<std::uint32_t>(sort_items);
  const std::size_t p_offsets_at = perms.add<int>(max_segments + 1);
  const std::size_t p_temp_at = perms.add<std::byte>(sort_temp);
  const std::size_t scratch_at = device.add<std::byte>(std::max(median.bytes(), perms.bytes()));
  const std::size_t h_median_at = pinned.add<double>(1);
  const std::size_t h_sums_at = pinned.add<double>(std::size_t{passes} * kPassWidth);

  std::byte* d_base = state.device_workspace(device.bytes());
  std::byte* h_base = state.host_staging(pinned.bytes());
  std::byte* d_scratch = d_base + scratch_at;
  const Windows windows = staging.stage(state, host_threads, "mmd_test", d_base, h_base);
  const Pooled pooled{windows.d_reference, windows.d_current, n, total, features};

  detail::MmdSums sums;
  if (options.sigma) {
    sums.sigma = *options.sigma;
  } else {
    const auto s = static_cast<std::uint32_t>(sample);
    const dim3 blocks(static_cast<unsigned>(ceil_div(s, 16)),
                      static_cast<unsigned>(ceil_div(s, 16)));
    median_distance_kernel<<<blocks, dim3(16, 16), 0, stream>>>(pooled, s,
                                                                at<double>(d_scratch, m_keys_at));
    DG_CUDA_TRY_LAUNCH("median_distance_kernel");
    cub::DoubleBuffer<double> keys(at<double>(d_scratch, m_keys_at),
                                   at<double>(d_scratch, m_alt_at));
    std::size_t temp = median_temp;
    DG_CUDA_TRY(cub::DeviceRadixSort::SortKeys(d_scratch + m_temp_at, temp, keys, median_pairs, 0,
                                               64, stream));
    double* h_median = at<double>(h_base, h_median_at);
    DG_CUDA_TRY(cudaMemcpyAsync(h_median, keys.Current() + (median_pairs - 1) / 2, sizeof(double),
                                cudaMemcpyDeviceToHost, stream));
    DG_CUDA_TRY(cudaStreamSynchronize(stream));
    sums.sigma = detail::sigma_from_median(*h_median);
  }

  auto* d_bits = at<std::uint64_t>(d_base, bits_at);
  DG_CUDA_TRY(
      cudaMemsetAsync(d_bits, 0, std::size_t{total} * words * sizeof(std::uint64_t), stream));
  for (const PermutationBatch& b : batches) {
    const std::uint64_t items = std::uint64_t{b.segments} * total;
    int* d_offsets = at<int>(d_scratch, p_offsets_at);
    cub::DoubleBuffer<std::uint64_t> keys(at<std::uint64_t>(d_scratch, p_keys_at),
                                          at<std::uint64_t>(d_scratch, p_keys_alt_at));
    cub::DoubleBuffer<std::uint32_t> rows(at<std::uint32_t>(d_scratch, p_rows_at),
                                          at<std::uint32_t>(d_scratch, p_rows_alt_at));
    permutation_keys_kernel<<<grid_for(state, items), kSimpleThreads, 0, stream>>>(
        options.seed, b.first, b.segments, total, keys.Current(), rows.Current(), d_offsets);
    DG_CUDA_TRY_LAUNCH("permutation_keys_kernel");
    std::size_t temp = sort_temp;
    DG_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairs(
        d_scratch + p_temp_at, temp, keys, rows, static_cast<int>(items),
        static_cast<int>(b.segments), d_offsets, d_offsets + 1, 0, 64, stream));
    side_bits_kernel<<<static_cast<unsigned>(ceil_div(total, kSimpleThreads)), kSimpleThreads, 0,
                       stream>>>(options.seed, n, total, words, b.word, b.first, b.segments,
                                 b.observed, keys.Current(), rows.Current(), d_bits);
    DG_CUDA_TRY_LAUNCH("side_bits_kernel");
  }

  auto* d_partials = at<double>(d_base, partials_at);
  auto* d_sums = at<double>(d_base, sums_at);
  PairsArgs args{.pooled = pooled,
                 .gamma = 1.0 / (2.0 * sums.sigma * sums.sigma),
                 .d_bits = d_bits,
                 .words = words,
                 .first_word = 0,
                 .tiles = static_cast<std::uint32_t>(tiles),
                 .tile_pairs = tile_pairs,
                 .d_partials = d_partials};
  for (std::uint32_t pass = 0; pass < passes; ++pass) {
    args.first_word = pass * kMaxPassWords;
    const std::uint32_t pass_words =
        std::min<std::uint32_t>(kMaxPassWords, words - args.first_word);
    if (pass_words == 2) {
      mmd_pairs_kernel<2><<<grid, kThreads, PairsShared<2>::kBytes, stream>>>(args);
    } else {
      mmd_pairs_kernel<1><<<grid, kThreads, PairsShared<1>::kBytes, stream>>>(args);
    }
    DG_CUDA_TRY_LAUNCH("mmd_pairs_kernel");
    const std::uint32_t width = 3 * pass_words * 64;
    sum_partials_kernel<<<static_cast<unsigned>(ceil_div(width, kSimpleThreads)), kSimpleThreads, 0,
                          stream>>>(d_partials, grid, width, d_sums + pass * kPassWidth);
    DG_CUDA_TRY_LAUNCH("sum_partials_kernel");
  }
  double* h_sums = at<double>(h_base, h_sums_at);
  DG_CUDA_TRY(cudaMemcpyAsync(h_sums, d_sums, std::size_t{passes} * kPassWidth * sizeof(double),
                              cudaMemcpyDeviceToHost, stream));
  DG_CUDA_TRY(cudaStreamSynchronize(stream));

  sums.xx.resize(columns);
  sums.yy.resize(columns);
  sums.xy.resize(columns);
  for (std::uint32_t c = 0; c < columns; ++c) {
    const std::uint32_t pass = c / (kMaxPassWords * 64), column = c % (kMaxPassWords * 64);
    const std::uint32_t width =
        std::min<std::uint32_t>(kMaxPassWords, words - pass * kMaxPassWords) * 64;
    const double* h = h_sums + std::size_t{pass} * kPassWidth;
    sums.xx[c] = h[column];
    sums.yy[c] = h[width + column];
    sums.xy[c] = h[2 * width + column];
  }
  return sums;
}

bool mmd_runs_here(DeviceState& state) {
  if (state.properties().major < 8) return false;
  DeviceGuard guard(state.device());
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(&mmd_pairs_kernel<2>)) !=
      cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: cleared for the calls that follow
    return false;
  }
  return attributes.ptxVersion >= 80;  // below, the kernel's body is a trap
}

detail::MmdLinearTerms mmd_linear(DeviceState& state, int host_threads, BatchView reference,
                                  BatchView current, const MmdLinearOptions& options) {
  DeviceGuard guard(state.device());
  state.follow_caller(reference);
  state.follow_caller(current);
  const cudaStream_t stream = state.stream();
  const auto features = static_cast<std::uint32_t>(reference.features);
  const std::uint64_t pairs = std::min(reference.rows, current.rows) / 2;

  Layout device, pinned;
  Staging staging(reference, current, device, pinned);
  const std::size_t d_values_at = device.add<double>(pairs);
  const std::size_t h_values_at = pinned.add<double>(pairs);
  std::byte* d_base = state.device_workspace(device.bytes());
  std::byte* h_base = state.host_staging(pinned.bytes());
  const Windows windows = staging.stage(state, host_threads, "mmd_linear_test", d_base, h_base);
  double* d_values = at<double>(d_base, d_values_at);
  double* h_values = at<double>(h_base, h_values_at);
  const auto download = [&] {
    std::vector<double> values(pairs);
    DG_CUDA_TRY(cudaMemcpyAsync(h_values, d_values, pairs * sizeof(double), cudaMemcpyDeviceToHost,
                                stream));
    DG_CUDA_TRY(cudaStreamSynchronize(stream));
    std::memcpy(values.data(), h_values, pairs * sizeof(double));
    return values;
  };

  detail::MmdLinearTerms terms;
  if (options.sigma) {
    terms.sigma = *options.sigma;
  } else {
    paired_distance_kernel<<<grid_for(state, pairs), kSimpleThreads, 0, stream>>>(
        windows.d_reference, features, pairs, d_values);
    DG_CUDA_TRY_LAUNCH("paired_distance_kernel");
    std::vector<double> distances = download();
    terms.sigma = detail::paired_median_sigma(distances);
  }
  linear_terms_kernel<<<grid_for(state, pairs), kSimpleThreads, 0, stream>>>(
      windows.d_reference, windows.d_current, features, pairs,
      1.0 / (2.0 * terms.sigma * terms.sigma), d_values);
  DG_CUDA_TRY_LAUNCH("linear_terms_kernel");
  terms.h = download();
  return terms;
}

}  // namespace driftguard::cuda
