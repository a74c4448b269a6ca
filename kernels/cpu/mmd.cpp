// CPU backend of the MMD tests (OpenMP). The quadratic test walks the upper triangle of the pooled
// kernel matrix in 64 x 64 tiles and never stores more than one tile per thread: each kernel value
// is computed once and added to the observed split and all P permuted splits in the same pass.
// A permutation only relabels sides, so with s_c(j) = 1 when row j is on the X side of column c,
// a row i of tile pair (I, J) needs T_c(i) = sum_{j in J, j > i} k_ij s_c(j) and r(i) = sum_j k_ij:
// then xx_c += s_c(i) T_c(i), yy_c += (1 - s_c(i)) (r(i) - T_c(i)) and xy_c takes the rest.
// T over all columns is a small matrix product with 0/1 entries, vectorised across columns.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/mmd_common.hpp"

namespace driftguard::cpu {
namespace {

constexpr std::size_t kTile = 64;
// 8 doubles; the compiler splits it where a clone's ISA is narrower. Loads and stores go through
// memcpy (unaligned, no aliasing questions).
using Vec = double __attribute__((vector_size(64)));
constexpr std::size_t kVec = sizeof(Vec) / sizeof(double);
constexpr std::size_t kChunk = 2 * kVec;  // columns per register block; columns are padded to this
constexpr std::size_t kRowBlock = 4;      // rows of I sharing each load of s_j

// exp(x) for x <= 0, branch-free so that loops over it vectorise (glibc's exp does not without
// -ffast-math, and it is most of the cost of a tile otherwise). Cody-Waite reduction with fdlibm's
// split of ln 2, Taylor series to degree 13 on |r| <= ln(2)/2 (truncation < 1e-17), and 2^k
// applied in two halves so that results down to the subnormal range come out right: within 2 ulp.
inline double exp_nonpositive(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kRound = 0x1.8p52;  // adding it rounds to an integer held in the low bits
  x = x < -745.5 ? -745.5 : x;         // exp(-745.5) rounds to 0
  const double shifted = x * kLog2e + kRound;
  const double k = shifted - kRound;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  constexpr double kInverseFactorials[] = {1.0 / 479001600.0,
                                           1.0 / 39916800.0,
                                           1.0 / 3628800.0,
                                           1.0 / 362880.0,
                                           1.0 / 40320.0,
                                           1.0 / 5040.0,
                                           1.0 / 720.0,
                                           1.0 / 120.0,
                                           1.0 / 24.0,
                                           1.0 / 6.0,
                                           0.5,
                                           1.0,
                                           1.0};
  for (double c : kInverseFactorials) p = p * r + c;
  const auto ki = static_cast<std::int64_t>(std::bit_cast<std::uint64_t>(shifted) << 12) >> 12;
  const std::int64_t half = ki >> 1;
  const auto scale = [](std::int64_t e) {
    return std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52);
  };
  return p * scale(half) * scale(ki - half);
}

// Threads worth waking for `work` elementary operations: below a few milliseconds of work each,
// waking a thread costs more than it saves, and on a busy machine waiting at the barrier for a
// descheduled one costs far more.
int workers(int threads, double work) {
  constexpr double kWorkPerThread = 1 << 22;
  return static_cast<int>(std::clamp(work / kWorkPerThread, 1.0, static_cast<double>(threads)));
}

// Index of the first row of `batch` holding NaN or +-inf, or batch.rows.
std::size_t first_non_finite_row(int threads, const BatchView& batch) {
  std::size_t first = batch.rows;
  const std::size_t d = batch.features;
  const int team = workers(threads, static_cast<double>(batch.rows * d));
#pragma omp parallel for num_threads(team) reduction(min : first) schedule(static)
  for (std::size_t row = 0; row < batch.rows; ++row) {
    const float* x = batch.data + row * d;
    bool bad = false;
    for (std::size_t f = 0; f < d; ++f) bad |= !std::isfinite(x[f]);
    if (bad) first = std::min(first, row);
  }
  return first;
}

void check_finite(int threads, const char* what, const BatchView& reference,
                  const BatchView& current) {
  if (const std::size_t row = first_non_finite_row(threads, reference); row < reference.rows) {
    detail::throw_non_finite_row(what, "reference", row);
  }
  if (const std::size_t row = first_non_finite_row(threads, current); row < current.rows) {
    detail::throw_non_finite_row(what, "current", row);
  }
}

// The pooled rows (reference, then current) widened to double and stored by tile, feature-major
// within a tile ([tile][feature][kTile], zero past the last row): a tile pair then reads each of
// its features as one contiguous vector, with no transposition per pair.
std::vector<double> tiled_columns(const BatchView& reference, const BatchView& current,
                                  std::size_t tiles) {
  const std::size_t d = reference.features;
  std::vector<double> out(tiles * d * kTile, 0.0);
  for (std::size_t row = 0; row < reference.rows + current.rows; ++row) {
    const float* x =
        row < reference.rows ? reference.data + row * d : current.data + (row - reference.rows) * d;
    double* tile = out.data() + row / kTile * d * kTile + row % kTile;
    for (std::size_t f = 0; f < d; ++f) tile[f * kTile] = x[f];
  }
  return out;
}

// Squared distances of sample row t to rows t+1.. into out[t+1..]; `columns` is [feature][sample].
__attribute__((target_clones("avx512f", "avx2", "default"))) void distances_from(
    const double* columns, std::size_t d, std::uint64_t sample, std::uint64_t t, double* out) {
  for (std::size_t f = 0; f < d; ++f) {
    const double* __restrict__ col = columns + f * sample;
    double* __restrict__ o = out;
    const double xf = col[t];
    for (std::uint64_t u = t + 1; u < sample; ++u) o[u] += (xf - col[u]) * (xf - col[u]);
  }
}

// alibi's median heuristic over the pairs of the reference subsample (mmd.hpp). The sample is
// stored feature-major so that the distances from one row to all later ones vectorise.
double median_sigma(int threads, const BatchView& reference) {
  const std::size_t n = reference.rows, d = reference.features;
  const std::uint64_t sample = detail::median_sample_rows(n);
  std::vector<double> columns(d * sample);
  for (std::uint64_t t = 0; t < sample; ++t) {
    const float* x = reference.data + detail::median_sample_row(t, n, sample) * d;
    for (std::size_t f = 0; f < d; ++f) columns[f * sample + t] = x[f];
  }
  std::vector<double> distances(sample * (sample - 1) / 2, 0.0);
  const int team = workers(threads, static_cast<double>(distances.size() * d));
#pragma omp parallel for num_threads(team) schedule(dynamic, 16)
  for (std::uint64_t t = 0; t < sample - 1; ++t) {
    // Row t's pairs (t, u > t) are contiguous in the upper-triangle order.
    distances_from(columns.data(), d, sample, t,
                   distances.data() + t * (2 * sample - t - 1) / 2 - (t + 1));
  }
  return detail::median_sigma(distances);
}

// Side bits of every pooled row for all columns, permutation_words(P) words per row.
std::vector<std::uint64_t> side_bits(int threads, std::size_t n, std::size_t total,
                                     const MmdOptions& options) {
  const std::uint32_t words = detail::permutation_words(options.permutations);
  std::vector<std::uint64_t> bits(total * words, 0);
  for (std::size_t row = 0; row < n; ++row) bits[row * words] |= 1;
  // A Philox call and a share of nth_element per key: a few dozen operations.
  const double work = 32.0 * options.permutations * static_cast<double>(total);
  // Allocated here: an exception may not leave an OpenMP region.
  const int team = workers(threads, work);
  std::vector<std::vector<std::pair<std::uint64_t, std::uint32_t>>> per_thread(
      static_cast<std::size_t>(team), std::vector<std::pair<std::uint64_t, std::uint32_t>>(total));
#pragma omp parallel num_threads(team)
  {
    auto& keys = per_thread[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
    for (std::uint32_t k = 0; k < options.permutations; ++k) {
      for (std::size_t row = 0; row < total; ++row) {
        const auto r = static_cast<std::uint32_t>(row);
        keys[row] = {detail::permutation_key(options.seed, k, r), r};
      }
      const auto last = keys.begin() + static_cast<std::ptrdiff_t>(n - 1);
      std::nth_element(keys.begin(), last, keys.end());
      const auto [last_key, last_row] = *last;
      const std::uint32_t column = k + 1;
      const std::uint64_t bit = std::uint64_t{1} << (column % 64);
      for (const auto& [key, row] : keys) {
        if (detail::on_x_side(key, row, last_key, last_row)) {
          // Other threads set other bits of the same word.
          std::atomic_ref<std::uint64_t>(bits[row * words + column / 64])
              .fetch_or(bit, std::memory_order_relaxed);
        }
      }
    }
  }
  return bits;
}

// One thread's scratch and running sums.
struct Worker {
  std::vector<double> kernel = std::vector<double>(kTile * kTile);
  std::vector<double> dist = std::vector<double>(kTile);
  std::vector<double> s_i, s_j;    // [kTile][columns]: side bits as 0.0 / 1.0
  std::vector<double> xx, yy, xy;  // [columns]
  explicit Worker(std::size_t columns)
      : s_i(kTile * columns), s_j(kTile * columns), xx(columns), yy(columns), xy(columns) {}
};

struct Problem {
  const std::vector<double>* tiled;  // tiled_columns()
  const std::vector<std::uint64_t>* bits;
  std::size_t total, features, words, columns;  // columns padded to kChunk
  double gamma;
};

void expand_sides(const Problem& pb, std::size_t first, std::vector<double>& sides) {
  for (std::size_t a = 0; a < kTile; ++a) {
    double* out = sides.data() + a * pb.columns;
    const std::size_t row = first + a;
    for (std::size_t c0 = 0; c0 < pb.columns; c0 += 64) {
      const std::uint64_t word = row < pb.total ? (*pb.bits)[row * pb.words + c0 / 64] : 0;
      const std::size_t count = std::min<std::size_t>(64, pb.columns - c0);
      for (std::size_t u = 0; u < count; ++u) out[c0 + u] = static_cast<double>((word >> u) & 1);
    }
  }
}

// Kernel values of tile pair (i0, j0) into w.kernel; 0 outside the matrix and, on a diagonal tile,
// on and below the diagonal, so that every unordered pair counts once. With accumulate_tile, the
// only code the library lets g++ contract into fma (20% of an MMD test's time): kernel values may
// differ in their last bits between an FMA machine and another, as they do between the CPU and
// CUDA's exp, which the tie tolerance of the permutation counts absorbs (kMmdTieTolerance).
// sigma's distances are not contracted: distances_from rounds the same on every machine and on
// the GPU.
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=fast"))) void
kernel_tile(const Problem& pb, std::size_t i0, std::size_t j0, Worker& w) {
  const std::size_t d = pb.features;
  const std::size_t j_count = std::min(kTile, pb.total - j0);
  const double* x_i = pb.tiled->data() + i0 * d;  // tile i0 / kTile starts at i0 * d
  const double* x_j = pb.tiled->data() + j0 * d;
  for (std::size_t a = 0; a < kTile; ++a) {
    double* k = w.kernel.data() + a * kTile;
    if (i0 + a >= pb.total) {
      std::fill(k, k + kTile, 0.0);
      continue;
    }
    Vec dist[kTile / kVec] = {};  // a row of the tile, in registers
    for (std::size_t f = 0; f < d; ++f) {
      const double xf = x_i[f * kTile + a];
      const double* col = x_j + f * kTile;
      for (std::size_t v = 0; v < kTile / kVec; ++v) {
        Vec c;
        std::memcpy(&c, col + v * kVec, sizeof c);
        const Vec diff = xf - c;
        dist[v] += diff * diff;
      }
    }
    std::memcpy(w.dist.data(), dist, sizeof dist);
    const std::size_t b_first = i0 == j0 ? a + 1 : 0;
    for (std::size_t b = 0; b < kTile; ++b) {
      const double value = exp_nonpositive(-pb.gamma * w.dist[b]);
      k[b] = b >= b_first && b < j_count ? value : 0.0;
    }
  }
}

// Adds tile pair (i0, j0) to the worker's sums; w.kernel and w.s_j hold the tile, w.s_i row i0's.
// A register block is kRowBlock rows x kChunk columns of T: per row b of J, two loads of s_j and
// kRowBlock x 2 multiply-adds, contracted into fma where the machine has it (k * 0 and k * 1 are
// exact, so T is the plain sum of the selected kernel values either way).
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=fast"))) void
accumulate_tile(const Problem& pb, Worker& w) {
  static_assert(kChunk == 2 * kVec && kTile % kRowBlock == 0);
  const std::size_t cols = pb.columns;
  for (std::size_t a0 = 0; a0 < kTile; a0 += kRowBlock) {
    const double* k = w.kernel.data() + a0 * kTile;
    double r[kRowBlock] = {};
    for (std::size_t q = 0; q < kRowBlock; ++q) {
      for (std::size_t b = 0; b < kTile; ++b) r[q] += k[q * kTile + b];
    }
    for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
      Vec t[kRowBlock][2] = {};
      for (std::size_t b = 0; b < kTile; ++b) {
        Vec s0, s1;
        std::memcpy(&s0, w.s_j.data() + b * cols + c0, sizeof s0);
        std::memcpy(&s1, w.s_j.data() + b * cols + c0 + kVec, sizeof s1);
        for (std::size_t q = 0; q < kRowBlock; ++q) {
          const double kb = k[q * kTile + b];
          t[q][0] += kb * s0;
          t[q][1] += kb * s1;
        }
      }
      for (std::size_t q = 0; q < kRowBlock; ++q) {
        double tq[kChunk];
        std::memcpy(tq, t[q], sizeof tq);
        const double* __restrict__ s = w.s_i.data() + (a0 + q) * cols + c0;
        double* __restrict__ xx = w.xx.data() + c0;
        double* __restrict__ yy = w.yy.data() + c0;
        double* __restrict__ xy = w.xy.data() + c0;
        for (std::size_t u = 0; u < kChunk; ++u) {
          const double rest = r[q] - tq[u];
          xx[u] += s[u] * tq[u];
          yy[u] += (1.0 - s[u]) * rest;
          xy[u] += s[u] * rest + (1.0 - s[u]) * tq[u];
        }
      }
    }
  }
}

}  // namespace

detail::MmdSums mmd(int threads, BatchView reference, BatchView current,
                    const MmdOptions& options) {
  check_finite(threads, "mmd_test", reference, current);
  const std::size_t n = reference.rows, d = reference.features;
  const std::size_t total = n + current.rows, tiles = (total + kTile - 1) / kTile;
  const std::vector<double> tiled = tiled_columns(reference, current, tiles);
  detail::MmdSums sums;
  sums.sigma = options.sigma ? *options.sigma : median_sigma(threads, reference);
  const std::vector<std::uint64_t> bits = side_bits(threads, n, total, options);

  const Problem pb{.tiled = &tiled,
                   .bits = &bits,
                   .total = total,
                   .features = d,
                   .words = detail::permutation_words(options.permutations),
                   .columns = (options.permutations + 1 + kChunk - 1) / kChunk * kChunk,
                   .gamma = 1.0 / (2.0 * sums.sigma * sums.sigma)};
  const double pairs = 0.5 * static_cast<double>(total) * static_cast<double>(total);
  // Allocated here: an exception may not leave an OpenMP region.
  const int team = workers(threads, pairs * static_cast<double>(2 * d + pb.columns));
  std::vector<Worker> per_thread(static_cast<std::size_t>(team), Worker(pb.columns));
#pragma omp parallel num_threads(team)
  {
    Worker& w = per_thread[static_cast<std::size_t>(omp_get_thread_num())];
    // Row tile I has tiles - I tile pairs; folding row q with row tiles-1-q evens out the work
    // under a static (hence deterministic) schedule.
    const auto row_tile = [&](std::size_t i_tile) {
      expand_sides(pb, i_tile * kTile, w.s_i);
      for (std::size_t j_tile = i_tile; j_tile < tiles; ++j_tile) {
        kernel_tile(pb, i_tile * kTile, j_tile * kTile, w);
        expand_sides(pb, j_tile * kTile, w.s_j);
        accumulate_tile(pb, w);
      }
    };
#pragma omp for schedule(static)
    for (std::size_t q = 0; q < (tiles + 1) / 2; ++q) {
      row_tile(q);
      if (tiles - 1 - q != q) row_tile(tiles - 1 - q);
    }
  }
  const std::size_t columns = options.permutations + 1;
  sums.xx.assign(columns, 0.0);
  sums.yy.assign(columns, 0.0);
  sums.xy.assign(columns, 0.0);
  for (const Worker& w : per_thread) {
    for (std::size_t c = 0; c < columns; ++c) {
      sums.xx[c] += w.xx[c];
      sums.yy[c] += w.yy[c];
      sums.xy[c] += w.xy[c];
    }
  }
  return sums;
}

detail::MmdLinearTerms mmd_linear(int threads, BatchView reference, BatchView current,
                                  const MmdLinearOptions& options) {
  check_finite(threads, "mmd_linear_test", reference, current);
  const std::size_t d = reference.features;
  const std::size_t pairs = std::min(reference.rows, current.rows) / 2;
  const auto distance = [d](const float* a, const float* b) {
    double sum = 0;
    for (std::size_t f = 0; f < d; ++f) {
      const double diff = static_cast<double>(a[f]) - static_cast<double>(b[f]);
      sum += diff * diff;
    }
    return sum;
  };
  const auto x = [&](std::size_t row) { return reference.data + row * d; };
  const auto y = [&](std::size_t row) { return current.data + row * d; };
  detail::MmdLinearTerms terms;
  if (options.sigma) {
    terms.sigma = *options.sigma;
  } else {
    std::vector<double> paired(pairs);
    const int team = workers(threads, static_cast<double>(pairs * d));
#pragma omp parallel for num_threads(team) schedule(static)
    for (std::size_t i = 0; i < pairs; ++i) paired[i] = distance(x(2 * i), x(2 * i + 1));
    terms.sigma = detail::paired_median_sigma(paired);
  }
  const double gamma = 1.0 / (2.0 * terms.sigma * terms.sigma);
  terms.h.resize(pairs);
  const int team = workers(threads, static_cast<double>(4 * pairs * d));
#pragma omp parallel for num_threads(team) schedule(static)
  for (std::size_t i = 0; i < pairs; ++i) {
    const auto k = [gamma](double dist) { return exp_nonpositive(-gamma * dist); };
    terms.h[i] = k(distance(x(2 * i), x(2 * i + 1))) + k(distance(y(2 * i), y(2 * i + 1))) -
                 k(distance(x(2 * i), y(2 * i + 1))) - k(distance(x(2 * i + 1), y(2 * i)));
  }
  return terms;
}

}  // namespace driftguard::cpu
