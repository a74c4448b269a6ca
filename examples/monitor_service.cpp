// A scoring service in miniature: it builds a reference profile once, then request threads hand
// their batches to one driftguard::Monitor while a watcher thread reads snapshots of the open
// window; at the end of the window the service closes it and acts on the report.
//
// Build against an installed driftguard:
//   find_package(driftguard REQUIRED)
//   target_link_libraries(monitor_service PRIVATE driftguard::driftguard)
// Run: monitor_service [WORK_DIR]  (writes a small reference table there; default: the
// system's temporary directory). Exit code 0 when the injected drift was caught.
#include <driftguard/context.hpp>
#include <driftguard/errors.hpp>
#include <driftguard/hdf5_io.hpp>
#include <driftguard/monitor.hpp>
#include <driftguard/profile.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kFeatures = 4;

// Rows of (income, utilization, age, tenure); `shift` moves income, as a changed market would.
std::vector<float> make_rows(std::size_t rows, std::uint64_t seed, float shift) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<float> income(10.5f, 0.5f);
  std::uniform_real_distribution<float> utilization(0.f, 1.f);
  std::normal_distribution<float> age(42.f, 11.f);
  std::poisson_distribution<int> tenure(6);
  std::vector<float> values;
  values.reserve(rows * kFeatures);
  for (std::size_t r = 0; r < rows; ++r) {
    values.push_back(income(rng) * (1.f + shift));
    values.push_back(utilization(rng));
    values.push_back(age(rng));
    values.push_back(static_cast<float>(tenure(rng)));
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace driftguard;
  try {
    const std::filesystem::path dir =
        argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::temp_directory_path();
    const std::string reference_path = (dir / "monitor_service_reference.h5").string();
    {
      Hdf5Writer writer(reference_path, {"income", "utilization", "age", "tenure"});
      const std::vector<float> rows = make_rows(50'000, 1, 0.f);
      writer.append(rows.data(), 50'000);
      writer.close();
    }

    Context ctx;  // CUDA when a device is present, else the CPU
    ReferenceProfile profile = ReferenceProfile::build(ctx, reference_path, {.mmd_rows = 1000});
    DriftOptions options;
    options.mmd = true;
    options.mmd_rows = 1000;
    Monitor monitor(ctx, std::move(profile), options);

    // Four request threads, 25 batches of 400 rows each; income drifts upward by 30 %.
    std::vector<std::thread> requests;
    for (std::uint64_t t = 0; t < 4; ++t) {
      requests.emplace_back([&monitor, t] {
        for (std::uint64_t b = 0; b < 25; ++b) {
          const std::vector<float> batch = make_rows(400, 100 + t * 1000 + b, 0.3f);
          monitor.observe({batch.data(), 400, kFeatures});
        }
      });
    }
    std::atomic<bool> done = false;
    std::thread watcher([&] {
      do {
        const ScanReport partial = monitor.snapshot();  // the window goes on
        std::printf("watcher: %llu rows in the open window\n",
                    static_cast<unsigned long long>(partial.current_rows));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } while (!done);
    });
    for (std::thread& t : requests) t.join();
    done = true;
    watcher.join();

    const ScanReport window = monitor.close_window();
    std::printf("window: %llu rows on %s; income PSI %.3f (%s), KS p %.2e; MMD p %.3f\n",
                static_cast<unsigned long long>(window.current_rows), window.backend.c_str(),
                window.features[0].psi, std::string(to_string(window.features[0].band)).c_str(),
                window.features[0].ks->pvalue, window.mmd ? window.mmd->pvalue : 1.0);
    const bool caught = window.current_rows == 40'000 && window.features[0].drifted &&
                        !window.features[1].drifted && window.dataset_drift() &&
                        monitor.window_rows() == 0;
    std::cout << (caught ? "monitor_service: drift caught" : "monitor_service: WRONG") << "\n";
    std::filesystem::remove(reference_path);
    return caught ? 0 : 1;
  } catch (const driftguard::Error& e) {
    std::cerr << "monitor_service: " << e.what() << "\n";
    return 1;
  }
}
