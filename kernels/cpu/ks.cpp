// CPU backend of KS: columns are gathered out of the row-major batch into one column-major array
// of sort keys (NaN dropped), each column is radix-sorted on its own (OpenMP over features), and
// the statistic of a feature is one linear merge of its sorted current column with the sorted
// reference column.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
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

// The extremes of F_R - F_C in one pass over both sorted samples. Between two current values
// the difference only rises (reference values pass), and at a current value it drops, so a
// maximum can only sit at the last reference value below a current value, at a current value or
// at the very end, and a minimum only at a current value: those are the places evaluated. Every
// other pooled value's difference is strictly inside that range, so skipping it changes no
// extreme and no tie (the CUDA backend evaluates every pooled value and gets the same result).
// cur(j) is the j-th smallest current value.
template <class Current>
detail::KsExtremes merge_column(std::span<const float> reference, Current cur, std::uint64_t n2) {
  const std::uint64_t n1 = reference.size();
  if (n1 == 0 || n2 == 0) return {detail::ks_no_test(), detail::ks_no_test(), n2, 0};
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
  sort_columns_of(threads, columns, current.features, [&](std::size_t f) {
    const std::uint64_t begin = columns.offsets[f];
    const std::uint32_t* keys = columns.keys.get() + begin;
    out[f] = merge_column(
        reference.column(f), [keys](std::uint64_t j) { return detail::ks_key_value(keys[j]); },
        columns.offsets[f + 1] - begin);
    out[f].nan_current = columns.nan_counts[f];
  });
}

void ks_statistics(int threads, const SortedColumns& reference, const SortedColumns& current,
                   std::span<detail::KsExtremes> out) {
  parallel_for(threads, current.features, [&](std::size_t f) {
    const std::span<const float> c = current.column(f);
    out[f] = merge_column(
        reference.column(f), [&c](std::uint64_t j) { return c[j]; }, c.size());
    out[f].nan_current = current.nan_counts[f];
  });
}

}  // namespace driftguard::cpu
