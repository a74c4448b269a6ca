// Batch scoring of tree ensembles on both backends (CUDA only where a device is present).
//
//   bench_score [google benchmark flags]
//       synthetic XGBoost models (complete trees, random splits) over rows x trees x depth x
//       features, on random normal data with 5% NaN;
//   bench_score --model=M --input=X.h5 [--threads=N] [google benchmark flags]
//       one real model (XGBoost JSON or LightGBM text) on a real table (bench/peer_score.py runs
//       xgboost or lightgbm on the same).
// Host batches in both cases: the CUDA timings include the copies to and from the device.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/model.hpp"

namespace {

using namespace driftguard;

// An XGBoost JSON binary:logistic model of complete trees of the given depth.
Model synthetic_model(std::size_t trees, int depth, std::size_t features) {
  std::mt19937_64 rng(trees * 131 + depth * 17 + features);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<std::size_t> feature(0, features - 1);
  nlohmann::json list = nlohmann::json::array();
  const std::size_t nodes = (std::size_t{1} << (depth + 1)) - 1, internal = nodes / 2;
  for (std::size_t t = 0; t < trees; ++t) {
    std::vector<int> left(nodes, -1), right(nodes, -1), split(nodes, 0), default_left(nodes, 0);
    std::vector<float> value(nodes);
    for (std::size_t i = 0; i < nodes; ++i) {
      if (i < internal) {
        left[i] = static_cast<int>(2 * i + 1);
        right[i] = static_cast<int>(2 * i + 2);
        split[i] = static_cast<int>(feature(rng));
        default_left[i] = static_cast<int>(rng() & 1);
        value[i] = normal(rng);
      } else {
        value[i] = 0.1f * normal(rng);
      }
    }
    list.push_back({{"tree_param", {{"num_nodes", std::to_string(nodes)}}},
                    {"left_children", left},
                    {"right_children", right},
                    {"split_indices", split},
                    {"split_conditions", value},
                    {"default_left", default_left}});
  }
  const nlohmann::json model = {
      {"learner",
       {{"objective", {{"name", "binary:logistic"}}},
        {"learner_model_param",
         {{"num_feature", std::to_string(features)}, {"num_class", "0"}, {"base_score", "0.5"}}},
        {"gradient_booster",
         {{"name", "gbtree"},
          {"model",
           {{"gbtree_model_param", {{"num_trees", std::to_string(trees)}}},
            {"trees", list},
            {"tree_info", std::vector<int>(trees, 0)}}}}}}}};
  return Model::parse(model.dump(), {}, "synthetic");
}

std::vector<float> random_rows(std::size_t rows, std::size_t features) {
  std::mt19937_64 rng(rows ^ features);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform;
  std::vector<float> values(rows * features);
  for (float& v : values) v = uniform(rng) < 0.05f ? NAN : normal(rng);
  return values;
}

void run_score(benchmark::State& state, Backend backend, int threads, const Model& model,
               const std::vector<float>& values, const std::vector<std::string>& names) {
  Context ctx(ContextOptions{.backend = backend, .cpu_threads = threads});
  const std::size_t features = names.size(), rows = values.size() / features;
  const BoundModel bound(model, names);
  std::vector<float> probability(rows * model.outputs());
  for (auto _ : state) {
    score(ctx, bound, {values.data(), rows, features}, {.probability = probability.data()});
    benchmark::DoNotOptimize(probability.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * values.size() * 4));
  state.counters["rows_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * rows), benchmark::Counter::kIsRate);
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["trees"] = static_cast<double>(model.trees());
  state.counters["features"] = static_cast<double>(features);
  state.counters["threads"] = ctx.cpu_threads();
}

std::vector<std::string> f_names(std::size_t features) {
  std::vector<std::string> names;
  for (std::size_t f = 0; f < features; ++f)
    names.push_back(std::string("f").append(std::to_string(f)));
  return names;
}

void synthetic(benchmark::State& state, Backend backend) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto trees = static_cast<std::size_t>(state.range(1));
  const auto depth = static_cast<int>(state.range(2));
  const auto features = static_cast<std::size_t>(state.range(3));
  const Model model = synthetic_model(trees, depth, features);
  run_score(state, backend, 0, model, random_rows(rows, features), f_names(features));
}

void register_synthetic(Backend backend) {
  const std::string name = "score_trees/" + std::string(to_string(backend));
  benchmark::RegisterBenchmark(name.c_str(),
                               [backend](benchmark::State& s) { synthetic(s, backend); })
      ->ArgNames({"rows", "trees", "depth", "features"})
      ->ArgsProduct({{1 << 16}, {100, 500}, {4, 6, 8}, {16, 64}})
      ->Args({1 << 20, 500, 6, 64})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string model_path, input;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--model=", 8) == 0) {
      model_path = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--input=", 8) == 0) {
      input = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::stoi(argv[i] + 10);
    } else {
      std::cerr << "bench_score: unknown argument " << argv[i] << "\n";
      return 2;
    }
  }
  if (model_path.empty() != input.empty()) {
    std::cerr << "usage: bench_score [--model=M --input=X.h5 [--threads=N]] [flags]\n";
    return 2;
  }
  try {
    std::vector<Backend> backends = {Backend::Cpu};
    if (cuda_device_count() > 0) backends.push_back(Backend::Cuda);
    if (model_path.empty()) {
      for (Backend backend : backends) register_synthetic(backend);
    } else {
      static const Model model = Model::load(model_path);
      static std::vector<float> values;
      Hdf5BatchReader reader(input);
      values.resize(reader.rows() * reader.features());
      reader.read(0, reader.rows(), values.data());
      static const std::vector<std::string> names = reader.feature_names();
      for (Backend backend : backends) {
        const std::string name =
            "score_file/" + std::string(to_string(backend)) + "/" + std::to_string(reader.rows()) +
            "x" + std::to_string(reader.features()) + "/trees:" + std::to_string(model.trees());
        benchmark::RegisterBenchmark(name.c_str(),
                                     [backend, threads](benchmark::State& s) {
                                       run_score(s, backend, threads, model, values, names);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const driftguard::Error& e) {
    std::cerr << "bench_score: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
