#pragma once
// Internal: what a windowed scan writes after each window so that `--resume` can finish an
// interrupted run with the report an uninterrupted run gives.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driftguard/report.hpp"
#include "driftguard/validate.hpp"
#include "host/fnv1a.hpp"

namespace driftguard::detail {

struct CheckpointState {
  std::string fingerprint;     // the inputs and options of the run (JSON text)
  std::uint64_t next_row = 0;  // the next window starts here
  std::uint64_t windows_closed = 0;
  std::optional<std::int64_t> last_key;  // the last closed window's key (timestamp windows)
  std::uint64_t jsonl_bytes = 0;         // the JSON Lines file's length after the last window
  std::uint64_t windows_bytes = 0;       // the window log's length after the last window
  std::uint64_t windows_digest = Fnv1a().value();  // FNV-1a of those bytes
  // Whole-file accumulators of the closed windows.
  ValidationCounts validation;
  std::vector<std::uint64_t> current_slots;    // HistogramCounts::raw(); empty without fixed bins
  std::vector<std::uint64_t> windows_drifted;  // per feature
  // One per closed window. Kept in the window log, one JSON line each, appended window by window
  // (rewriting them all into every checkpoint made a run's checkpoints cost O(windows^2)).
  std::vector<WindowSummary> windows;
  std::vector<QuarantinedBlock> quarantined;
  std::vector<FailoverEvent> failovers;
};

// Saved with a digest of its JSON text: an edited or damaged checkpoint is refused on load. The
// window summaries are not saved here but appended to the window log by the scan; loading reads
// them back from its first windows_bytes bytes.
void save_checkpoint(const std::string& path, const CheckpointState& state);
// The digest: FNV-1a of the checkpoint's JSON without its "digest" member (compact dump), in hex.
std::string checkpoint_digest(std::string_view body);
// The window log beside a checkpoint: CHECKPOINT.windows.
std::string window_log_path(const std::string& checkpoint_path);
// Empty when the file does not exist; InvalidInput when it is not a checkpoint of this version.
std::optional<CheckpointState> load_checkpoint(const std::string& path);

}  // namespace driftguard::detail
