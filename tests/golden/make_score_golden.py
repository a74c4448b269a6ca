#!/usr/bin/env python3
"""Golden files for batch scoring: XGBoost models and their Booster.predict output, linear models
and scikit-learn's / NumPy's output on the same rows.

    python3 tests/golden/make_score_golden.py     # from the repository root

Writes tests/models/xgb_*.json and tests/models/linear_*.json (the models) and
tests/golden/score_xgboost.json (per case: the model file, the options, the input rows as float32
values with NaN as null, and the peer's outputs). pip-installs xgboost-cpu and scikit-learn when
they are missing.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "tests", "models")
GOLDEN = os.path.join(ROOT, "tests", "golden", "score_xgboost.json")
ROWS = 300
sys.path.insert(0, os.path.join(ROOT, "bench"))
from peer_common import ensure  # noqa: E402

np = ensure("numpy")
pd = ensure("pandas")
from score_data import as_codes, synthetic, uci_split, values  # noqa: E402
xgb = ensure("xgboost-cpu", "xgboost")
sklearn = ensure("scikit-learn", "sklearn")
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


cases = []


def xgb_case(name, params, frame, label, test, rounds, options=None, predict_range=None,
             batch_order=None, dmatrix=None, ubj=False, **train_kwargs):
    """`dmatrix`: more DMatrix arguments (qid for ranking, label bounds for survival:aft). `ubj`:
    the model is also saved in XGBoost's binary format (xgb_NAME.ubj), a second case with the
    same expected numbers."""
    dtrain = xgb.DMatrix(frame, label, enable_categorical=True, **(dmatrix or {}))
    evals = train_kwargs.pop("evals", None)
    if evals is not None:
        evals = [(xgb.DMatrix(evals[0], evals[1], enable_categorical=True), "valid")]
        train_kwargs["evals"] = evals
        train_kwargs["verbose_eval"] = False
    booster = xgb.train({"nthread": 2, "seed": 7, **params}, dtrain, rounds, **train_kwargs)
    path = os.path.join(MODELS, f"xgb_{name}.json")
    booster.save_model(path)
    dtest = xgb.DMatrix(test, enable_categorical=True)
    if predict_range == "best":
        predict_range = (0, booster.best_iteration + 1)
    kwargs = {"iteration_range": predict_range} if predict_range else {}
    margin = booster.predict(dtest, output_margin=True, **kwargs)
    prediction = booster.predict(dtest, **kwargs)
    batch = as_codes(test)
    if batch_order is not None:
        batch = batch[batch_order]
    case = {
        "name": name, "model": os.path.relpath(path, ROOT), "objective": params["objective"],
        "options": options or {}, "feature_names": list(batch.columns),
        "features": values(batch.to_numpy()), "margin": values(margin),
        "prediction": values(prediction),
    }
    cases.append(case)
    if ubj:
        path = os.path.join(MODELS, f"xgb_{name}.ubj")
        booster.save_model(path)
        cases.append({**case, "name": name + "_ubj", "model": os.path.relpath(path, ROOT)})
    print(f"{name}: {booster.num_boosted_rounds()} rounds, margin[0] = {margin.ravel()[0]}")


def linear_case(name, model, frame, margin, probability, points=None):
    path = os.path.join(MODELS, f"linear_{name}.json")
    with open(path, "w") as f:
        json.dump(model, f, indent=1)
    case = {"name": name, "model": os.path.relpath(path, ROOT), "objective": "linear:" + model["link"],
            "options": {}, "feature_names": list(frame.columns),
            "features": values(frame.to_numpy()), "margin": values(margin),
            "prediction": values(probability)}
    if points is not None:
        case["points"] = values(points)
    cases.append(case)
    print(f"{name}: margin[0] = {np.ravel(margin)[0]}")


def main():
    os.makedirs(MODELS, exist_ok=True)
    rng = np.random.default_rng(20261127)
    X, y, order, train_idx, train, test = uci_split(rng, ROWS)
    depth = {"max_depth": 5, "eta": 0.3}

    xgb_case("uci_binary_logistic", {"objective": "binary:logistic", "base_score": 0.3, **depth},
             train, y[train_idx], test, 30, ubj=True)
    # Batch columns in reverse order: binding is by name.
    shuffled = list(reversed(test.columns))
    xgb_case("uci_binary_logitraw", {"objective": "binary:logitraw", **depth}, train,
             y[train_idx], test, 25, batch_order=shuffled)
    xgb_case("uci_reg_squarederror", {"objective": "reg:squarederror", "base_score": 1.7, **depth},
             train, np.log1p(train["LIMIT_BAL"].to_numpy()) / 10 + y[train_idx], test, 25)
    xgb_case("uci_reg_logistic", {"objective": "reg:logistic", "max_depth": 4},
             train, y[train_idx], test, 20)
    xgb_case("uci_dart", {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.3,
                          "skip_drop": 0.0, "max_depth": 4}, train, y[train_idx], test, 20, ubj=True)
    valid = X.iloc[order[ROWS:ROWS + 3000]]
    # Early stopping: the golden is scikit-learn's convention, rounds [0, best_iteration].
    xgb_case("uci_best_iteration", {"objective": "binary:logistic", "eta": 0.5, "max_depth": 6},
             train.iloc[3000:], y[train_idx][3000:], test, 60, options={"use_best_iteration": True},
             evals=(valid, y[order[ROWS:ROWS + 3000]]), early_stopping_rounds=5,
             predict_range="best")
    xgb_case("uci_iteration_range", {"objective": "binary:logistic", "max_depth": 4},
             train, y[train_idx], test, 20, options={"iteration_begin": 3, "iteration_end": 12},
             predict_range=(3, 12))
    xgb_case("uci_parallel_tree", {"objective": "binary:logistic", "num_parallel_tree": 3,
                                   "subsample": 0.8, "colsample_bynode": 0.8, "max_depth": 4},
             train, y[train_idx], test, 8)
    # Exp-link objectives: months with a payment delay (a count), the credit limit (positive),
    # the first bill clipped at 0 (zeros and a long tail); base_score is a mean, margin log(mean).
    pay = [c for c in train.columns if c.startswith("PAY_") and not c.startswith("PAY_AMT")]
    xgb_case("uci_count_poisson", {"objective": "count:poisson", "max_depth": 4},
             train, (train[pay] > 0).sum(axis=1).to_numpy(), test, 20)
    xgb_case("uci_reg_gamma", {"objective": "reg:gamma", "max_depth": 4},
             train, train["LIMIT_BAL"].to_numpy() / 1e5, test, 20)
    xgb_case("uci_reg_tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.4,
                                 "max_depth": 4},
             train, np.clip(train["BILL_AMT1"].to_numpy(), 0, None) / 1e4, test, 20)
    # Time to default for the survival objectives: months 1..24 from AGE, observed for defaulters
    # and right-censored for the others (Cox: a negative time; AFT: an upper bound of +inf).
    months = 1.0 + (train["AGE"].to_numpy() % 24)
    default = y[train_idx] == 1
    xgb_case("uci_survival_cox", {"objective": "survival:cox", "max_depth": 4},
             train, np.where(default, months, -months), test, 20)
    xgb_case("uci_survival_aft", {"objective": "survival:aft", "aft_loss_distribution": "logistic",
                                  "max_depth": 4}, train, None, test, 20,
             dmatrix={"label_lower_bound": months,
                      "label_upper_bound": np.where(default, months, np.inf)})
    # Other regression losses: identity link, base_score a margin (a median or quantile for the
    # absolute and quantile losses).
    limit = train["LIMIT_BAL"].to_numpy() / 1e5
    bill = train["BILL_AMT1"].to_numpy() / 1e4
    for objective in ("reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror"):
        xgb_case("uci_" + objective.replace(":", "_"), {"objective": objective, "max_depth": 4},
                 train, limit, test, 20)
    xgb_case("uci_reg_quantileerror", {"objective": "reg:quantileerror", "quantile_alpha": 0.9,
                                       "max_depth": 4}, train, bill, test, 20)
    # Several targets, one output each (num_target > 1, trees told apart by tree_info): three
    # quantiles, two regression targets, two labels.
    xgb_case("uci_quantiles_three", {"objective": "reg:quantileerror",
                                     "quantile_alpha": [0.1, 0.5, 0.9], "max_depth": 4},
             train, bill, test, 15, ubj=True)
    xgb_case("uci_two_targets", {"objective": "reg:squarederror", "max_depth": 4},
             train, np.stack([limit, bill], axis=1), test, 15)
    xgb_case("uci_two_labels", {"objective": "binary:logistic", "max_depth": 4},
             train, np.stack([y[train_idx], (train["PAY_0"].to_numpy() > 0)], axis=1).astype(float),
             test, 15)
    # Ranking: queries of 100 consecutive clients; relevance = months of payment delay (0..3), or
    # default for the pairwise and MAP losses.
    queries = np.arange(len(train)) // 100
    xgb_case("uci_rank_ndcg", {"objective": "rank:ndcg", "max_depth": 4}, train,
             np.clip(train["PAY_0"].to_numpy(), 0, 3), test, 20, dmatrix={"qid": queries})
    xgb_case("uci_rank_pairwise", {"objective": "rank:pairwise", "max_depth": 4}, train,
             y[train_idx], test, 20, dmatrix={"qid": queries})
    xgb_case("uci_rank_map", {"objective": "rank:map", "max_depth": 4}, train,
             y[train_idx], test, 20, dmatrix={"qid": queries})
    # binary:hinge predicts the class (margin > 0), not a probability.
    xgb_case("uci_binary_hinge", {"objective": "binary:hinge", "max_depth": 4},
             train, y[train_idx], test, 20)

    cat = {"max_cat_to_onehot": 1, "max_depth": 5, "eta": 0.3}
    frame, label = synthetic(rng, 6000, 4)
    test = frame.iloc[:ROWS]
    xgb_case("syn_multi_softprob", {"objective": "multi:softprob", "num_class": 4, **cat},
             frame.iloc[ROWS:], label[ROWS:], test, 10, ubj=True)
    xgb_case("syn_multi_softmax", {"objective": "multi:softmax", "num_class": 4, **cat},
             frame.iloc[ROWS:], label[ROWS:], test, 8)
    frame, score = synthetic(rng, 6000, None)
    test = frame.iloc[:ROWS]
    xgb_case("syn_binary_logistic_cat", {"objective": "binary:logistic", "base_score": 0.65, **cat},
             frame.iloc[ROWS:], (score[ROWS:] > 0.8).astype(int), test, 30)
    xgb_case("syn_reg_squarederror_cat", {"objective": "reg:squarederror", **cat},
             frame.iloc[ROWS:], score[ROWS:], test, 30)

    # Linear models (the UCI table again, in file order): imputation by the mean,
    # standardisation, then the model.
    train, test = X.iloc[ROWS:], X.iloc[:ROWS].mask(rng.random((ROWS, X.shape[1])) < 0.05)
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=2000))
    pipe.fit(train.to_numpy(np.float64), y[ROWS:])
    imputer, scaler, lr = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
    test64 = test.to_numpy(np.float32).astype(np.float64)
    margin = pipe.decision_function(test64)
    card = {"base_points": 600.0, "base_odds": 50.0, "pdo": 20.0}
    factor = card["pdo"] / np.log(2.0)
    points = card["base_points"] - factor * np.log(card["base_odds"]) + factor * margin
    linear_case("uci_scorecard", {
        "format": "driftguard-linear", "version": 1, "feature_names": list(X.columns),
        "link": "logistic", "coefficients": lr.coef_[0].tolist(),
        "intercepts": lr.intercept_.tolist(),
        "standardize": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()},
        "impute": imputer.statistics_.tolist(), "scorecard": card,
    }, test, margin, pipe.predict_proba(test64)[:, 1], points)

    frame, label = synthetic(rng, 4000, 3)
    numeric = frame[[c for c in frame.columns if c.startswith("num")]].fillna(0.0)
    soft = LogisticRegression(max_iter=2000).fit(numeric.iloc[ROWS:].to_numpy(np.float64),
                                                 label[ROWS:])
    test = numeric.iloc[:ROWS]
    linear_case("syn_softmax", {
        "format": "driftguard-linear", "version": 1, "feature_names": list(numeric.columns),
        "link": "softmax", "coefficients": soft.coef_.tolist(), "intercepts": soft.intercept_.tolist(),
    }, test, soft.decision_function(test.to_numpy(np.float64)),
        soft.predict_proba(test.to_numpy(np.float64)))
    reg = LinearRegression().fit(numeric.iloc[ROWS:].to_numpy(np.float64), label[ROWS:] * 1.5)
    test = numeric.iloc[:ROWS].mask(rng.random((ROWS, numeric.shape[1])) < 0.05)
    # reg.predict refuses NaN; NumPy's product keeps it: no imputation, NaN in gives NaN out.
    pred = test.to_numpy(np.float32).astype(np.float64) @ reg.coef_ + reg.intercept_
    linear_case("syn_identity_nan", {
        "format": "driftguard-linear", "version": 1, "feature_names": list(numeric.columns),
        "link": "identity", "coefficients": reg.coef_.tolist(), "intercepts": [float(reg.intercept_)],
    }, test, pred, pred)

    with open(GOLDEN, "w") as f:
        json.dump({"peer": {"xgboost": xgb.__version__, "scikit-learn": sklearn.__version__,
                            "numpy": np.__version__, "pandas": pd.__version__},
                   "cases": cases}, f, separators=(",", ":"))
    total = sum(os.path.getsize(os.path.join(MODELS, m)) for m in os.listdir(MODELS)
                if m.endswith(".json")) + os.path.getsize(GOLDEN)
    print(f"{len(cases)} cases, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
