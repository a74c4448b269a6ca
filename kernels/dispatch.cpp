// The one dispatch point: arguments are checked once here, then the Context's backend runs.
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/model.hpp"
#include "driftguard/validate.hpp"
#include "kernels/backend.hpp"
#include "kernels/check_batch.hpp"
#include "kernels/context_impl.hpp"
#include "kernels/ks_host.hpp"
#include "kernels/mmd_common.hpp"

namespace driftguard {

void detail::check_batch(const BatchView& batch, std::size_t features, const char* what) {
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

namespace {

using detail::check_batch;

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
  impl.fault_point("batch_pass");
  if (impl.backend == Backend::Cuda) {
    cuda::batch_pass(*impl.cuda, impl.cpu_threads, args);
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

// ---- MMD (driftguard/mmd.hpp) ----
namespace {

void check_mmd_windows(Context& ctx, const char* what, const BatchView& reference,
                       const BatchView& current, std::size_t min_rows) {
  check_batch(reference, reference.features, (std::string(what) + ": reference").c_str());
  check_batch(current, reference.features, (std::string(what) + ": current").c_str());
  if (reference.rows < min_rows || current.rows < min_rows) {
    throw InvalidInput(std::string(what) + ": each window needs at least " +
                       std::to_string(min_rows) + " rows (reference has " +
                       std::to_string(reference.rows) + ", current " +
                       std::to_string(current.rows) + ")");
  }
  // Rows are 32-bit indices in the permutation keys.
  if (reference.rows + current.rows > std::numeric_limits<std::uint32_t>::max()) {
    throw InvalidInput(std::string(what) + ": more than 2^32 - 1 rows in the two windows");
  }
  if (ctx.impl().backend != Backend::Cuda &&
      (reference.space == MemorySpace::Device || current.space == MemorySpace::Device)) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  }
}

// The kernel's 1 / (2 sigma^2) must be finite too: an infinite one makes 0 * inf = NaN.
void check_sigma(const char* what, const std::optional<double>& sigma) {
  if (sigma &&
      !(*sigma > 0 && std::isfinite(*sigma) && std::isfinite(1.0 / (2.0 * *sigma * *sigma)))) {
    throw InvalidInput(std::string(what) + ": sigma must be finite and at least 1e-154");
  }
}

}  // namespace

MmdResult mmd_test(Context& ctx, BatchView reference, BatchView current,
                   const MmdOptions& options) {
  check_mmd_windows(ctx, "mmd_test", reference, current, 2);
  check_sigma("mmd_test", options.sigma);
  if (options.permutations == 0) throw InvalidInput("mmd_test: permutations must be >= 1");
  if (!(options.significance > 0 && options.significance < 1)) {
    throw InvalidInput("mmd_test: significance must be in (0, 1)");
  }
  Context::Impl& impl = ctx.impl();
  impl.fault_point("mmd_test");
  // A device the kernel does not run on (no FP64 tensor cores, or code built for an older
  // architecture) leaves host windows to the CPU backend; cuda::mmd refuses device windows there.
  const bool on_device = impl.backend == Backend::Cuda &&
                         (reference.space == MemorySpace::Device ||
                          current.space == MemorySpace::Device || cuda::mmd_runs_here(*impl.cuda));
  const detail::MmdSums sums =
      on_device ? cuda::mmd(*impl.cuda, impl.cpu_threads, reference, current, options)
                : cpu::mmd(impl.cpu_threads, reference, current, options);
  return detail::finish_mmd(sums, reference.rows, current.rows, options);
}

MmdLinearResult mmd_linear_test(Context& ctx, BatchView reference, BatchView current,
                                const MmdLinearOptions& options) {
  check_mmd_windows(ctx, "mmd_linear_test", reference, current, 4);
  check_sigma("mmd_linear_test", options.sigma);
  Context::Impl& impl = ctx.impl();
  impl.fault_point("mmd_linear_test");
  const detail::MmdLinearTerms terms =
      impl.backend == Backend::Cuda
          ? cuda::mmd_linear(*impl.cuda, impl.cpu_threads, reference, current, options)
          : cpu::mmd_linear(impl.cpu_threads, reference, current, options);
  return detail::finish_mmd_linear(terms, reference.rows, current.rows);
}

}  // namespace driftguard

// ---- Two-sample Kolmogorov–Smirnov ----
namespace driftguard {

SortedColumns SortedColumns::from_batch(Context& ctx, BatchView batch) {
  SortedColumns out;
  out.assign_from_batch(ctx, batch);
  return out;
}

void SortedColumns::assign_from_batch(Context& ctx, BatchView batch) {
  check_batch(batch, batch.features, "SortedColumns::from_batch");
  Context::Impl& impl = ctx.impl();
  impl.fault_point("sort_columns");
  if (impl.backend == Backend::Cuda) {
    cuda::sort_columns(*impl.cuda, impl.cpu_threads, batch, *this);
    return;
  }
  if (batch.space == MemorySpace::Device) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  }
  cpu::sort_columns(impl.cpu_threads, impl.key_memory, batch, *this);
}

namespace {

// `d_reference_values`: the reference's values in device memory (a ResidentReference), or null.
std::vector<KsResult> ks_on_backend(Context& ctx, const SortedColumns& reference,
                                    const float* d_reference_values, BatchView current,
                                    const KsOptions& options) {
  check_batch(current, reference.features, "ks_two_sample");
  std::vector<detail::KsExtremes> extremes(reference.features);
  Context::Impl& impl = ctx.impl();
  impl.fault_point("ks_statistics");
  if (impl.backend == Backend::Cuda) {
    cuda::ks_statistics(*impl.cuda, impl.cpu_threads, reference, d_reference_values, current,
                        extremes);
  } else if (current.space == MemorySpace::Device) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  } else {
    cpu::ks_statistics(impl.cpu_threads, impl.key_memory, reference, current, extremes);
  }
  return detail::ks_results(impl.cpu_threads, reference, extremes, options);
}

}  // namespace

std::vector<KsResult> ks_two_sample(Context& ctx, const SortedColumns& reference, BatchView current,
                                    const KsOptions& options) {
  detail::check_sorted_layout(reference, "ks_two_sample: reference");
  return ks_on_backend(ctx, reference, nullptr, current, options);
}

ResidentReference::ResidentReference(Context& ctx, const SortedColumns& columns)
    : ctx_(&ctx), columns_(&columns) {
  detail::check_sorted_layout(columns, "ResidentReference");
  Context::Impl& impl = ctx.impl();
  if (impl.backend == Backend::Cuda) {
    impl.fault_point("upload_reference");
    d_values_ = cuda::upload_values(*impl.cuda, impl.cpu_threads, columns.values);
  }
}

ResidentReference::~ResidentReference() {
  if (d_values_ != nullptr) cuda::free_values(*ctx_->impl().cuda, d_values_);
}

ResidentReference::ResidentReference(ResidentReference&& other) noexcept
    : ctx_(other.ctx_),
      columns_(other.columns_),
      d_values_(std::exchange(other.d_values_, nullptr)) {}

ResidentReference& ResidentReference::operator=(ResidentReference&& other) noexcept {
  if (this != &other) {
    ResidentReference old(std::move(*this));
    ctx_ = other.ctx_;
    columns_ = other.columns_;
    d_values_ = std::exchange(other.d_values_, nullptr);
  }
  return *this;
}

std::vector<KsResult> ks_two_sample(Context& ctx, const ResidentReference& reference,
                                    BatchView current, const KsOptions& options) {
  if (&reference.context() != &ctx) {
    throw InvalidInput("ks_two_sample: the resident reference was made for another context");
  }
  return ks_on_backend(ctx, reference.columns(), reference.device_values(), current, options);
}

std::vector<KsResult> ks_two_sample(Context& ctx, BatchView reference, BatchView current,
                                    const KsOptions& options) {
  check_batch(reference, reference.features, "ks_two_sample: reference");
  check_batch(current, reference.features, "ks_two_sample");
  Context::Impl& impl = ctx.impl();
  if (impl.backend == Backend::Cuda && (reference.rows == 0 || current.rows == 0)) {
    return ks_two_sample(ctx, SortedColumns::from_batch(ctx, reference), current, options);
  }
  if (impl.backend != Backend::Cuda &&
      (reference.space == MemorySpace::Device || current.space == MemorySpace::Device)) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  }
  impl.fault_point("ks_statistics");
  std::vector<detail::KsExtremes> extremes(reference.features);
  const SortedColumns layout =
      impl.backend == Backend::Cuda
          ? cuda::ks_statistics_raw(*impl.cuda, impl.cpu_threads, reference, current, extremes)
          : cpu::ks_statistics_raw(impl.cpu_threads, impl.key_memory, reference, current, extremes);
  return detail::ks_results(impl.cpu_threads, layout, extremes, options);
}

std::vector<KsResult> ks_two_sample(Context& ctx, const SortedColumns& reference,
                                    const SortedColumns& current, const KsOptions& options) {
  detail::check_sorted_layout(reference, "ks_two_sample: reference");
  detail::check_sorted_layout(current, "ks_two_sample: current");
  if (current.features != reference.features) {
    throw InvalidInput("ks_two_sample: current has " + std::to_string(current.features) +
                       " features, expected " + std::to_string(reference.features));
  }
  std::vector<detail::KsExtremes> extremes(reference.features);
  const int threads = ctx.impl().cpu_threads;
  cpu::ks_statistics(threads, reference, current, extremes);
  return detail::ks_results(threads, reference, extremes, options);
}

}  // namespace driftguard

// ---- Batch scoring ----
namespace driftguard {

void score(Context& ctx, const BoundModel& bound, BatchView batch, ScoreOutputs out) {
  check_batch(batch, bound.batch_features(), "score");
  if (out.points != nullptr && !bound.model().has_points()) {
    throw InvalidInput("score: points requested from a model without a scorecard");
  }
  if (out.margin == nullptr && out.probability == nullptr && out.points == nullptr) {
    throw InvalidInput("score: no output requested");
  }
  Context::Impl& impl = ctx.impl();
  impl.fault_point("score");
  if (impl.backend == Backend::Cuda) {
    cuda::score(*impl.cuda, impl.cpu_threads, bound.tables(), batch, out);
    return;
  }
  if (batch.space == MemorySpace::Device) {
    throw InvalidInput("a device-resident batch needs the CUDA backend");
  }
  cpu::score(impl.cpu_threads, bound.tables(), batch, out);
}

}  // namespace driftguard
