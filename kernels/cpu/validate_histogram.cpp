// CPU backend of the batch pass: row blocks spread over OpenMP threads, each thread counting into
// private arrays that are summed once at the end, so the hot loop touches no shared memory.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard::cpu {
namespace {

// Private counts of one thread.
struct ThreadCounts {
  std::vector<std::uint64_t> slots;  // PreparedPass::total_slots
  std::vector<std::uint64_t> flags;  // features * kCellFlagCount
  std::uint64_t rows_ok = 0;
};

template <bool kValidate, bool kHistogram>
void count_rows(const detail::PreparedPass& prep, const detail::BatchPassArgs& args,
                std::size_t row_begin, std::size_t row_end, ThreadCounts& out) {
  const std::size_t features = args.batch.features;
  const float* points = prep.points.data();
  const float* codes = prep.codes.data();
  std::uint64_t* slots = out.slots.data();
  std::uint64_t* flags = out.flags.data();
  std::uint8_t* cell_flags = args.masks.cell_flags;
  std::uint8_t* row_ok = args.masks.row_ok;
  for (std::size_t row = row_begin; row < row_end; ++row) {
    const float* values = args.batch.data + row * features;
    std::uint32_t row_bad = 0;
    for (std::size_t f = 0; f < features; ++f) {
      const float x = values[f];
      if constexpr (kHistogram) {
        const detail::FeatureBins& bins = prep.bins[f];
        ++slots[bins.slot_offset + detail::slot_of(x, bins, points + bins.point_offset)];
      }
      if constexpr (kValidate) {
        const detail::FeatureRule& rule = prep.rules[f];
        const std::uint32_t cell = detail::cell_flags(x, rule, codes + rule.code_offset);
        if (cell != 0) {
          row_bad |= cell & rule.row_bad_flags;
          // A value carries at most two flags (BelowMin and AboveMax exclude each other).
          flags[f * kCellFlagCount + static_cast<std::size_t>(__builtin_ctz(cell))] += 1;
          if (cell & (cell - 1)) {
            flags[f * kCellFlagCount + static_cast<std::size_t>(31 - __builtin_clz(cell))] += 1;
          }
        }
        if (cell_flags != nullptr) cell_flags[row * features + f] = static_cast<std::uint8_t>(cell);
      }
    }
    if constexpr (kValidate) {
      out.rows_ok += row_bad == 0 ? 1 : 0;
      if (row_ok != nullptr) row_ok[row] = row_bad == 0 ? 1 : 0;
    }
  }
}

template <bool kValidate, bool kHistogram>
void run(int threads, const detail::PreparedPass& prep, const detail::BatchPassArgs& args) {
  const std::size_t rows = args.batch.rows;
  // Below ~16k cells per thread, waking threads costs more than it saves.
  const std::size_t cells = rows * args.batch.features;
  const int workers = static_cast<int>(
      std::clamp<std::size_t>(cells / 16384, 1, static_cast<std::size_t>(threads)));
  std::vector<ThreadCounts> counts(static_cast<std::size_t>(workers));
#pragma omp parallel num_threads(workers)
  {
    ThreadCounts& mine = counts[static_cast<std::size_t>(omp_get_thread_num())];
    if constexpr (kHistogram) mine.slots.assign(prep.total_slots, 0);
    if constexpr (kValidate) mine.flags.assign(args.batch.features * kCellFlagCount, 0);
    constexpr std::size_t kBlockRows = 1024;
    const std::size_t blocks = (rows + kBlockRows - 1) / kBlockRows;
#pragma omp for schedule(static)
    for (std::size_t block = 0; block < blocks; ++block) {
      const std::size_t begin = block * kBlockRows;
      count_rows<kValidate, kHistogram>(prep, args, begin, std::min(rows, begin + kBlockRows),
                                        mine);
    }
  }
  for (const ThreadCounts& c : counts) {
    if constexpr (kHistogram) {
      std::vector<std::uint64_t>& total = args.histogram->raw();
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += c.slots[i];
    }
    if constexpr (kValidate) {
      std::vector<std::uint64_t>& total = args.validation->flag_counts;
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += c.flags[i];
      args.validation->rows_ok += c.rows_ok;
    }
  }
  if constexpr (kValidate) args.validation->rows += rows;
}

}  // namespace

void batch_pass(int threads, const detail::BatchPassArgs& args) {
  const detail::PreparedPass prep(args);
  if (args.rules != nullptr && args.spec != nullptr) {
    run<true, true>(threads, prep, args);
  } else if (args.rules != nullptr) {
    run<true, false>(threads, prep, args);
  } else if (args.spec != nullptr) {
    run<false, true>(threads, prep, args);
  }
}

}  // namespace driftguard::cpu
