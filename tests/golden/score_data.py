"""Rows shared by the scoring golden scripts (make_score_golden.py, make_lightgbm_golden.py): the
UCI credit table, a synthetic table with NaNs and pandas categoricals, the batch a driftguard user
scores from it, and the JSON form of float32 rows."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from peer_common import ensure  # noqa: E402

np = ensure("numpy")
pd = ensure("pandas")


def values(array):
    """float32 values as exact decimals (repr of the float64 widening), NaN as null, +-inf as
    "inf"/"-inf"."""
    a = np.asarray(array, dtype=np.float32).astype(np.float64)

    def one(v):
        if np.isnan(v):
            return None
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return float(v)
    return [[one(v) for v in row] for row in a.reshape(len(a), -1)]


def uci():
    frame = pd.read_csv(os.path.join(ROOT, "datasets", "uci_credit_card.csv.gz"))
    features = [c for c in frame.columns if c not in ("ID", "target")]
    return frame[features].astype(np.float32), frame["target"].to_numpy()


def uci_split(rng, test_rows):
    """The UCI table cut at random into `test_rows` test rows, 5% of whose cells are set to NaN
    (missing values take the default side), and training rows. Returns X, y, the row order (test
    rows first), the training indices, the training frame and the test frame."""
    X, y = uci()
    order = rng.permutation(len(X))
    test_idx, train_idx = order[:test_rows], order[test_rows:]
    train, test = X.iloc[train_idx], X.iloc[test_idx].copy()
    test = test.mask(rng.random(test.shape) < 0.05)
    return X, y, order, train_idx, train, test


def synthetic(rng, n, classes):
    """Numeric features with NaNs and two pandas categoricals (8 and 40 categories)."""
    frame = pd.DataFrame({f"num{i}": rng.standard_normal(n).astype(np.float32) for i in range(6)})
    for c in frame.columns[:4]:
        frame.loc[rng.random(n) < 0.15, c] = np.nan
    small = rng.integers(0, 8, n)
    large = rng.integers(0, 40, n)
    frame["cat_small"] = pd.Categorical(small, categories=list(range(8)))
    frame["cat_large"] = pd.Categorical(large, categories=list(range(40)))
    frame.loc[rng.random(n) < 0.1, "cat_small"] = np.nan
    score = (np.nan_to_num(frame["num0"].to_numpy()) + np.isin(small, [1, 4, 6]) * 1.5
             + (large % 7 == 3) * 1.2 - np.nan_to_num(frame["num1"].to_numpy()) ** 2 * 0.3)
    score = score + rng.normal(0, 0.5, n)
    if classes is None:
        return frame, score
    return frame, np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


def as_codes(frame):
    """The batch a driftguard user scores: categoricals as their integer codes, NaN = missing."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            codes = out[c].cat.codes.astype(np.float32)
            out[c] = codes.where(codes >= 0, np.nan)
    return out.astype(np.float32)
