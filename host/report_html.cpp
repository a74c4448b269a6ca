// The scan report as one self-contained HTML page for people: rendered from the JSON document
// (docs/report.md), so the page and the JSON never disagree. No scripts, no external resources;
// every string from the data (feature names, paths, reasons) is escaped.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "driftguard/report.hpp"

namespace driftguard {
namespace {

using nlohmann::json;

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A string field as text; numbers and literals as JSON writes them; anything else (an array or
// object where text belongs, which a hand-edited report may nest thousands deep) as a dash.
std::string text_of(const json& value) {
  if (value.is_string()) return escape(value.get<std::string>());
  return value.is_primitive() ? escape(value.dump()) : "&#8212;";
}

// A number to `digits` significant digits; null (an undefined statistic) as a dash.
std::string number(const json& value, int digits = 4) {
  if (!value.is_number()) return "&#8212;";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value.get<double>());
  return buffer;
}

const json& member(const json& object, const char* key) {
  static const json null;
  const auto it = object.find(key);
  return it == object.end() ? null : *it;
}

// A histogram's slot counts; empty (no chart) unless every entry is a non-negative number.
std::vector<double> counts_of(const json& slots) {
  std::vector<double> counts;
  if (!slots.is_array()) return counts;
  for (const json& slot : slots) {
    if (!slot.is_number() || !(slot.get<double>() >= 0)) return {};
    counts.push_back(slot.get<double>());
  }
  return counts;
}

// What histogram slot i of `slots` holds, for its tooltip: a bin's edges, code (and label) or
// value, or the outer and missing slots (layout in docs/report.md).
std::string slot_name(const json& histogram, std::size_t i, std::size_t slots) {
  if (i + 1 == slots) return "missing";
  const json& edges = member(histogram, "edges");
  const bool numeric = edges.is_array();
  if (i == 0) return "below the first edge";
  if (i + 2 == slots) return numeric ? "above the last edge" : "other values";
  const std::size_t bin = i - 1;
  if (numeric) {
    if (bin + 1 >= edges.size()) return "bin " + std::to_string(bin);
    return "[" + number(edges[bin], 6) + ", " + number(edges[bin + 1], 6) +
           (i + 3 == slots ? "]" : ")");
  }
  const json& values = member(histogram, "values");
  if (values.is_array() && bin < values.size()) return "value " + number(values[bin], 6);
  const json& codes = member(histogram, "categories");
  const json& labels = member(histogram, "labels");
  const std::string code = codes.is_array() && bin < codes.size() ? number(codes[bin], 8) : "?";
  if (labels.is_array() && bin < labels.size() && labels[bin].is_string()) {
    return text_of(labels[bin]) + " (code " + code + ")";
  }
  return "code " + code;
}

// Reference (grey) and current (blue) shares of each histogram slot, side by side, each pair
// titled with its slot and shares; the outer and missing slots only when either window has a
// value there. Past kMaxBarPairs slots (value bins of thousands of codes) the picture keeps those
// holding the largest share of either window, in slot order, and says so.
std::string histogram_svg(const json& histogram) {
  constexpr std::size_t kMaxBarPairs = 128;
  const std::vector<double> reference = counts_of(member(histogram, "reference"));
  const std::vector<double> current = counts_of(member(histogram, "current"));
  if (reference.size() != current.size() || reference.size() < 3) return "";
  double reference_total = 0, current_total = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    reference_total += reference[i];
    current_total += current[i];
  }
  std::vector<std::size_t> shown;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const bool inner = i > 0 && i + 2 < reference.size();
    if (inner || reference[i] > 0 || current[i] > 0) shown.push_back(i);
  }
  const auto share = [](double count, double total) { return total > 0 ? count / total : 0.0; };
  const std::size_t slots_with_bars = shown.size();
  if (shown.size() > kMaxBarPairs) {
    const auto larger = [&](std::size_t i) {
      return std::max(share(reference[i], reference_total), share(current[i], current_total));
    };
    std::stable_sort(shown.begin(), shown.end(),
                     [&](std::size_t a, std::size_t b) { return larger(a) > larger(b); });
    shown.resize(kMaxBarPairs);
    std::sort(shown.begin(), shown.end());
  }
  double top = 0;
  for (const std::size_t i : shown) {
    top = std::max({top, share(reference[i], reference_total), share(current[i], current_total)});
  }
  constexpr double kHeight = 32, kBar = 4;
  std::string svg = "<svg class=\"hist\" width=\"" +
                    std::to_string(static_cast<int>(shown.size() * (2 * kBar + 2))) +
                    "\" height=\"" + std::to_string(static_cast<int>(kHeight)) + "\">";
  double x = 0;
  for (const std::size_t i : shown) {
    char shares[96];
    std::snprintf(shares, sizeof shares, ": reference %.1f%%, current %.1f%%",
                  100 * share(reference[i], reference_total),
                  100 * share(current[i], current_total));
    svg += "<g><title>" + slot_name(histogram, i, reference.size()) + shares + "</title>";
    for (const auto& [count, total, css] : {std::tuple{reference[i], reference_total, "r"},
                                            std::tuple{current[i], current_total, "c"}}) {
      const double h = top > 0 ? kHeight * share(count, total) / top : 0.0;
      char rect[128];
      std::snprintf(rect, sizeof rect,
                    "<rect class=\"%s\" x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\"/>",
                    css, x, kHeight - h, kBar, h);
      svg += rect;
      x += kBar;
    }
    svg += "</g>";
    x += 2;
  }
  svg += "</svg>";
  if (shown.size() < slots_with_bars) {
    svg += "<br><small>" + std::to_string(shown.size()) + " of " + std::to_string(slots_with_bars) +
           " slots: those with the largest shares</small>";
  }
  return svg;
}

std::string band_cell(const json& item) {
  const std::string band = member(item, "band").is_string() ? item["band"].get<std::string>() : "";
  return "<td class=\"num band-" + escape(band) + "\">" + number(member(item, "psi")) + "</td>";
}

std::string yes_no(const json& value) {
  return value.is_boolean() && value.get<bool>() ? "<b class=\"drift\">yes</b>" : "no";
}

std::string features_table(const json& doc) {
  std::string html =
      "<h2>Features</h2><table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS D</th>"
      "<th>p adjusted (KS, or &#967;&#178; where marked)</th><th>Wasserstein (normed)</th>"
      "<th>Jensen&#8211;Shannon</th>"
      "<th>test p</th><th>missing</th><th>invalid</th><th>histogram</th><th>drifted</th></tr>";
  for (const json& f : member(doc, "features")) {
    const json& ks = member(f, "ks");
    const json& validation = member(f, "validation");
    std::uint64_t invalid = 0;
    for (const char* flag : {"non_finite", "below_min", "above_max", "unknown_category"}) {
      const json& count = member(validation, flag);
      if (count.is_number()) invalid += count.get<std::uint64_t>();
    }
    const json& test = f.contains("chi_squared") ? f["chi_squared"] : member(f, "cramer_von_mises");
    // Under the test rules a categorical feature's adjusted p-value is its chi-squared test's.
    const bool by_chi_squared = member(member(f, "chi_squared"), "pvalue_adjusted").is_number();
    const std::string adjusted = by_chi_squared
                                     ? number(member(test, "pvalue_adjusted")) + " (&#967;&#178;)"
                                     : number(member(ks, "pvalue_adjusted"));
    html += std::string("<tr") + (member(f, "drifted") == true ? " class=\"drifted\"" : "") +
            "><td>" + text_of(member(f, "name")) + "</td><td>" + text_of(member(f, "kind")) +
            "</td>" + band_cell(f) + "<td class=\"num\">" + number(member(ks, "statistic")) +
            "</td><td class=\"num\">" + adjusted + "</td><td class=\"num\">" +
            number(member(f, "wasserstein_normed")) + "</td><td class=\"num\">" +
            number(member(f, "jensen_shannon")) + "</td><td class=\"num\">" +
            number(member(test, "pvalue")) + "</td><td class=\"num\">" +
            number(member(validation, "missing"), 12) + "</td><td class=\"num\">" +
            std::to_string(invalid) + "</td><td>" + histogram_svg(member(f, "histogram")) +
            "</td><td>" + yes_no(member(f, "drifted")) + "</td></tr>";
  }
  return html + "</table>";
}

std::string scores_table(const json& score) {
  std::string html = "<h2>Model scores</h2><p>model " + text_of(member(score, "model")) +
                     "</p><table><tr><th>output</th><th>PSI</th><th>KS D</th><th>KS p</th>"
                     "<th>histogram</th><th>drifted</th></tr>";
  for (const json& s : member(score, "outputs")) {
    const json& ks = member(s, "ks");
    html += "<tr><td>" + text_of(member(s, "name")) + "</td>" + band_cell(s) +
            "<td class=\"num\">" + number(member(ks, "statistic")) + "</td><td class=\"num\">" +
            number(member(ks, "pvalue")) + "</td><td>" + histogram_svg(member(s, "histogram")) +
            "</td><td>" + yes_no(member(s, "drifted")) + "</td></tr>";
  }
  return html + "</table>";
}

std::string windows_table(const json& windows) {
  std::string html =
      "<h2>Windows</h2><table><tr><th>window</th><th>rows</th><th>rows ok</th>"
      "<th>drifted features</th><th>MMD p</th><th>dataset drift</th></tr>";
  for (const json& w : windows) {
    std::string names;
    for (const json& name : member(w, "drifted_features")) {
      names += (names.empty() ? "" : ", ") + text_of(name);
    }
    html += "<tr><td class=\"num\">" + number(member(w, "index"), 12) + "</td><td class=\"num\">" +
            number(member(w, "rows"), 12) + "</td><td class=\"num\">" +
            number(member(w, "rows_ok"), 12) + "</td><td>" + names + "</td><td class=\"num\">" +
            number(member(w, "mmd_pvalue")) + "</td><td>" + yes_no(member(w, "dataset_drift")) +
            "</td></tr>";
  }
  return html + "</table>";
}

constexpr std::string_view kStyle =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:middle}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tr.drifted td:first-child{font-weight:bold}"
    ".band-moderate{background:#fff3c4}.band-significant{background:#ffd0cc}"
    ".verdict{padding:.6em 1em;border-radius:4px;display:inline-block}"
    ".verdict.yes{background:#ffd0cc}.verdict.no{background:#d8f3dc}"
    "b.drift{color:#b00020}svg.hist rect.r{fill:#9e9e9e}svg.hist rect.c{fill:#1f6fb2}"
    ".muted{color:#666}";

std::string page_of(const json& doc) {
  const json& drift = member(doc, "drift");
  const bool dataset_drift = member(drift, "dataset_drift") == true;
  const json& validation = member(doc, "validation");
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
      "driftguard scan: " +
      text_of(member(member(doc, "current"), "path")) + "</title><style>" + std::string(kStyle) +
      "</style></head><body>";
  html += "<h1>driftguard scan</h1><p>current " + text_of(member(member(doc, "current"), "path")) +
          " (" + number(member(doc, "current_rows"), 15) + " rows) against reference " +
          text_of(member(member(doc, "reference"), "path")) + " (" +
          number(member(doc, "reference_rows"), 15) + " rows" +
          (member(member(doc, "reference"), "profile") == true ? ", profile" : "") + ")</p>";
  if (const json& window = member(doc, "window"); window.is_object()) {
    html += "<p>window " + number(member(window, "index"), 15) + ": file rows " +
            number(member(window, "first_row"), 15) + " to " +
            number(member(window, "end_row"), 15) + " (end excluded)";
    if (const json& time = member(window, "time"); time.is_object()) {
      html += ", time " + text_of(member(time, "begin")) + " to " + text_of(member(time, "end"));
    }
    html += "</p>";
  }
  html += std::string("<p class=\"verdict ") + (dataset_drift ? "yes" : "no") +
          "\">dataset drift: <b>" + (dataset_drift ? "yes" : "no") + "</b> &#8212; " +
          number(member(drift, "features_drifted"), 12) + " of " +
          std::to_string(member(doc, "features").size()) + " features drifted</p><p>" +
          text_of(member(drift, "rule")) + "</p>";
  html += "<p>current rows: " + number(member(validation, "rows_ok"), 15) + " ok, " +
          number(member(validation, "rows_invalid"), 15) + " invalid";
  const json& quarantine = member(doc, "quarantine");
  if (member(quarantine, "rows").is_number() && quarantine["rows"].get<std::uint64_t>() > 0) {
    html += "; " + number(quarantine["rows"], 15) + " unreadable rows quarantined in " +
            std::to_string(member(quarantine, "blocks").size()) + " blocks";
  }
  html += "</p>";
  for (const json& e : member(doc, "failovers")) {
    html += "<p><b class=\"drift\">failover</b> at row " + number(member(e, "row"), 15) + " (" +
            text_of(member(e, "stage")) + "): " + text_of(member(e, "from")) + " &#8594; " +
            text_of(member(e, "to")) + ", " + text_of(member(e, "reason")) + "</p>";
  }
  if (const json& mmd = member(doc, "mmd"); member(mmd, "skipped").is_string()) {
    html += "<h2>MMD permutation test</h2><p>not run: " + text_of(mmd["skipped"]) + "</p>";
  } else if (mmd.is_object()) {
    html += "<h2>MMD permutation test</h2><p>MMD&#178; " + number(member(mmd, "mmd2")) + ", p " +
            number(member(mmd, "pvalue")) + " (" + number(member(mmd, "permutations"), 12) +
            " permutations, &#963; " + number(member(mmd, "sigma")) + ", " +
            number(member(mmd, "reference_rows"), 12) + " vs " +
            number(member(mmd, "current_rows"), 12) + " rows): drift " +
            yes_no(member(mmd, "drift")) + "</p>";
  }
  if (const json& score = member(doc, "score"); score.is_object()) html += scores_table(score);
  if (const json& windows = member(doc, "windows"); windows.is_array()) {
    html += windows_table(windows);
  }
  html += features_table(doc);
  html +=
      "<p class=\"muted\">Histograms: reference share of each bin in grey, current in blue "
      "(outer and missing slots where either window has values). Binning " +
      text_of(member(member(doc, "binning"), "policy")) + "; correction " +
      text_of(member(drift, "correction")) + ", alpha " + number(member(drift, "alpha")) +
      "; backend " + text_of(member(doc, "backend")) + " (" + text_of(member(doc, "device")) +
      "), " + number(member(member(doc, "timing"), "total_seconds")) +
      " s. Every number is in the JSON report (docs/report.md).</p></body></html>\n";
  return html;
}

}  // namespace

std::string ScanReport::to_html() const { return page_of(json::parse(to_json(-1))); }

std::string report_html(std::string_view report_json, std::optional<std::uint64_t> window) {
  const auto parse = [](std::string_view text, const std::string& what) {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {  // syntax, and numbers beyond double (1e400)
      throw InvalidInput(what + "not JSON: " + e.what());
    }
  };
  json doc;
  if (!window) {
    try {
      doc = json::parse(report_json);
    } catch (const json::exception& e) {
      const std::string_view first_line = report_json.substr(0, report_json.find('\n'));
      if (json::accept(first_line) && json::parse(first_line).contains("window")) {
        throw InvalidInput(
            "records of several windows (--windows-jsonl): choose one with --window");
      }
      throw InvalidInput(std::string("not JSON: ") + e.what());
    }
  } else {
    // A whole report (pretty-printed over many lines, or one line without "window") holds no
    // windows to choose from.
    if (json::accept(report_json) && !json::parse(report_json).contains("window")) {
      throw InvalidInput(
          "a whole-run report, not window records: --window needs a --windows-jsonl file");
    }
    std::size_t line = 0;
    for (std::size_t at = 0; at < report_json.size() && doc.is_null();) {
      const std::size_t end = std::min(report_json.find('\n', at), report_json.size());
      const std::string_view record = report_json.substr(at, end - at);
      ++line;
      at = end + 1;
      if (record.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      json candidate = parse(record, "line " + std::to_string(line) + " (a JSON Lines record): ");
      if (member(member(candidate, "window"), "index") == *window) doc = std::move(candidate);
    }
    if (doc.is_null()) {
      throw InvalidInput("no record of window " + std::to_string(*window) +
                         " (JSON Lines with \"window\": {\"index\": ...}, from --windows-jsonl)");
    }
  }
  if (!doc.is_object() || member(doc, "report_version") != 1) {
    throw InvalidInput("not a driftguard scan report (a JSON object with \"report_version\": 1)");
  }
  // The verdict is the page's headline: without it (or the features it counts) the page would
  // say "no drift" about a report that does not say so.
  if (!member(member(doc, "drift"), "dataset_drift").is_boolean() ||
      !member(doc, "features").is_array()) {
    throw InvalidInput(
        "not a complete scan report: drift.dataset_drift (true or false) or features is missing");
  }
  return page_of(doc);
}

}  // namespace driftguard
