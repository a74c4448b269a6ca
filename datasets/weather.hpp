#pragma once
// Converts the NOAA daily weather table (Offutt AFB, Bellevue, Nebraska, 1949-1999, as used by
// Elwell & Polikar, 2011) into a first-decade reference window and the stream of the days after
// it, whose /timestamp is the day's index, for scans by time window (--window-time 3650: decades).
#include <cstddef>
#include <cstdint>
#include <string>

namespace driftguard::data {

// Days (rows, from the first) in the reference window.
inline constexpr std::size_t kWeatherReferenceDays = 3650;

struct WeatherSummary {
  std::size_t rows = 0;
  std::size_t reference = 0;
  std::size_t stream = 0;
};

// Reads `input` (CSV, plain or gzip: feat_1..feat_8, target; one row per day in time order) and
// writes weather_reference.h5 (days 0 .. kWeatherReferenceDays - 1) and weather_stream.h5 (the
// rest, /timestamp = day index) into `output_dir` (created if missing); both carry /label (rain
// the next day) and /row_id (the day index). IoError for an unreadable file, an unexpected header,
// a malformed line (named by number), or too few days for both windows.
WeatherSummary convert_weather(const std::string& input, const std::string& output_dir);

}  // namespace driftguard::data
