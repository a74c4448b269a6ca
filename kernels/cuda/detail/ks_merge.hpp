#pragma once
// The KS merge kernel's per-thread work: merge-path splits and the evaluation of F_R - F_C over a
// thread's share of a tile of the pooled sorted sample. Plain C++ so that tests run it on the host
// tile by tile and thread by thread against the CPU backend.
#include <cstdint>

#include "kernels/backend.hpp"
#include "kernels/ks_common.hpp"

namespace driftguard::cuda {

// How many of the first d values of the stable merge of a (n1 values) and b (n2 values) come from
// a; ties go to a first (SciPy's pooled array puts the reference first). a(i), b(j) read values.
template <class A, class B>
DG_HOST_DEVICE std::uint64_t ks_merge_path(A a, std::uint64_t n1, B b, std::uint64_t n2,
                                           std::uint64_t d) {
  std::uint64_t lo = d > n2 ? d - n2 : 0;
  std::uint64_t hi = d < n1 ? d : n1;
  while (lo < hi) {
    const std::uint64_t mid = (lo + hi) / 2;
    if (a(mid) <= b(d - 1 - mid)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// One tile of the pooled sample: reference values R[i0 .. i0 + a) and current values
// C[j0 .. j0 + b), with their neighbours.
struct KsTile {
  const float* ref;  // ref[-1] = R[i0 - 1] (when i0 > 0), ref[0 .. a) the tile, ref[a] = R[i0 + a]
                     // (when i0 + a < n1)
  const float* cur;  // cur[0 .. b) the tile, cur[b] = C[j0 + b] (when j0 + b < n2)
  std::uint64_t i0, j0, n1, n2;
  std::uint32_t a, b;
};

// A value's evaluation point, after its last copy: li reference and lj current values of the
// tile taken (at least one by the thread that evaluates it).
struct KsTilePoint {
  std::uint32_t li = 0, lj = 0;
};

// The point's candidate. Its value is the last one taken, ref[li - 1] or cur[lj - 1], whichever
// is larger; on a tie (the merge takes the reference's copy first) the value is in the reference
// and its candidate is the reference's copy. ref[-1] is R[i0 - 1] when i0 > 0; lj = 0 means that
// the values taken were the reference's.
DG_HOST_DEVICE inline detail::KsCandidate ks_candidate(const KsTile& t, KsTilePoint p) {
  const std::uint64_t gi = t.i0 + p.li, gj = t.j0 + p.lj;
  const float r = gi > 0 ? t.ref[static_cast<std::int64_t>(p.li) - 1] : 0.0f;
  const bool in_reference = gi > 0 && (p.lj == 0 || r >= t.cur[p.lj - 1]);
  return {detail::ks_ecdf_difference(gi, t.n1, gj, t.n2), in_reference ? r : t.cur[p.lj - 1],
          in_reference ? 1u : 0u};
}

// Merges `items` values of the tile starting at tile position `diagonal` and folds F_R - F_C
// after the last copy of each value (where the next value of both samples is larger) into
// best_max / best_min. Every pooled value is evaluated by exactly one thread of one tile.
// kExact (n1 n2 <= kKsMaxExactProduct, ks_exact_in_integers): the thread's points are ranked by
// k = i n2 - j n1 (KsExactExtremes) and only its two winners are divided out; two correctly
// rounded FP64 divisions per run end were the merge's largest cost. Otherwise every point's
// candidate is compared in double.
template <bool kExact>
DG_HOST_DEVICE void ks_merge_items(const KsTile& t, std::uint32_t diagonal, int items,
                                   detail::KsCandidate& best_max, detail::KsCandidate& best_min) {
  const std::uint32_t end = t.a + t.b;
  if (diagonal > end) diagonal = end;
  const float* ref = t.ref;
  const float* cur = t.cur;
  auto li = static_cast<std::uint32_t>(ks_merge_path([ref](std::uint64_t i) { return ref[i]; }, t.a,
                                                     [cur](std::uint64_t j) { return cur[j]; }, t.b,
                                                     diagonal));
  std::uint32_t lj = diagonal - li;
  const auto s1 = static_cast<std::int64_t>(t.n1), s2 = static_cast<std::int64_t>(t.n2);
  std::int64_t k =
      kExact ? static_cast<std::int64_t>(t.i0 + li) * s2 - static_cast<std::int64_t>(t.j0 + lj) * s1
             : 0;
  detail::KsExactExtremes<KsTilePoint> running;
  auto candidate_of = [&t](KsTilePoint p) { return ks_candidate(t, p); };
  for (int s = 0; s < items && li + lj < end; ++s) {
    const bool take_ref = li < t.a && (lj >= t.b || ref[li] <= cur[lj]);
    const float v = take_ref ? ref[li] : cur[lj];
    li += take_ref ? 1 : 0;
    lj += take_ref ? 0 : 1;
    if (kExact) k += take_ref ? s2 : -s1;
    if ((t.i0 + li == t.n1 || ref[li] > v) && (t.j0 + lj == t.n2 || cur[lj] > v)) {
      if (kExact) {
        running.consider(k, {li, lj}, candidate_of);
      } else {
        const detail::KsCandidate c = candidate_of({li, lj});
        if (detail::ks_precedes_as_max(c, best_max)) best_max = c;
        if (detail::ks_precedes_as_min(c, best_min)) best_min = c;
      }
    }
  }
  if (kExact && !running.empty()) {
    const detail::KsCandidate c_max = candidate_of(running.max);
    const detail::KsCandidate c_min = candidate_of(running.min);
    if (detail::ks_precedes_as_max(c_max, best_max)) best_max = c_max;
    if (detail::ks_precedes_as_min(c_min, best_min)) best_min = c_min;
  }
}

}  // namespace driftguard::cuda
