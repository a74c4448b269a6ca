// The one dispatch point: arguments are checked once here, then the Context's backend runs.
#include <limits>
#include <string>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/validate.hpp"
#include "kernels/backend.hpp"
#include "kernels/context_impl.hpp"

namespace driftguard {
namespace {

void check_batch(const BatchView& batch, std::size_t features, const char* what) {
  if (batch.features != features) {
    throw InvalidInput(std::string(what) + ": batch has " + std::to_string(batch.features) +
                       " features, expected " + std::to_string(features));
  }
  if (batch.features == 0) throw InvalidInput(std::string(what) + ": batch has no features");
  if (batch.rows > std::numeric_limits<std::size_t>::max() / batch.features / sizeof(float)) {
    throw InvalidInput(std::string(what) + ": batch size overflows");
  }
  if (batch.rows > 0 && batch.data == nullptr) {
    throw InvalidInput(std::string(what) + ": batch data is null");
  }
}

void check_counts(const HistogramSpec& spec, const HistogramCounts& counts) {
  spec.check();
  bool same = counts.features() == spec.features();
  for (std::size_t f = 0; same && f < spec.features(); ++f) {
    same = counts.slots(f).size() == spec.bins(f) + 3;
  }
  if (!same) throw InvalidInput("histogram: counts were not built for this histogram spec");
}

void run(Context& ctx, const detail::BatchPassArgs& args) {
  Context::Impl& impl = ctx.impl();
  if (impl.backend == Backend::Cuda) {
    cuda::batch_pass(*impl.cuda, args);
    return;
  }
  if (args.batch.space == MemorySpace::Device) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  }
  cpu::batch_pass(impl.cpu_threads, args);
}

void check_validation(const char* what, const BatchView& batch, const ValidationRules& rules,
                      const ValidationCounts& counts) {
  rules.check();
  check_batch(batch, rules.features(), what);
  if (counts.features != rules.features() ||
      counts.flag_counts.size() != rules.features() * kCellFlagCount) {
    throw InvalidInput(std::string(what) + ": counts have " + std::to_string(counts.features) +
                       " features, expected " + std::to_string(rules.features()));
  }
}

}  // namespace

void validate(Context& ctx, BatchView batch, const ValidationRules& rules, ValidationCounts& counts,
              ValidationMasks masks) {
  check_validation("validate", batch, rules, counts);
  run(ctx, {.batch = batch, .rules = &rules, .validation = &counts, .masks = masks});
}

void histogram(Context& ctx, BatchView batch, const HistogramSpec& spec, HistogramCounts& counts) {
  check_counts(spec, counts);
  check_batch(batch, spec.features(), "histogram");
  run(ctx, {.batch = batch, .spec = &spec, .histogram = &counts, .masks = {}});
}

void validate_histogram(Context& ctx, BatchView batch, const ValidationRules& rules,
                        const HistogramSpec& spec, ValidationCounts& validation,
                        HistogramCounts& counts, ValidationMasks masks) {
  check_validation("validate_histogram", batch, rules, validation);
  check_counts(spec, counts);
  check_batch(batch, spec.features(), "validate_histogram");
  run(ctx, {.batch = batch,
            .rules = &rules,
            .spec = &spec,
            .validation = &validation,
            .histogram = &counts,
            .masks = masks});
}

}  // namespace driftguard
