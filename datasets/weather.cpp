// NOAA weather CSV -> a reference decade and the time-stamped stream after it.
#include "weather.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>
#include <vector>

#include "csv.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"

namespace driftguard::data {
namespace {

constexpr std::size_t kFeatures = 8;
// The file's own names. Elwell & Polikar list the measurements as temperature, dew point,
// sea-level pressure, visibility, mean and maximum sustained wind speed, maximum and minimum
// temperature; the file does not say which column is which, so the names stay as they are.
constexpr std::array<std::string_view, kFeatures + 1> kColumns = {
    "feat_1", "feat_2", "feat_3", "feat_4", "feat_5", "feat_6", "feat_7", "feat_8", "target"};

struct Days {
  std::vector<float> features;  // days x kFeatures, row-major
  std::vector<float> rain;
};

Days read_days(const std::string& path) {
  LineReader lines(path);
  std::string line;
  if (!lines.next(line)) throw IoError(path + ": empty file, expected the NOAA weather CSV");
  const std::vector<std::string> header = split_fields(without_bom(line), path + ": line 1: ");
  if (!std::equal(header.begin(), header.end(), kColumns.begin(), kColumns.end())) {
    throw IoError(path + ": line 1: header is not feat_1,...,feat_8,target");
  }
  Days days;
  while (lines.next(line)) {
    if (line.empty()) continue;  // blank lines hold no day
    const std::string where = path + ": line " + std::to_string(lines.number()) + ": ";
    const std::vector<std::string> fields = split_fields(line, where);
    if (fields.size() != kColumns.size()) {
      throw IoError(where + "expected " + std::to_string(kColumns.size()) + " fields, got " +
                    std::to_string(fields.size()));
    }
    for (std::size_t c = 0; c < kColumns.size(); ++c) {
      double value = 0;
      if (!parse_finite(fields[c], value)) {
        throw IoError(where + std::string(kColumns[c]) + " is not a number: '" +
                      std::string(fields[c]) + "'");
      }
      if (!fits_float32(value)) {
        throw IoError(where + std::string(kColumns[c]) + " = " + std::string(fields[c]) +
                      " does not fit float32 exactly");
      }
      if (c == kFeatures && value != 0 && value != 1) {
        throw IoError(where + "target must be 0 or 1, got '" + std::string(fields[c]) + "'");
      }
      (c < kFeatures ? days.features : days.rain).push_back(static_cast<float>(value));
    }
  }
  if (days.rain.size() <= kWeatherReferenceDays) {
    throw IoError(path + ": " + std::to_string(days.rain.size()) + " days; the reference takes " +
                  std::to_string(kWeatherReferenceDays) +
                  " and the stream needs at least one more");
  }
  return days;
}

// Writes days [first, end); the stream also stamps each row with its day.
void write_days(const std::filesystem::path& file, const Days& days, std::size_t first,
                std::size_t end, bool timestamps) {
  std::vector<std::int64_t> day(end - first);
  for (std::size_t d = first; d < end; ++d) day[d - first] = static_cast<std::int64_t>(d);
  Hdf5Writer writer(file.string(), {kColumns.begin(), kColumns.begin() + kFeatures},
                    {0, 0, /*with_label=*/true, timestamps, /*with_row_id=*/true});
  writer.append(days.features.data() + first * kFeatures, end - first, days.rain.data() + first,
                timestamps ? day.data() : nullptr, day.data());
  writer.close();
}

}  // namespace

WeatherSummary convert_weather(const std::string& input, const std::string& output_dir) {
  const Days days = read_days(input);
  const std::filesystem::path dir = output_directory(output_dir);
  const std::size_t rows = days.rain.size();
  write_days(dir / "weather_reference.h5", days, 0, kWeatherReferenceDays, false);
  write_days(dir / "weather_stream.h5", days, kWeatherReferenceDays, rows, true);
  return {rows, kWeatherReferenceDays, rows - kWeatherReferenceDays};
}

}  // namespace driftguard::data
