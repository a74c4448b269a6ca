#pragma once
// Internal: an OpenMP loop that carries exceptions out (one may not leave an OpenMP region).
#include <cstddef>
#include <exception>

namespace driftguard::detail {

// Runs body(i) for i in [0, n) on `threads` workers, one index at a time (dynamic schedule: the
// work per index may differ a lot); rethrows the first exception after the loop.
template <class Body>
void parallel_for(int threads, std::size_t n, Body&& body) {
  std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (std::size_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(driftguard_parallel_for_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace driftguard::detail
