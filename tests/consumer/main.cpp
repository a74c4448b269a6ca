// Validates and histograms one batch through the installed library, the way a service would.
#include <driftguard/context.hpp>
#include <driftguard/histogram.hpp>
#include <driftguard/validate.hpp>

#include <cmath>
#include <iostream>
#include <vector>

int main() {
  driftguard::Context ctx(driftguard::ContextOptions{.backend = driftguard::Backend::Cpu});
  const std::vector<float> batch = {0.5f, 1.5f, NAN, 2.5f};  // 4 rows x 1 feature
  driftguard::HistogramSpec spec;
  const std::vector<double> edges = {0.0, 1.0, 2.0};
  spec.add_numeric(edges);
  driftguard::HistogramCounts counts(spec);
  driftguard::ValidationCounts validation(1);
  driftguard::validate_histogram(ctx, {batch.data(), 4, 1},
                                 driftguard::ValidationRules::permissive(1), spec, validation,
                                 counts);
  const bool ok = counts.bins(0)[0] == 1 && counts.bins(0)[1] == 1 && counts.overflow(0) == 1 &&
                  counts.missing(0) == 1 && validation.count(0, driftguard::kMissing) == 1;
  std::cout << (ok ? "consumer: ok" : "consumer: wrong counts") << "\n";
  return ok ? 0 : 1;
}
