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

// Merges `items` values of the tile starting at tile position `diagonal` and folds F_R - F_C
// after the last copy of each value (where the next value of both samples is larger) into
// best_max / best_min; the value's candidate is its last copy in the reference when it occurs
// there. Every pooled value is evaluated by exactly one thread of one tile.
DG_HOST_DEVICE inline void ks_merge_items(const KsTile& t, std::uint32_t diagonal, int items,
                                          detail::KsCandidate& best_max,
                                          detail::KsCandidate& best_min) {
  const std::uint32_t end = t.a + t.b;
  if (diagonal > end) diagonal = end;
  const float* ref = t.ref;
  const float* cur = t.cur;
  auto li = static_cast<std::uint32_t>(ks_merge_path([ref](std::uint64_t i) { return ref[i]; }, t.a,
                                                     [cur](std::uint64_t j) { return cur[j]; }, t.b,
                                                     diagonal));
  std::uint32_t lj = diagonal - li;
  for (int s = 0; s < items && li + lj < end; ++s) {
    const bool take_ref = li < t.a && (lj >= t.b || ref[li] <= cur[lj]);
    const float v = take_ref ? ref[li] : cur[lj];
    li += take_ref ? 1 : 0;
    lj += take_ref ? 0 : 1;
    const std::uint64_t gi = t.i0 + li, gj = t.j0 + lj;
    if ((gi == t.n1 || ref[li] > v) && (gj == t.n2 || cur[lj] > v)) {
      const bool in_reference = gi > 0 && ref[static_cast<std::int64_t>(li) - 1] == v;
      const detail::KsCandidate c{detail::ks_ecdf_difference(gi, t.n1, gj, t.n2),
                                  in_reference ? ref[static_cast<std::int64_t>(li) - 1] : v,
                                  in_reference ? 1u : 0u};
      if (detail::ks_precedes_as_max(c, best_max)) best_max = c;
      if (detail::ks_precedes_as_min(c, best_min)) best_min = c;
    }
  }
}

}  // namespace driftguard::cuda
