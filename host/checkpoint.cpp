#include "host/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "host/atomic_file.hpp"
#include "host/fnv1a.hpp"
#include "host/report_json.hpp"

namespace driftguard::detail {
namespace {

using nlohmann::json;
// 2: window summaries in the report's shape (host/report_json.hpp), "time": {"begin", "end"}.
// 3: "digest"; the window summaries in the window log (window_log_path), "windows_bytes" long.
constexpr int kCheckpointVersion = 3;
constexpr const char* kFormat = "driftguard-checkpoint";

json optional_json(const std::optional<std::int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

std::optional<std::int64_t> optional_int(const json& value) {
  if (value.is_null()) return std::nullopt;
  return value.get<std::int64_t>();
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointState& state) {
  json quarantined = json::array(), failovers = json::array();
  for (const QuarantinedBlock& q : state.quarantined) {
    quarantined.push_back({{"first_row", q.first_row}, {"rows", q.rows}, {"reason", q.reason}});
  }
  for (const FailoverEvent& f : state.failovers) {
    failovers.push_back(
        {{"row", f.row}, {"stage", f.stage}, {"from", f.from}, {"reason", f.reason}});
  }
  json doc = {{"format", kFormat},
              {"version", kCheckpointVersion},
              {"fingerprint", state.fingerprint},
              {"next_row", state.next_row},
              {"windows_closed", state.windows_closed},
              {"last_key", optional_json(state.last_key)},
              {"jsonl_bytes", state.jsonl_bytes},
              {"validation",
               {{"features", state.validation.features},
                {"rows", state.validation.rows},
                {"rows_ok", state.validation.rows_ok},
                {"flag_counts", state.validation.flag_counts}}},
              {"current_slots", state.current_slots},
              {"windows_drifted", state.windows_drifted},
              {"windows_bytes", state.windows_bytes},
              {"windows_digest", state.windows_digest},
              {"quarantined", quarantined},
              {"failovers", failovers}};
  doc["digest"] = checkpoint_digest(doc.dump());
  write_file_atomically(path, doc.dump() + "\n");
}

std::string window_log_path(const std::string& checkpoint_path) {
  return checkpoint_path + ".windows";
}

std::string checkpoint_digest(std::string_view body) {
  Fnv1a digest;
  digest.add_bytes(body);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(digest.value()));
  return hex;
}

std::optional<CheckpointState> load_checkpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw IoError(path + ": cannot read the checkpoint");
  try {
    const json doc = json::parse(text.str());
    if (doc.at("format") != kFormat || doc.at("version") != kCheckpointVersion) {
      throw InvalidInput(path + ": not a driftguard checkpoint of version " +
                         std::to_string(kCheckpointVersion));
    }
    json body = doc;
    body.erase("digest");
    if (doc.at("digest") != checkpoint_digest(body.dump())) {
      throw InvalidInput(path +
                         ": the checkpoint was edited or damaged (its digest does not "
                         "match); delete it or run without --resume");
    }
    CheckpointState state;
    state.fingerprint = doc.at("fingerprint");
    state.next_row = doc.at("next_row");
    state.windows_closed = doc.at("windows_closed");
    state.last_key = optional_int(doc.at("last_key"));
    state.jsonl_bytes = doc.at("jsonl_bytes");
    const json& v = doc.at("validation");
    state.validation = ValidationCounts(v.at("features").get<std::size_t>());
    state.validation.rows = v.at("rows");
    state.validation.rows_ok = v.at("rows_ok");
    state.validation.flag_counts = v.at("flag_counts").get<std::vector<std::uint64_t>>();
    if (state.validation.flag_counts.size() != state.validation.features * kCellFlagCount) {
      throw InvalidInput(path + ": the checkpoint's validation counts are malformed");
    }
    state.current_slots = doc.at("current_slots").get<std::vector<std::uint64_t>>();
    state.windows_drifted = doc.at("windows_drifted").get<std::vector<std::uint64_t>>();
    state.windows_bytes = doc.at("windows_bytes");
    state.windows_digest = doc.at("windows_digest");
    const std::string log = window_log_path(path);
    std::error_code error;
    const std::uintmax_t log_size = std::filesystem::file_size(log, error);
    std::ifstream log_in(log, std::ios::binary);
    if (error || log_size < state.windows_bytes) {
      throw InvalidInput(log + ": shorter than the checkpoint records (" +
                         std::to_string(state.windows_bytes) + " bytes); it was changed since");
    }
    std::string lines(state.windows_bytes, '\0');
    if (!log_in.read(lines.data(), static_cast<std::streamsize>(lines.size()))) {
      throw IoError(log + ": cannot read the window log");
    }
    Fnv1a digest;
    digest.add_bytes(lines);
    if (digest.value() != state.windows_digest) {
      throw InvalidInput(log +
                         ": the window log was edited or damaged (its digest does not match "
                         "the checkpoint's); delete both or run without --resume");
    }
    for (std::size_t at = 0; at < lines.size();) {
      const std::size_t end = std::min(lines.find('\n', at), lines.size());
      state.windows.push_back(window_summary_from_json(json::parse(lines.substr(at, end - at))));
      at = end + 1;
    }
    for (const json& q : doc.at("quarantined")) {
      state.quarantined.push_back({q.at("first_row"), q.at("rows"), q.at("reason")});
    }
    for (const json& f : doc.at("failovers")) {
      state.failovers.push_back({f.at("row"), f.at("stage"), f.at("from"), f.at("reason")});
    }
    return state;
  } catch (const json::exception& e) {
    throw InvalidInput(path + ": not a valid driftguard checkpoint (" + e.what() + ")");
  }
}

}  // namespace driftguard::detail
