// CPU backend of KS: columns are gathered out of the row-major batch into one column-major array
// of sort keys (NaN dropped), each column is radix-sorted on its own (OpenMP over features), and
// the statistic of a feature is one linear merge of its sorted current column with the sorted
// reference column.
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <initializer_list>
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

// Column f starts kColumnStagger * f keys past a multiple of 4 KiB (padding up to 4 KiB per
// column). Columns a multiple of 4 KiB apart (a million rows: 4 MiB) would map every column's write
// position to the same L1 set while the gather writes them row by row, and 32 columns in a 12-way
// set evict each other's lines before they fill; one cache line apart, they spread over the sets.
constexpr std::uint64_t kColumnStagger = 16;  // one cache line of keys
constexpr std::uint64_t kKeysPer4KiB = 1024;

// The non-NaN values of every column as sort keys, column after column.
struct ColumnKeys {
  std::uint32_t* keys = nullptr;          // in a KeyMemory lease
  std::vector<std::uint64_t> offsets;     // features + 1: the columns' sizes, summed
  std::vector<std::uint64_t> starts;      // features: where each column is in `keys`
  std::vector<std::uint64_t> nan_counts;  // features
  std::uint64_t max_column = 0;

  std::uint64_t size(std::size_t f) const { return offsets[f + 1] - offsets[f]; }
  std::uint32_t* column(std::size_t f) const { return keys + starts[f]; }
};

// Two passes over the batch in row blocks: count each block's non-NaN values per feature, then
// write each value's key at its column's running position, so every column is contiguous. The
// keys go to slot `slot` of the lease.
ColumnKeys gather_keys(int threads, const BatchView& batch, KeyMemory::Lease& lease, int slot) {
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
  out.starts.assign(features, 0);
  out.nan_counts.assign(features, 0);
  // Where each block writes its first value of each feature.
  std::vector<std::uint64_t> position(blocks * features);
  std::uint64_t end = 0;  // of the previous column in `keys`
  for (std::size_t f = 0; f < features; ++f) {
    const std::uint64_t line = (kColumnStagger * f) % kKeysPer4KiB;
    out.starts[f] = end + (line + kKeysPer4KiB - end % kKeysPer4KiB) % kKeysPer4KiB;
    std::uint64_t at = out.starts[f];
    for (std::size_t b = 0; b < blocks; ++b) {
      position[b * features + f] = at;
      at += block_counts[b * features + f];
    }
    end = at;
    const std::uint64_t size = at - out.starts[f];
    out.offsets[f + 1] = out.offsets[f] + size;
    out.nan_counts[f] = rows - size;
    out.max_column = std::max(out.max_column, size);
  }
  out.keys = lease.keys(slot, std::max<std::uint64_t>(end, 1));
  std::uint32_t* keys = out.keys;
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

// Sorts column f of every table (threads share the features; each owns a scratch buffer), then
// calls done(f) while the columns are still in cache.
template <class Done>
void sort_columns_of(int threads, std::initializer_list<ColumnKeys*> tables, std::size_t features,
                     Done&& done) {
  std::uint64_t longest = 1;
  for (const ColumnKeys* table : tables) longest = std::max(longest, table->max_column);
  std::vector<Buffer<std::uint32_t>> scratch(static_cast<std::size_t>(threads));
  parallel_for(threads, features, [&](std::size_t f) {
    Buffer<std::uint32_t>& own = scratch[static_cast<std::size_t>(omp_get_thread_num())];
    if (!own) own = make_buffer<std::uint32_t>(longest);
    for (ColumnKeys* table : tables) sort_keys(table->column(f), own.get(), table->size(f));
    done(f);
  });
}

// The end of the prefix of a[i, n) whose values satisfy `in_prefix` (a predicate true for a prefix
// of the ascending values), by galloping from i: O(log of the prefix's length).
template <class T, class InPrefix>
std::uint64_t gallop(const T* a, std::uint64_t i, std::uint64_t n, InPrefix in_prefix) {
  if (i >= n || !in_prefix(a[i])) return i;
  std::uint64_t known = i, step = 1;  // in_prefix(a[known])
  while (step < n - known && in_prefix(a[known + step])) {
    known += step;
    step *= 2;
  }
  const std::uint64_t bound = step < n - known ? known + step : n;
  return static_cast<std::uint64_t>(std::partition_point(a + known + 1, a + bound, in_prefix) - a);
}

// The extremes of F_R - F_C by a merge that visits the current values' runs and gallops over the
// reference values between them: O(n2 log(n1 / n2)), for a reference much longer than the window
// (and for sizes where walk_column's integer test would not be exact: the differences are
// compared in double throughout). Between two current values the difference only rises
// (reference values pass), and at a current value it drops, so a maximum can only sit at the last
// reference value below a current value, at a current value or at the very end, and a minimum
// only at a current value: those are the places evaluated. Every other pooled value's difference
// is strictly inside that range, so skipping it changes no extreme and no tie (the CUDA backend
// evaluates every pooled value and gets the same result). r and c are ascending values that
// compare as floats do (floats, or walk keys), value() gives a float of one.
template <class T, class Value>
detail::KsExtremes merge_column(const T* r, std::uint64_t n1, const T* c, std::uint64_t n2,
                                Value value) {
  detail::KsCandidate max = detail::ks_no_max(), min = detail::ks_no_min();
  auto consider_max = [&max](const detail::KsCandidate& candidate) {
    if (detail::ks_precedes_as_max(candidate, max)) max = candidate;
  };
  std::uint64_t i = 0, j = 0;
  while (j < n2) {
    const T v = c[j];
    const std::uint64_t first_below = i;
    i = gallop(r, i, n1, [v](T x) { return x < v; });
    if (i > first_below) {
      consider_max({detail::ks_ecdf_difference(i, n1, j, n2), value(r[i - 1]), 1u});
    }
    const std::uint64_t below = i;
    i = gallop(r, i, n1, [v](T x) { return x == v; });
    j = gallop(c, j, n2, [v](T x) { return x == v; });
    const bool in_reference = i > below;
    const detail::KsCandidate at_c{detail::ks_ecdf_difference(i, n1, j, n2),
                                   value(in_reference ? r[i - 1] : c[j - 1]),
                                   in_reference ? 1u : 0u};
    consider_max(at_c);
    if (detail::ks_precedes_as_min(at_c, min)) min = at_c;
  }
  if (i < n1) consider_max({detail::ks_ecdf_difference(n1, n1, n2, n2), value(r[n1 - 1]), 1u});
  return {max, min, n2, 0};
}

// Above this n1 / n2, merge_column's galloping beats a walk over every reference value.
constexpr std::uint64_t kGallopRatio = 16;

// Whether walk_column computes the extremes of n1 reference and n2 current values (both >= 1).
bool walks(std::uint64_t n1, std::uint64_t n2) {
  return detail::ks_exact_in_integers(n1, n2) && n1 <= kGallopRatio * n2;
}

// The walk compares keys, not floats: ks_sort_key with -0.0 made +0.0 (equal floats, one run of
// ties). Each column is preceded by kBefore, below every key of a non-NaN value (-Inf's is
// 0x007fffff), and followed by kSentinel, above them (+Inf's is 0xff800000; NaN are not walked),
// so the walk needs no bounds checks.
constexpr std::uint32_t kBefore = 0;
constexpr std::uint32_t kSentinel = 0xffffffffu;
constexpr std::uint32_t kNegativeZeroKey = 0x7fffffffu;  // ks_sort_key(-0.0f) + 1 = key of +0.0f
inline std::uint32_t walk_key(std::uint32_t sort_key) {
  return sort_key + (sort_key == kNegativeZeroKey ? 1u : 0u);
}

// The walk's extremes (for n1 n2 <= kKsMaxExactProduct), so the result is merge_column's.
struct Extremes {
  // A point after the last tie of value `key`, i reference and j current values taken.
  struct Point {
    std::uint64_t i = 0, j = 0;
    std::uint32_t key = 0;
  };
  Extremes(const std::uint32_t* reference, std::uint64_t n_reference, std::uint64_t n_current)
      : r(reference), n1(n_reference), n2(n_current) {}

  const std::uint32_t* r;
  std::uint64_t n1, n2;
  detail::KsExactExtremes<Point> running;

  // The reference's ties are taken first, so the value is in the reference iff r[i - 1] is it.
  detail::KsCandidate candidate(const Point& p) const {
    return {detail::ks_ecdf_difference(p.i, n1, p.j, n2), detail::ks_key_value(p.key),
            r[p.i - 1] == p.key ? 1u : 0u};
  }
  // On a drifting feature a new extreme of k is a good share of the points.
  void evaluate(std::int64_t k, std::uint64_t i, std::uint64_t j, std::uint32_t key) {
    running.consider(k, {i, j, key}, [this](const Point& p) { return candidate(p); });
  }
  detail::KsExtremes result() const {
    return {candidate(running.max), candidate(running.min), n2, 0};
  }
};

// One step of a merge of reference keys r[i..) and current keys c[j..): takes the smaller head
// (the reference's on ties), with no data-dependent branch but the rare evaluation (a branch per
// value would mispredict about once per value). Each distinct value is evaluated once, after its
// last tie, as SciPy evaluates F_R - F_C at every pooled value. (A reference-only value is never
// the final minimum, nor a current-only value the final maximum: each differs strictly, the other
// way, from the value before it; evaluating every point both ways changes no result.)
inline void step(std::uint64_t& i, std::uint64_t& j, const std::uint32_t* r, const std::uint32_t* c,
                 std::int64_t s1, std::int64_t s2, Extremes& e) {
  const std::uint32_t a = r[i], b = c[j];
  // a <= b as 0 or 1 by arithmetic: GCC turns the comparison into a branch.
  const std::uint64_t take_reference =
      (static_cast<std::uint64_t>(b) - static_cast<std::uint64_t>(a)) >> 63 ^ 1;
  const std::uint32_t v = b ^ ((a ^ b) & (0u - static_cast<std::uint32_t>(take_reference)));
  i += take_reference;
  j += take_reference ^ 1;
  const std::int64_t k = static_cast<std::int64_t>(i) * s2 - static_cast<std::int64_t>(j) * s1;
  const bool run_ends = std::min(r[i], c[j]) > v;
  if (run_ends & ((k >= e.running.k_max) | (k <= e.running.k_min))) e.evaluate(k, i, j, v);
}

// The pooled values are cut into kChains ranges at current values; each range is merged by its
// own walk, side by side, so that the walks' load-compare latencies overlap. A run of ties is
// never cut (a range starts at the first key >= its cut in both columns), a range's last value is
// followed by the next range's values or the sentinel, and the walks share the running extremes
// (candidates are ordered by value, not by position).
constexpr int kChains = 4;

// r and c hold n1 and n2 walk keys in ascending order, each between kBefore and kSentinel.
detail::KsExtremes walk_column(const std::uint32_t* r, std::uint64_t n1, const std::uint32_t* c,
                               std::uint64_t n2) {
  const auto s1 = static_cast<std::int64_t>(n1), s2 = static_cast<std::int64_t>(n2);
  Extremes e(r, n1, n2);
  std::array<std::uint64_t, kChains + 1> cut_i{}, cut_j{};
  for (int w = 1; w < kChains; ++w) {
    const std::uint32_t cut = c[n2 * static_cast<std::uint64_t>(w) / kChains];
    cut_i[w] = static_cast<std::uint64_t>(std::lower_bound(r, r + n1, cut) - r);
    cut_j[w] = static_cast<std::uint64_t>(std::lower_bound(c, c + n2, cut) - c);
  }
  cut_i[kChains] = n1;
  cut_j[kChains] = n2;
  std::array<std::uint64_t, kChains> i, j, steps;
  for (int w = 0; w < kChains; ++w) {
    i[w] = cut_i[w];
    j[w] = cut_j[w];
    steps[w] = (cut_i[w + 1] - i[w]) + (cut_j[w + 1] - j[w]);
  }
  const std::uint64_t together = *std::min_element(steps.begin(), steps.end());
  for (std::uint64_t t = 0; t < together; ++t) {
#pragma GCC unroll 4
    for (int w = 0; w < kChains; ++w) step(i[w], j[w], r, c, s1, s2, e);
  }
  for (int w = 0; w < kChains; ++w) {
    for (std::uint64_t t = together; t < steps[w]; ++t) step(i[w], j[w], r, c, s1, s2, e);
  }
  return e.result();
}

// Per thread: the feature's samples as framed walk keys, or the current sample as floats.
struct WalkBuffers {
  std::vector<std::uint32_t> reference, current;
  std::vector<float> current_values;
};

// Sizes `keys` for n walk keys, frames them, and returns where the first goes.
std::uint32_t* framed(std::vector<std::uint32_t>& keys, std::size_t n) {
  keys.resize(n + 2);
  keys.front() = kBefore;
  keys.back() = kSentinel;
  return keys.data() + 1;
}

// Fills `keys` with the framed walk keys of ascending non-NaN floats; returns the first.
const std::uint32_t* walk_keys_of(std::span<const float> sorted, std::vector<std::uint32_t>& keys) {
  std::uint32_t* out = framed(keys, sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    out[i] = walk_key(detail::ks_sort_key(sorted[i]));
  }
  return out;
}

// The same from n sorted sort keys.
const std::uint32_t* walk_keys_of(const std::uint32_t* sorted, std::uint64_t n,
                                  std::vector<std::uint32_t>& keys) {
  std::uint32_t* out = framed(keys, n);
  for (std::uint64_t i = 0; i < n; ++i) out[i] = walk_key(sorted[i]);
  return out;
}

constexpr detail::KsExtremes no_test(std::uint64_t n2) {
  return {detail::ks_no_test(), detail::ks_no_test(), n2, 0};
}

// The extremes of a reference column (ascending floats) against a current one, given as n2 sort
// keys or, when null, as ascending floats in `current_values`.
detail::KsExtremes extremes_of(std::span<const float> reference, const std::uint32_t* current_keys,
                               std::span<const float> current_values, std::uint64_t n2,
                               WalkBuffers& own) {
  const std::uint64_t n1 = reference.size();
  if (n1 == 0 || n2 == 0) return no_test(n2);
  if (walks(n1, n2)) {
    const std::uint32_t* c = current_keys != nullptr ? walk_keys_of(current_keys, n2, own.current)
                                                     : walk_keys_of(current_values, own.current);
    return walk_column(walk_keys_of(reference, own.reference), n1, c, n2);
  }
  if (current_keys != nullptr) {
    own.current_values.resize(n2);
    for (std::uint64_t j = 0; j < n2; ++j) {
      own.current_values[j] = detail::ks_key_value(current_keys[j]);
    }
    current_values = own.current_values;
  }
  return merge_column(reference.data(), n1, current_values.data(), n2, [](float x) { return x; });
}

}  // namespace

void sort_columns(int threads, KeyMemory& memory, BatchView batch, SortedColumns& out) {
  KeyMemory::Lease lease(memory);
  ColumnKeys columns = gather_keys(threads, batch, lease, 0);
  out.features = batch.features;
  // A reused object keeps room for a whole window of this shape, so that the next windows fit
  // whatever their NaN counts; then only what grows past its last size is zero-filled.
  const std::size_t n = columns.offsets.back();
  detail::make_room_for_values(out, out.values.capacity() > 0 ? batch.rows * batch.features : n);
  out.values.resize(n);
  sort_columns_of(threads, {&columns}, batch.features, [&](std::size_t f) {
    const std::uint32_t* keys = columns.column(f);
    float* values = out.values.data() + columns.offsets[f];
    for (std::uint64_t i = 0; i < columns.size(f); ++i) values[i] = detail::ks_key_value(keys[i]);
  });
  out.offsets = std::move(columns.offsets);
  out.nan_counts = std::move(columns.nan_counts);
}

void ks_statistics(int threads, KeyMemory& memory, const SortedColumns& reference,
                   BatchView current, std::span<detail::KsExtremes> out) {
  KeyMemory::Lease lease(memory);
  ColumnKeys columns = gather_keys(threads, current, lease, 0);
  std::vector<WalkBuffers> buffers(static_cast<std::size_t>(threads));
  sort_columns_of(threads, {&columns}, current.features, [&](std::size_t f) {
    WalkBuffers& own = buffers[static_cast<std::size_t>(omp_get_thread_num())];
    out[f] = extremes_of(reference.column(f), columns.column(f), {}, columns.size(f), own);
    out[f].nan_current = columns.nan_counts[f];
  });
}

void ks_statistics(int threads, const SortedColumns& reference, const SortedColumns& current,
                   std::span<detail::KsExtremes> out) {
  std::vector<WalkBuffers> buffers(static_cast<std::size_t>(threads));
  parallel_for(threads, current.features, [&](std::size_t f) {
    WalkBuffers& own = buffers[static_cast<std::size_t>(omp_get_thread_num())];
    const std::span<const float> c = current.column(f);
    out[f] = extremes_of(reference.column(f), nullptr, c, c.size(), own);
    out[f].nan_current = current.nan_counts[f];
  });
}

SortedColumns ks_statistics_raw(int threads, KeyMemory& memory, BatchView reference,
                                BatchView current, std::span<detail::KsExtremes> out) {
  KeyMemory::Lease lease(memory);
  ColumnKeys ref = gather_keys(threads, reference, lease, 0);
  ColumnKeys cur = gather_keys(threads, current, lease, 1);
  std::vector<WalkBuffers> buffers(static_cast<std::size_t>(threads));
  sort_columns_of(threads, {&ref, &cur}, current.features, [&](std::size_t f) {
    WalkBuffers& own = buffers[static_cast<std::size_t>(omp_get_thread_num())];
    const std::uint64_t n1 = ref.size(f), n2 = cur.size(f);
    const std::uint32_t* r = walk_keys_of(ref.column(f), n1, own.reference);
    const std::uint32_t* c = walk_keys_of(cur.column(f), n2, own.current);
    out[f] = n1 == 0 || n2 == 0 ? no_test(n2)
             : walks(n1, n2)    ? walk_column(r, n1, c, n2)
                                : merge_column(r, n1, c, n2, detail::ks_key_value);
    out[f].nan_current = cur.nan_counts[f];
  });
  SortedColumns layout;
  layout.features = reference.features;
  layout.offsets = std::move(ref.offsets);
  layout.nan_counts = std::move(ref.nan_counts);
  return layout;
}

}  // namespace driftguard::cpu
