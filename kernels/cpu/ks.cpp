// CPU backend of KS: columns are gathered out of the row-major batch into one column-major array
// of sort keys (NaN dropped), each column is radix-sorted on its own (OpenMP over features), and
// the statistic of a feature is one linear merge of its sorted current column with the sorted
// reference column.
#include <omp.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/ks_common.hpp"
#include "kernels/parallel.hpp"

namespace driftguard::cpu {
namespace {

using detail::parallel_for;

// Rows per gather block: a block's per-feature counters stay in L1 and its rows in L2.
constexpr std::size_t kBlockRows = 2048;
// Below this many values a comparison sort beats the four counting passes.
constexpr std::size_t kRadixMinValues = 512;
constexpr int kDigitBits = 8;
constexpr int kDigits = 32 / kDigitBits;
constexpr std::size_t kBuckets = std::size_t{1} << kDigitBits;

// Uninitialised storage: every element is written before it is read, and value-initialising a
// batch-sized vector would cost a full extra pass.
template <class T>
using Buffer = std::unique_ptr<T[]>;
template <class T>
Buffer<T> make_buffer(std::size_t n) {
  return Buffer<T>(new T[n]);
}

// The non-NaN values of every column as sort keys, column after column.
struct ColumnKeys {
  Buffer<std::uint32_t> keys;
  std::vector<std::uint64_t> offsets;     // features + 1
  std::vector<std::uint64_t> nan_counts;  // features
  std::uint64_t max_column = 0;
};

// Two passes over the batch in row blocks: count each block's non-NaN values per feature, then
// write each value's key at its column's running position, so every column is contiguous.
ColumnKeys gather_keys(int threads, const BatchView& batch) {
  const std::size_t rows = batch.rows;
  const std::size_t features = batch.features;
  const std::size_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<std::uint32_t> block_counts(blocks * features, 0);
  parallel_for(threads, blocks, [&](std::size_t b) {
    std::uint32_t* count = block_counts.data() + b * features;
    const std::size_t end = std::min(rows, (b + 1) * kBlockRows);
    for (std::size_t r = b * kBlockRows; r < end; ++r) {
      const float* x = batch.data + r * features;
      for (std::size_t f = 0; f < features; ++f) count[f] += x[f] == x[f] ? 1u : 0u;
    }
  });

  ColumnKeys out;
  out.offsets.assign(features + 1, 0);
  out.nan_counts.assign(features, 0);
  // Where each block writes its first value of each feature.
  std::vector<std::uint64_t> position(blocks * features);
  for (std::size_t f = 0; f < features; ++f) {
    std::uint64_t at = out.offsets[f];
    for (std::size_t b = 0; b < blocks; ++b) {
      position[b * features + f] = at;
      at += block_counts[b * features + f];
    }
    out.offsets[f + 1] = at;
    out.nan_counts[f] = rows - (at - out.offsets[f]);
    out.max_column = std::max(out.max_column, at - out.offsets[f]);
  }
  out.keys = make_buffer<std::uint32_t>(out.offsets[features]);
  std::uint32_t* keys = out.keys.get();
  parallel_for(threads, blocks, [&](std::size_t b) {
    std::uint64_t* at = position.data() + b * features;
    const std::size_t end = std::min(rows, (b + 1) * kBlockRows);
    for (std::size_t r = b * kBlockRows; r < end; ++r) {
      const float* x = batch.data + r * features;
      for (std::size_t f = 0; f < features; ++f) {
        if (x[f] == x[f]) keys[at[f]++] = detail::ks_sort_key(x[f]);
      }
    }
  });
  return out;
}

// Sorts n keys in place (LSD radix, 8-bit digits; digits shared by every key are skipped).
// `scratch` holds at least n keys.
void sort_keys(std::uint32_t* keys, std::uint32_t* scratch, std::size_t n) {
  if (n < kRadixMinValues) {
    std::sort(keys, keys + n);
    return;
  }
  std::array<std::array<std::size_t, kBuckets>, kDigits> counts{};
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k = keys[i];
    for (int d = 0; d < kDigits; ++d) ++counts[d][(k >> (d * kDigitBits)) & (kBuckets - 1)];
  }
  std::uint32_t* src = keys;
  std::uint32_t* dst = scratch;
  for (int d = 0; d < kDigits; ++d) {
    std::array<std::size_t, kBuckets>& count = counts[d];
    const int shift = d * kDigitBits;
    if (count[(src[0] >> shift) & (kBuckets - 1)] == n) continue;
    std::size_t at = 0;
    for (std::size_t& c : count) {
      const std::size_t next = at + c;
      c = at;
      at = next;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t k = src[i];
      dst[count[(k >> shift) & (kBuckets - 1)]++] = k;
    }
    std::swap(src, dst);
  }
  if (src != keys) std::copy(src, src + n, keys);
}

// Sorts every column (threads share the columns; each owns a scratch buffer), then calls
// done(feature) for the column while it is still in cache.
template <class Done>
void sort_columns_of(int threads, ColumnKeys& columns, std::size_t features, Done&& done) {
  std::vector<Buffer<std::uint32_t>> scratch(static_cast<std::size_t>(threads));
  parallel_for(threads, features, [&](std::size_t f) {
    Buffer<std::uint32_t>& own = scratch[static_cast<std::size_t>(omp_get_thread_num())];
    if (!own) own = make_buffer<std::uint32_t>(std::max<std::uint64_t>(columns.max_column, 1));
    const std::uint64_t begin = columns.offsets[f];
    sort_keys(columns.keys.get() + begin, own.get(), columns.offsets[f + 1] - begin);
    done(f);
  });
}

// The extremes of F_R - F_C in one pass over both sorted samples, with data-dependent branches
// (kept for sizes where walk_column's integer test would not be exact). Between two current
// values the difference only rises (reference values pass), and at a current value it drops, so a
// maximum can only sit at the last reference value below a current value, at a current value or
// at the very end, and a minimum only at a current value: those are the places evaluated. Every
// other pooled value's difference is strictly inside that range, so skipping it changes no
// extreme and no tie (the CUDA backend evaluates every pooled value and gets the same result).
// cur(j) is the j-th smallest current value.
template <class Current>
detail::KsExtremes merge_column(std::span<const float> reference, Current cur, std::uint64_t n2) {
  const std::uint64_t n1 = reference.size();
  detail::KsCandidate max = detail::ks_no_max(), min = detail::ks_no_min();
  auto consider_max = [&max](const detail::KsCandidate& c) {
    if (detail::ks_precedes_as_max(c, max)) max = c;
  };
  const float* r = reference.data();
  std::uint64_t i = 0, j = 0;
  while (j < n2) {
    const float c = cur(j);
    if (i < n1 && r[i] < c) {
      do {
        ++i;
      } while (i < n1 && r[i] < c);
      consider_max({detail::ks_ecdf_difference(i, n1, j, n2), r[i - 1], 1u});
    }
    const std::uint64_t below = i;
    while (i < n1 && r[i] == c) ++i;
    do {
      ++j;
    } while (j < n2 && cur(j) == c);
    const bool in_reference = i > below;
    const detail::KsCandidate at_c{detail::ks_ecdf_difference(i, n1, j, n2),
                                   in_reference ? r[i - 1] : cur(j - 1), in_reference ? 1u : 0u};
    consider_max(at_c);
    if (detail::ks_precedes_as_min(at_c, min)) min = at_c;
  }
  if (i < n1) consider_max({detail::ks_ecdf_difference(n1, n1, n2, n2), r[n1 - 1], 1u});
  return {max, min, n2, 0};
}

// Above this n1 * n2, two different values of F_R - F_C (which differ by at least 1 / (n1 n2))
// may round to doubles less than an ulp apart, and walk_column's integer test is not exact.
constexpr std::uint64_t kMaxExactProduct = std::uint64_t{1} << 50;

// The same extremes and candidates as merge_column, with its two costs cut: the reference values
// below the next current value are counted four at a time (one vector compare; sorted values make
// the mask a run of ones), so the loop branches once per current value, predictably; and a
// candidate is evaluated in double only when k = i n2 - j n1 (n1 n2 (F_R - F_C), exact in 64 bits)
// reaches the running extreme of k. k orders the candidates as their double differences do when
// n1 n2 <= 2^50 (distinct values differ by at least 1 / (n1 n2), far more than the rounding), and
// equal k are compared in double by SciPy's rules (ks_precedes_*), so the result is merge_column's.
struct Extremes {
  std::uint64_t n1, n2;
  std::int64_t k_max = std::numeric_limits<std::int64_t>::min();
  std::int64_t k_min = std::numeric_limits<std::int64_t>::max();
  detail::KsCandidate max = detail::ks_no_max(), min = detail::ks_no_min();

  [[gnu::noinline]] void evaluate(std::int64_t k, std::uint64_t i, std::uint64_t j, float location,
                                  bool in_reference, bool as_min) {
    const detail::KsCandidate c{detail::ks_ecdf_difference(i, n1, j, n2), location,
                                in_reference ? 1u : 0u};
    if (k >= k_max) {
      if (k > k_max || detail::ks_precedes_as_max(c, max)) max = c;
      k_max = k;
    }
    if (as_min && k <= k_min) {
      if (k < k_min || detail::ks_precedes_as_min(c, min)) min = c;
      k_min = k;
    }
  }
};

// The current values are cut into kChains ranges at distinct values (no run of equal values is
// cut); each range is walked by its own chain, side by side, so that the chains' load-compare
// latencies overlap. The chains share the running extremes (candidates are ordered by value, not
// by position), and the one candidate a cut hides (the last reference value below the cut) is
// evaluated after the walk.
constexpr int kChains = 4;

struct Chain {
  std::uint64_t i, j, j_end;
};

// Processes the run of current values at chain.j: the reference values below it, its ties.
inline void advance(Chain& chain, const float* r, std::uint64_t n1, const float* cur,
                    std::int64_t s1, std::int64_t s2, Extremes& e) {
  std::uint64_t i = chain.i, j = chain.j;
  const float c = cur[j];
  const std::uint64_t i0 = i;
#if defined(__SSE2__)
  const __m128 cv = _mm_set1_ps(c);
  for (;;) {
    if (i + 4 > n1) {
      while (i < n1 && r[i] < c) ++i;
      break;
    }
    const auto below =
        static_cast<unsigned>(_mm_movemask_ps(_mm_cmplt_ps(_mm_loadu_ps(r + i), cv)));
    const auto count = static_cast<unsigned>(__builtin_ctz(~below));  // <= 4
    i += count;
    if (count < 4) break;
  }
#else
  while (i < n1 && r[i] < c) ++i;
#endif
  // The last reference value below c (when there is one) is a candidate maximum.
  const std::int64_t k_before =
      static_cast<std::int64_t>(i) * s2 - static_cast<std::int64_t>(j) * s1;
  if (k_before >= e.k_max && i > i0) e.evaluate(k_before, i, j, r[i - 1], true, false);
  const std::uint64_t below = i;
  while (i < n1 && r[i] == c) ++i;
  do {
    ++j;
  } while (j < chain.j_end && cur[j] == c);
  const std::int64_t k = static_cast<std::int64_t>(i) * s2 - static_cast<std::int64_t>(j) * s1;
  if (k >= e.k_max || k <= e.k_min) {
    const bool in_reference = i > below;
    e.evaluate(k, i, j, in_reference ? r[i - 1] : cur[j - 1], in_reference, true);
  }
  chain.i = i;
  chain.j = j;
}

detail::KsExtremes walk_column(std::span<const float> reference, const float* cur,
                               std::uint64_t n2) {
  const std::uint64_t n1 = reference.size();
  const auto s1 = static_cast<std::int64_t>(n1), s2 = static_cast<std::int64_t>(n2);
  const float* r = reference.data();
  Extremes e{n1, n2};
  // Chain w starts at the first current value >= cut_w = cur[n2 w / kChains] and at the first
  // reference value >= cut_w (chain 0 at the start).
  std::array<Chain, kChains> chains;
  std::array<std::uint64_t, kChains> start_i{};
  for (int w = 0; w < kChains; ++w) {
    if (w == 0) {
      chains[w] = {0, 0, 0};
    } else {
      const float cut = cur[n2 * static_cast<std::uint64_t>(w) / kChains];
      chains[w].i = static_cast<std::uint64_t>(std::lower_bound(r, r + n1, cut) - r);
      chains[w].j = static_cast<std::uint64_t>(std::lower_bound(cur, cur + n2, cut) - cur);
    }
    start_i[w] = chains[w].i;
  }
  for (int w = 0; w < kChains; ++w) chains[w].j_end = w + 1 < kChains ? chains[w + 1].j : n2;
  for (;;) {
    bool all = true;
    for (const Chain& chain : chains) all &= chain.j < chain.j_end;
    if (!all) break;
    for (Chain& chain : chains) advance(chain, r, n1, cur, s1, s2, e);
  }
  for (int w = 0; w < kChains; ++w) {
    Chain& chain = chains[w];
    while (chain.j < chain.j_end) advance(chain, r, n1, cur, s1, s2, e);
    // The reference values between the chain's last current value and the next cut.
    const std::uint64_t next_i = w + 1 < kChains ? start_i[w + 1] : n1;
    if (next_i > chain.i) {
      const std::int64_t k =
          static_cast<std::int64_t>(next_i) * s2 - static_cast<std::int64_t>(chain.j) * s1;
      if (k >= e.k_max) e.evaluate(k, next_i, chain.j, r[next_i - 1], true, false);
    }
  }
  return {e.max, e.min, n2, 0};
}

detail::KsExtremes extremes_of(std::span<const float> reference, const float* cur,
                               std::uint64_t n2) {
  const std::uint64_t n1 = reference.size();
  if (n1 == 0 || n2 == 0) return {detail::ks_no_test(), detail::ks_no_test(), n2, 0};
  if (n1 <= kMaxExactProduct / n2) return walk_column(reference, cur, n2);
  return merge_column(
      reference, [cur](std::uint64_t j) { return cur[j]; }, n2);
}

}  // namespace

SortedColumns sort_columns(int threads, BatchView batch) {
  ColumnKeys columns = gather_keys(threads, batch);
  SortedColumns out;
  out.features = batch.features;
  out.values.resize(columns.offsets.back());
  sort_columns_of(threads, columns, batch.features, [&](std::size_t f) {
    for (std::uint64_t i = columns.offsets[f]; i < columns.offsets[f + 1]; ++i) {
      out.values[i] = detail::ks_key_value(columns.keys[i]);
    }
  });
  out.offsets = std::move(columns.offsets);
  out.nan_counts = std::move(columns.nan_counts);
  return out;
}

void ks_statistics(int threads, const SortedColumns& reference, BatchView current,
                   std::span<detail::KsExtremes> out) {
  ColumnKeys columns = gather_keys(threads, current);
  // Per thread: the sorted column as floats (the merge compares floats: -0.0 == +0.0).
  std::vector<std::vector<float>> values(static_cast<std::size_t>(threads));
  sort_columns_of(threads, columns, current.features, [&](std::size_t f) {
    const std::uint64_t begin = columns.offsets[f];
    const std::uint64_t n = columns.offsets[f + 1] - begin;
    std::vector<float>& own = values[static_cast<std::size_t>(omp_get_thread_num())];
    own.resize(columns.max_column);
    const std::uint32_t* keys = columns.keys.get() + begin;
    for (std::uint64_t i = 0; i < n; ++i) own[i] = detail::ks_key_value(keys[i]);
    out[f] = extremes_of(reference.column(f), own.data(), n);
    out[f].nan_current = columns.nan_counts[f];
  });
}

void ks_statistics(int threads, const SortedColumns& reference, const SortedColumns& current,
                   std::span<detail::KsExtremes> out) {
  parallel_for(threads, current.features, [&](std::size_t f) {
    const std::span<const float> c = current.column(f);
    out[f] = extremes_of(reference.column(f), c.data(), c.size());
    out[f].nan_current = current.nan_counts[f];
  });
}

}  // namespace driftguard::cpu
