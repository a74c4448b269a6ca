#!/usr/bin/env python3
"""Golden files for scoring LightGBM text models: the models and LightGBM's own Booster.predict.

    python3 tests/golden/make_lightgbm_golden.py   # from the repository root; pip-installs lightgbm

Writes tests/models/lgb_*.txt (Booster.save_model, text format) and tests/golden/score_lightgbm.json
in the case format of score_xgboost.json: per case the model file, the options, the batch's column
names (batch order), the input rows as float32 values (NaN as null, infinities as "inf"/"-inf"),
Booster.predict(raw_score=True) as "margin" and Booster.predict() as "prediction", one list per row
(K values for multi-class, 1 otherwise).

Every golden number comes from a Booster loaded back from the saved .txt (what driftguard reads),
fed a plain float32 NumPy array in the model's feature order. The script also checks, and stops on
a mismatch, that
- the trained Booster on the training frame (pandas categoricals included) predicts the same
  numbers as the reloaded one on the float32 codes;
- an independent walk of Booster.dump_model() (the semantics listed in tests/golden/README.md)
  reproduces every margin bit for bit, and the prediction from it to 1e-15.

Each case is ~300 random test rows followed by ~40 edge rows built from the model: rows steered
down a tree to one split whose feature is then set to float32(threshold) or a float32 neighbour
(a categorical split gets -0.5, -1, 2.7, 3e9, 1e20, NaN, +-inf or -1e-36), and rows with every
split feature set to one special value (+-0, +-1e-36, +-1e-35 and their float32 neighbours,
+-inf, NaN, 1e30).
"""
import collections
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from peer_common import ensure  # noqa: E402

np = ensure("numpy")
pd = ensure("pandas")
from score_data import as_codes, synthetic, uci_split, values  # noqa: E402
lgb = ensure("lightgbm")

MODELS = os.path.join(ROOT, "tests", "models")
GOLDEN = os.path.join(ROOT, "tests", "golden", "score_lightgbm.json")
ROWS = 300
F32 = np.float32
K_ZERO = float(F32(1e-35))  # LightGBM's kZeroThreshold: `const double kZeroThreshold = 1e-35f`


def doubles(array):
    """float64 outputs, one list per row (margins and predictions are not rounded to float32)."""
    a = np.asarray(array, dtype=np.float64)
    assert np.isfinite(a).all()
    return [[float(v) for v in row] for row in a.reshape(len(a), -1)]


# ---- An independent reading of the model (dump_model), to check LightGBM's outputs against. ----

def nodes(tree):
    """Internal nodes of a dumped tree as (node, path); path = [(ancestor, went_left)]."""
    out, stack = [], [(tree["tree_structure"], [])]
    while stack:
        node, path = stack.pop()
        if "leaf_value" in node:
            continue
        out.append((node, path))
        stack.append((node["left_child"], path + [(node, True)]))
        stack.append((node["right_child"], path + [(node, False)]))
    return out


def exact_thresholds(model, text):
    """dump_model() writes an infinite threshold as +-1e300 (AvoidInf); the text model has "inf".
    Puts the text's thresholds into the dumped numerical nodes."""
    blocks = text.split("\nTree=")[1:]
    for tree, block in zip(model["tree_info"], blocks):
        fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        if "threshold" not in fields:
            continue
        thresholds = [float(v) for v in fields["threshold"].split()]
        for node, _ in nodes(tree):
            if node["decision_type"] == "<=":
                t = thresholds[node["split_index"]]
                assert t == node["threshold"] or (math.isinf(t) and abs(node["threshold"]) == 1e300)
                node["threshold"] = t
    return model


def categories(node):
    return {int(c) for c in str(node["threshold"]).split("||")}


def goes_left(node, v, zero_small=True):
    """One decision as LightGBM 4.x takes it on a dense float row (v: the float32 value widened)."""
    if zero_small and abs(v) <= K_ZERO:  # the dense-row reader drops |x| <= kZeroThreshold: 0.0
        v = 0.0
    if node["decision_type"] == "==":
        # NaN, negative and out-of-int-range values (static_cast<int> gives INT_MIN) go right.
        if math.isnan(v) or not (-2.0 ** 31 < v < 2.0 ** 31) or int(v) < 0:
            return False
        return int(v) in categories(node)
    missing = node["missing_type"]
    if math.isnan(v) and missing != "NaN":
        v = 0.0
    if (missing == "Zero" and abs(v) <= K_ZERO) or (missing == "NaN" and math.isnan(v)):
        return node["default_left"]
    return v <= node["threshold"]


def leaf(tree, row, zero_small=True):
    node = tree["tree_structure"]
    while "leaf_value" not in node:
        left = goes_left(node, float(row[node["split_feature"]]), zero_small)
        node = node["left_child"] if left else node["right_child"]
    return node["leaf_value"]


def walk_margin(model, X, begin, end, zero_small=True):
    """Sum of the leaves in tree order, iterations [begin, end), starting from 0.0 (double)."""
    k = model["num_tree_per_iteration"]
    trees = model["tree_info"][begin * k:end * k]
    out = np.zeros((len(X), k))
    for r, row in enumerate(X):
        for i, tree in enumerate(trees):
            out[r, i % k] += leaf(tree, row, zero_small)
    return out


def transform(objective_line, margin, average_over):
    """Booster.predict() from the raw sums: rf divides by the iteration count first."""
    name, *args = objective_line.split()
    args = dict(a.split(":") for a in args)
    m = margin / average_over if average_over else margin
    sigmoid = float(args.get("sigmoid", 1))
    if name in ("binary", "multiclassova"):
        return 1.0 / (1.0 + np.exp(-sigmoid * m))
    if name == "cross_entropy":
        return 1.0 / (1.0 + np.exp(-m))
    if name == "multiclass":
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if name in ("poisson", "gamma", "tweedie"):
        return np.exp(m)
    assert name in ("regression", "regression_l1", "huber", "fair", "quantile", "mape",
                    "lambdarank", "rank_xendcg") and "sqrt" not in args
    return m


# ---- Edge rows ----

def neighbours(x):
    x = F32(x)
    return [x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))]


NUMERIC_SPECIALS = ([F32(0.0), F32(-0.0)] + neighbours(1e-36) + neighbours(-1e-36)
                    + neighbours(1e-35) + neighbours(-1e-35)
                    + [F32(np.inf), F32(-np.inf), F32(np.nan), F32(1e30)])
CATEGORY_SPECIALS = [F32(v) for v in (-0.5, -1.0, 2.7, 3e9, 1e20, np.nan, np.inf, -np.inf, -1e-36)]


def steer(node, went_left, row):
    """Sets row's feature so that it takes the given side of node; False when it cannot."""
    f = node["split_feature"]
    if node["decision_type"] == "==":
        candidates = [F32(min(categories(node))) if went_left else F32(np.nan)]
    else:
        t, x = node["threshold"], F32(node["threshold"])
        step = F32(-np.inf) if went_left else F32(np.inf)
        while math.isfinite(x) and (float(x) > t if went_left else float(x) <= t):
            x = np.nextafter(x, step)
        candidates = [x, F32(np.nan), F32(0.0)]  # NaN, 0.0: the default side
    for x in candidates:
        row[f] = x
        if goes_left(node, float(x)) == went_left:
            return True
    return False


def edge_rows(model, base, rng, targeted=22):
    """~40 rows: `targeted` rows steered to one split each and set at its threshold, then one row
    per special value with every split feature set to it."""
    all_nodes = [n for tree in model["tree_info"] for n in nodes(tree)]
    # Thresholds at -kZeroThreshold first: there x = float32(-1e-35) goes right (read as 0.0),
    # where comparing the value itself would send it left.
    near_zero = [[n for n in all_nodes
                  if n[0]["decision_type"] == "<=" and abs(n[0]["threshold"]) < 1e-30
                  and (n[0]["threshold"] < 0) == negative] for negative in (True, False)]
    picks = ([near_zero[0][i] for i in rng.permutation(len(near_zero[0]))[:6]]
             + [near_zero[1][i] for i in rng.permutation(len(near_zero[1]))[:2]])
    rows, attempt = [], 0
    while len(rows) < targeted and attempt < 1000:
        target, path = picks[attempt] if attempt < len(picks) else \
            all_nodes[rng.integers(len(all_nodes))]
        attempt += 1
        row = base[rng.integers(len(base))].copy()
        if not all(steer(node, left, row) for node, left in path):
            continue
        f = target["split_feature"]
        if target["decision_type"] == "==":
            row[f] = CATEGORY_SPECIALS[len(rows) % len(CATEGORY_SPECIALS)]
        elif attempt <= len(picks) and attempt % 3:
            row[f] = F32(target["threshold"])  # +-kZeroThreshold itself: read as 0.0
        else:
            row[f] = neighbours(target["threshold"])[len(rows) % 3]
        if all(goes_left(node, float(row[node["split_feature"]])) == left for node, left in path):
            rows.append(row)
    numeric = sorted({n["split_feature"] for n, _ in all_nodes if n["decision_type"] == "<="})
    categorical = sorted({n["split_feature"] for n, _ in all_nodes if n["decision_type"] == "=="})
    for j, special in enumerate(NUMERIC_SPECIALS):
        row = base[rng.integers(len(base))].copy()
        row[numeric] = special
        row[categorical] = CATEGORY_SPECIALS[j % len(CATEGORY_SPECIALS)]
        rows.append(row)
    return np.array(rows, dtype=np.float32)


# ---- Cases ----

cases = []


def lgb_case(name, params, train, label, test, rounds, options=None, batch_order=None,
             categorical=None, predict_range=None, extra=None, group=None):
    """Trains on `train` (a DataFrame; `group`: query sizes for ranking), saves the text model,
    scores `test` plus edge rows."""
    params = {"verbose": -1, "num_threads": 2, "seed": 7, "deterministic": True, **params}
    dtrain = lgb.Dataset(train, label, group=group, categorical_feature=categorical or "auto")
    trained = lgb.train(params, dtrain, rounds)
    path = os.path.join(MODELS, f"lgb_{name}.txt")
    trained.save_model(path)
    booster = lgb.Booster(model_file=path)  # what driftguard reads
    text = open(path).read()
    model = exact_thresholds(booster.dump_model(), text)
    names = booster.feature_name()
    assert names == list(train.columns)
    rng = np.random.default_rng(1000 + len(cases))

    X = as_codes(test)[names].to_numpy(np.float32)
    X = np.concatenate([X, edge_rows(model, X, rng)])
    begin, count = predict_range or (0, booster.current_iteration())
    kwargs = {"start_iteration": begin, "num_iteration": count}
    margin = booster.predict(X, raw_score=True, **kwargs)
    prediction = booster.predict(X, **kwargs)

    # The trained booster on the training frame's dtypes (pandas categoricals) gives the same.
    same = trained.predict(test, raw_score=True, **kwargs)
    assert np.array_equal(same, margin[:len(test)]), name
    assert np.array_equal(trained.predict(test, **kwargs), prediction[:len(test)]), name
    # An independent walk of the dumped model gives the same margins bit for bit.
    objective = next(l for l in text.splitlines() if l.startswith("objective="))[10:]
    rf = "average_output" in text.splitlines()
    k = model["num_tree_per_iteration"]
    walked = walk_margin(model, X, begin, begin + count)
    assert np.array_equal(walked, margin.reshape(len(X), k)), name
    expect = transform(objective, walked, count if rf else None)
    # Relative: exp-link predictions reach tens, where NumPy's exp and C's may differ by an ulp.
    p = prediction.reshape(len(X), k)
    err = (np.abs(expect - p) / np.maximum(1.0, np.abs(p))).max()
    assert err <= 1e-15, (name, err)
    zeroed = int((walk_margin(model, X, begin, begin + count, zero_small=False) != walked)
                 .any(axis=1).sum())

    batch = pd.DataFrame(X, columns=names)
    if batch_order is not None:
        batch = batch[batch_order]
    case = {
        "name": name, "model": os.path.relpath(path, ROOT), "objective": objective,
        "options": options or {}, "feature_names": list(batch.columns),
        "features": values(batch.to_numpy()), "margin": doubles(margin.reshape(len(X), k)),
        "prediction": doubles(prediction.reshape(len(X), k)),
    }
    case.update(extra(model) if extra else {})
    cases.append(case)

    trees = model["tree_info"]
    split_nodes = [n for t in trees for n, _ in nodes(t)]
    cat_nodes = sum(n["decision_type"] == "==" for n in split_nodes)
    widest = max((len(categories(n)) for n in split_nodes if n["decision_type"] == "=="),
                 default=0)
    largest = max((max(categories(n)) for n in split_nodes if n["decision_type"] == "=="),
                  default=0)
    missing = collections.Counter(n["missing_type"] for n in split_nodes
                                  if n["decision_type"] == "<=")
    extra_text = "".join(f", {key} {val}" for key, val in case.items()
                         if key not in ("name", "model", "objective", "options", "feature_names",
                                        "features", "margin", "prediction"))
    print(f"{name}: {len(X)} rows ({len(X) - len(test)} edge), {len(trees)} trees, "
          f"{cat_nodes} categorical nodes in {sum(t['num_cat'] > 0 for t in trees)} trees "
          f"(up to {widest} categories in one, largest category {largest}), "
          f"numerical missing types {dict(missing)}, "
          f"{sum(math.isinf(n['threshold']) for n in split_nodes if n['decision_type'] == '<=')}"
          f" infinite thresholds, '{objective}'{', average_output' if rf else ''}"
          f", rows where dropping |x| <= 1e-35 matters: {zeroed}{extra_text}")


def zero_missing_conflicts(model):
    """Numerical nodes with missing_type Zero whose default side is not the side 0.0 takes."""
    count = 0
    for tree in model["tree_info"]:
        for node, _ in nodes(tree):
            if node["decision_type"] == "<=" and node["missing_type"] == "Zero":
                count += node["default_left"] != (0.0 <= node["threshold"])
    return {"zero_missing_conflicts": count}


def main():
    os.makedirs(MODELS, exist_ok=True)
    rng = np.random.default_rng(20261203)
    _, y, _, train_idx, train, test = uci_split(rng, ROWS)
    label = y[train_idx]
    tree = {"num_leaves": 15, "learning_rate": 0.2, "min_data_in_leaf": 20}

    # Training without NaN: most splits have missing_type None, NaN is scored as 0.0.
    lgb_case("uci_binary", {"objective": "binary", **tree}, train, label, test, 30)
    nan_train = train.mask(rng.random(train.shape) < 0.05)
    lgb_case("uci_binary_nan_train", {"objective": "binary", **tree}, nan_train, label, test, 30)
    lgb_case("uci_regression", {"objective": "regression", "num_leaves": 31,
                                "learning_rate": 0.1},
             train, np.log1p(train["LIMIT_BAL"].to_numpy()) / 10 + label, test, 25)
    # Batch columns in reverse order: binding is by name.
    lgb_case("uci_binary_shuffled", {"objective": "binary", "num_leaves": 20,
                                     "learning_rate": 0.3},
             nan_train, label, test, 20, batch_order=list(reversed(test.columns)))
    lgb_case("uci_categorical", {"objective": "binary", "num_leaves": 15, "learning_rate": 0.2,
                                 "min_data_per_group": 5, "cat_smooth": 1.0, "cat_l2": 1.0,
                                 "max_cat_to_onehot": 3, "min_data_in_leaf": 10},
             train, label, test, 40, categorical=["SEX", "EDUCATION", "MARRIAGE"])
    lgb_case("uci_iteration_range", {"objective": "binary", "num_leaves": 20,
                                     "learning_rate": 0.25}, nan_train, label, test, 30,
             options={"iteration_begin": 5, "iteration_end": 20}, predict_range=(5, 15))

    cat = {"num_leaves": 15, "learning_rate": 0.2, "min_data_per_group": 10, "cat_smooth": 1.0,
           "max_cat_to_onehot": 4}
    frame, label = synthetic(rng, 6000, 4)
    lgb_case("syn_multiclass", {"objective": "multiclass", "num_class": 4, **cat},
             frame.iloc[ROWS:], label[ROWS:], frame.iloc[:ROWS], 20)
    frame, label = synthetic(rng, 6000, 3)
    lgb_case("syn_multiclassova", {"objective": "multiclassova", "num_class": 3, **cat},
             frame.iloc[ROWS:], label[ROWS:], frame.iloc[:ROWS], 20)
    frame, score = synthetic(rng, 6000, None)
    lgb_case("syn_cross_entropy", {"objective": "cross_entropy", **cat}, frame.iloc[ROWS:],
             1.0 / (1.0 + np.exp(-(score[ROWS:] - 0.8))), frame.iloc[:ROWS], 30)
    lgb_case("syn_rf", {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.8,
                        "bagging_freq": 1, "feature_fraction": 0.8, **cat},
             frame.iloc[ROWS:], (score[ROWS:] > 0.8).astype(int), frame.iloc[:ROWS], 20)

    frame, score = synthetic(rng, 6000, None)
    for c in ("num0", "num2", "num4", "num5"):
        frame.loc[rng.random(len(frame)) < 0.3, c] = 0.0
    label = (score + 1.5 * (frame["num2"] == 0) - 1.0 * (frame["num4"] == 0) > 0.8).astype(int)
    lgb_case("syn_zero_as_missing", {"objective": "binary", "zero_as_missing": True, **cat},
             frame.iloc[ROWS:], label[ROWS:], frame.iloc[:ROWS], 30, extra=zero_missing_conflicts)

    # dart rescales the dropped trees while training; the saved leaves already hold the result.
    frame, score = synthetic(rng, 6000, None)
    lgb_case("syn_dart", {"objective": "binary", "boosting": "dart", "drop_rate": 0.3,
                          "skip_drop": 0.0, **cat},
             frame.iloc[ROWS:], (score[ROWS:] > 0.8).astype(int), frame.iloc[:ROWS], 25)

    # Exp-link objectives on UCI targets: months with a payment delay (a count), the credit limit
    # (positive) and the first bill clipped at 0 (zeros and a long tail).
    pay = [c for c in train.columns if c.startswith("PAY_") and not c.startswith("PAY_AMT")]
    delays = (train[pay] > 0).sum(axis=1).to_numpy()
    lgb_case("uci_poisson", {"objective": "poisson", **tree}, train, delays, test, 25)
    lgb_case("uci_gamma", {"objective": "gamma", **tree}, nan_train,
             train["LIMIT_BAL"].to_numpy() / 1e5, test, 25)
    lgb_case("uci_tweedie", {"objective": "tweedie", "tweedie_variance_power": 1.4, **tree},
             train, np.clip(train["BILL_AMT1"].to_numpy(), 0, None) / 1e4, test, 25)

    # Ranking (raw scores, identity): queries of 100 consecutive clients, relevance = months of
    # payment delay of the last bill (0..3).
    relevance = np.clip(train["PAY_0"].to_numpy(), 0, 3).astype(int)
    queries = [100] * (len(train) // 100) + ([len(train) % 100] if len(train) % 100 else [])
    for objective in ("lambdarank", "rank_xendcg"):
        lgb_case("uci_" + objective, {"objective": objective, **tree}, train, relevance, test, 20,
                 group=queries)

    # The other identity objectives, on the regression case's target.
    target = np.log1p(train["LIMIT_BAL"].to_numpy()) / 10 + y[train_idx]
    for objective in ("regression_l1", "huber", "fair", "quantile", "mape"):
        lgb_case("uci_" + objective, {"objective": objective, **tree}, train, target, test, 15)

    with open(GOLDEN, "w") as f:
        json.dump({"peer": {"lightgbm": lgb.__version__, "numpy": np.__version__,
                            "pandas": pd.__version__,
                            "python": ".".join(map(str, sys.version_info[:3]))},
                   "cases": cases}, f, separators=(",", ":"), allow_nan=False)
    total = sum(os.path.getsize(os.path.join(MODELS, m)) for m in os.listdir(MODELS)
                if m.startswith("lgb_") and m.endswith(".txt")) + os.path.getsize(GOLDEN)
    print(f"{len(cases)} cases, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
