#!/usr/bin/env python3
"""The malformed-model corpus: each *.json / *.txt here is a small valid model with one defect,
and expected.json maps each file to a fragment its ModelError message must contain.

    python3 tests/models/malformed/make_malformed.py    # pip-installs xgboost-cpu, lightgbm

The valid bases are a 3-tree XGBoost model with a categorical feature (base_xgb.json here, made
by this script, and the same model in XGBoost's binary format, base_xgb.ubj), a 3-tree LightGBM
model with a categorical feature (base_lgb.txt, likewise) and tests/models/linear_uci_scorecard.json.
"""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "bench"))
from peer_common import ensure  # noqa: E402


def base_xgb():
    np, pd, xgb = ensure("numpy"), ensure("pandas"), ensure("xgboost-cpu", "xgboost")
    rng = np.random.default_rng(5)
    n = 500
    frame = pd.DataFrame({"a": rng.standard_normal(n), "b": rng.standard_normal(n),
                          "c": pd.Categorical(rng.integers(0, 6, n))})
    label = (frame["a"] + np.isin(frame["c"].cat.codes, [1, 3]) > 0.5).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "max_cat_to_onehot": 1,
                         "nthread": 1, "seed": 1},
                        xgb.DMatrix(frame, label, enable_categorical=True), 3)
    return json.loads(booster.save_raw("json")), bytes(booster.save_raw("ubj"))


def base_lgb():
    np, lgb = ensure("numpy"), ensure("lightgbm")
    rng = np.random.default_rng(6)
    n = 2000
    x = np.column_stack([rng.standard_normal(n), rng.standard_normal(n),
                         rng.integers(0, 6, n).astype(float)])
    x[rng.random(n) < 0.1, 0] = np.nan
    label = (np.nan_to_num(x[:, 0]) + np.isin(x[:, 2], [1, 3]) > 0.5).astype(int)
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "min_data_per_group": 5,
                         "cat_smooth": 1, "max_cat_to_onehot": 1, "num_threads": 1, "seed": 1,
                         "verbose": -1},
                        lgb.Dataset(x, label, feature_name=["a", "b", "c"],
                                    categorical_feature=[2]), 3)
    return booster.model_to_string()


def tree_block(text, tree):
    """(start, end) of the lines of `Tree=tree` in LightGBM model text."""
    start = text.index(f"Tree={tree}\n")
    end = text.find("\n\n", start)
    return start, end


def edit_line(text, key, edit, tree=None):
    """`key=value` replaced by `key=edit(value)` in the header (tree None) or in one tree."""
    start, end = (0, text.index("Tree=0\n")) if tree is None else tree_block(text, tree)
    at = text.index(f"\n{key}=", start - 1 if start else 0) + 1
    assert at < end, key
    eol = text.index("\n", at)
    value = text[at + len(key) + 1:eol]
    return text[:at] + f"{key}={edit(value)}" + text[eol:]


def edit_entry(index, value):
    """An edit for edit_line: entry `index` of a space-separated array set to `value`."""
    def edit(text):
        entries = text.split(" ")
        entries[index] = value
        return " ".join(entries)
    return edit


def main():
    base, base_ubj = base_xgb()
    with open(os.path.join(HERE, "base_xgb.json"), "w") as f:
        json.dump(base, f)
    with open(os.path.join(HERE, "base_xgb.ubj"), "wb") as f:
        f.write(base_ubj)
    trees_of = lambda m: m["learner"]["gradient_booster"]["model"]["trees"]
    cat_tree = next(i for i, t in enumerate(trees_of(base)) if t["categories_nodes"])
    with open(os.path.join(HERE, "..", "linear_uci_scorecard.json")) as f:
        linear = json.load(f)

    cases = {}

    def text(name, body, expect):
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            f.write(body)
        cases[name + ".json"] = expect

    def binary(name, body, expect):
        with open(os.path.join(HERE, name + ".ubj"), "wb") as f:
            f.write(body)
        cases[name + ".ubj"] = expect

    # UBJSON: a cut file, and a typed array declaring 2^40 values (the first tree's
    # split_conditions: '[', '$', 'd', '#', 'L', then a big-endian int64 count).
    binary("ubj_truncated", base_ubj[:len(base_ubj) // 2], "not valid UBJSON")
    count_at = base_ubj.index(b"#L", base_ubj.index(b"split_conditions")) + 2
    binary("ubj_count_huge",
           base_ubj[:count_at] + (1 << 40).to_bytes(8, "big") + base_ubj[count_at + 8:],
           "not valid UBJSON")
    # Arrays of nulls take no bytes per element, so their count alone would build 2^40 values;
    # and nlohmann's UBJSON reader recurses once per nesting level.
    binary("ubj_null_array_huge", b"{i\x01a[$Z#L" + (1 << 40).to_bytes(8, "big") + b"}",
           "a container declares 1099511627776 elements in a file of 18 bytes")
    binary("ubj_deeply_nested", b"{i\x01a" + b"[" * 1000 + b"]" * 1000 + b"}",
           "nested more than 64 levels deep")

    def xgb_case(name, expect, edit, tree=0):
        m = copy.deepcopy(base)
        edit(m, trees_of(m)[tree], m["learner"])
        text(name, json.dumps(m), expect)

    def linear_case(name, expect, edit, raw=lambda body: body):
        m = copy.deepcopy(linear)
        edit(m)
        text(name, raw(json.dumps(m)), expect)

    def setter(key, value):
        return lambda m, t, l: t.__setitem__(key, value)

    def set_at(key, index, value):
        return lambda m, t, l: t[key].__setitem__(index, value)

    full = json.dumps(base)
    text("truncated", full[: len(full) // 2], "not valid JSON")
    text("empty", "", "not valid JSON")
    text("array_root", "[1, 2, 3]", "not a JSON object")
    text("unknown_format", '{"model": {}}', "unknown model format")
    text("deeply_nested", "[" * 20000 + "]" * 20000, "not a JSON object")
    xgb_case("child_out_of_range", "out of range", set_at("left_children", 0, 99))
    xgb_case("child_negative", "out of range", set_at("right_children", 0, -7))
    xgb_case("one_child_missing", "out of range", set_at("right_children", 0, -1))
    xgb_case("cycle_to_root", "reached twice", set_at("left_children", 1, 0))
    xgb_case("node_reached_twice", "reached twice",
             lambda m, t, l: t["right_children"].__setitem__(0, t["left_children"][0]))
    xgb_case("child_is_float", "not an integer", set_at("left_children", 0, 1.5))
    xgb_case("child_is_boolean", "not an integer", set_at("left_children", 0, True))
    xgb_case("feature_out_of_range", "split feature 3", set_at("split_indices", 0, 3))
    xgb_case("feature_negative", "split feature -1", set_at("split_indices", 0, -1))
    xgb_case("threshold_inf", "threshold is not finite", set_at("split_conditions", 0, 1e39))
    xgb_case("leaf_inf", "leaf value is not finite",
             lambda m, t, l: t["split_conditions"].__setitem__(t["left_children"].index(-1), 1e300))
    xgb_case("threshold_string", "threshold is not a number",
             set_at("split_conditions", 0, "0.5"))
    xgb_case("left_children_short", "left_children has",
             lambda m, t, l: t["left_children"].pop())
    xgb_case("split_conditions_long", "split_conditions has",
             lambda m, t, l: t["split_conditions"].append(0.0))
    xgb_case("num_nodes_huge", "num_nodes = 1000000000000",
             lambda m, t, l: t["tree_param"].__setitem__("num_nodes", "1000000000000"))
    xgb_case("num_nodes_text", "is not an integer",
             lambda m, t, l: t["tree_param"].__setitem__("num_nodes", "seven"))
    xgb_case("num_nodes_zero", "num_nodes = 0",
             lambda m, t, l: t["tree_param"].__setitem__("num_nodes", "0"))
    xgb_case("no_tree_param", "has no \"tree_param\"", lambda m, t, l: t.pop("tree_param"))
    xgb_case("no_split_indices", "has no \"split_indices\"", lambda m, t, l: t.pop("split_indices"))
    xgb_case("left_children_string", "left_children is not an array", setter("left_children", "1,2"))
    xgb_case("default_left_two", "default_left is neither", set_at("default_left", 0, 2))
    xgb_case("split_type_five", "split type 5", set_at("split_type", 0, 5))
    xgb_case("categorical_without_set", "without an entry in categories_nodes",
             lambda m, t, l: t["split_type"].__setitem__(0, 1) if not t["categories_nodes"]
             or t["categories_nodes"][0] != 0 else t["categories_nodes"].__setitem__(0, 2))
    xgb_case("category_segment_out_of_range", "is outside categories",
             lambda m, t, l: t["categories_segments"].__setitem__(0, 1000), tree=cat_tree)
    xgb_case("category_negative", "category -3",
             lambda m, t, l: t["categories"].__setitem__(0, -3), tree=cat_tree)
    xgb_case("category_huge", "category 16777216",
             lambda m, t, l: t["categories"].__setitem__(0, 1 << 24), tree=cat_tree)
    xgb_case("categories_sizes_short", "categories_sizes has",
             lambda m, t, l: t["categories_sizes"].pop(), tree=cat_tree)

    def param(key, value):
        return lambda m, t, l: l["learner_model_param"].__setitem__(key, value)

    xgb_case("base_score_text", "is not a number", param("base_score", "abc"))
    xgb_case("base_score_bracket", "is not a list of numbers", param("base_score", "[5E-1"))
    xgb_case("base_score_not_probability", "is not a probability", param("base_score", "1.5"))
    xgb_case("base_score_count", "2 values for 1 outputs", param("base_score", "[0.1,0.2]"))
    xgb_case("base_score_number", "base_score is not a string", param("base_score", 0.5))
    xgb_case("num_class_for_binary", "does not fit objective", param("num_class", "3"))
    xgb_case("base_score_hex", "is not a number", param("base_score", "0x1p-2"))
    xgb_case("softprob_one_class", "needs num_class in [2, 65536]",
             lambda m, t, l: l["objective"].__setitem__("name", "multi:softprob"))
    xgb_case("tree_info_class", "is not a class",
             lambda m, t, l: m["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(1, 1))
    xgb_case("objective_unsupported", "custom:my_loss\" is not supported",
             lambda m, t, l: l["objective"].__setitem__("name", "custom:my_loss"))
    xgb_case("booster_gblinear", "booster \"gblinear\" is not supported",
             lambda m, t, l: l["gradient_booster"].__setitem__("name", "gblinear"))
    xgb_case("dart_without_weights", "has no \"weight_drop\"",
             lambda m, t, l: l.__setitem__("gradient_booster", {"name": "dart", "gbtree": l["gradient_booster"]}))
    xgb_case("multi_output_tree", "multi-output trees",
             lambda m, t, l: t["tree_param"].__setitem__("size_leaf_vector", "3"))
    xgb_case("num_target_zero", "num_target = 0 is out of range", param("num_target", "0"))

    def classes_and_targets(m, t, l):
        l["objective"]["name"] = "multi:softprob"
        l["learner_model_param"].update(num_class="3", num_target="2")

    xgb_case("num_target_with_classes", "several targets of several classes",
             classes_and_targets)
    xgb_case("num_feature_zero", "num_feature = 0", param("num_feature", "0"))

    def many_features_no_names(m, t, l):  # without names, one "fN" would be made per feature
        l["learner_model_param"]["num_feature"] = str((1 << 28) - 1)
        del l["feature_names"], l["feature_types"]

    xgb_case("num_feature_huge", "is out of range [1, 16777216]", many_features_no_names)

    def many_classes(m, t, l):
        l["objective"]["name"] = "multi:softprob"
        l["learner_model_param"]["num_class"] = str(1 << 20)

    xgb_case("num_class_huge", "needs num_class in [2, 65536]", many_classes)
    xgb_case("num_trees_mismatch", "trees has 3 entries, expected 4",
             lambda m, t, l: l["gradient_booster"]["model"]["gbtree_model_param"].__setitem__("num_trees", "4"))
    xgb_case("tree_info_short", "tree_info has 2 entries",
             lambda m, t, l: l["gradient_booster"]["model"]["tree_info"].pop())
    xgb_case("indptr_wrong_end", "iteration_indptr",
             lambda m, t, l: l["gradient_booster"]["model"].__setitem__("iteration_indptr", [0, 1, 2]))
    xgb_case("feature_names_count", "feature_names has 2 names",
             lambda m, t, l: l.__setitem__("feature_names", ["a", "b"]))
    xgb_case("feature_names_duplicate", "names \"a\" twice",
             lambda m, t, l: l.__setitem__("feature_names", ["a", "a", "c"]))
    xgb_case("objective_missing", "has no \"objective\"", lambda m, t, l: l.pop("objective"))

    linear_case("linear_coefficients_short", "coefficients has 22 entries",
                lambda m: m["coefficients"].pop())
    linear_case("linear_scale_zero", "scale[2] is not positive",
                lambda m: m["standardize"]["scale"].__setitem__(2, 0.0))
    linear_case("linear_unknown_link", "link \"probit\" is unknown",
                lambda m: m.__setitem__("link", "probit"))
    linear_case("linear_no_intercepts", "has no \"intercepts\"", lambda m: m.pop("intercepts"))
    linear_case("linear_coefficient_inf", "number overflow",
                lambda m: m["coefficients"].__setitem__(0, 12345.5),
                raw=lambda body: body.replace("12345.5", "1e400"))
    linear_case("linear_base_odds_negative", "base_odds is not positive",
                lambda m: m["scorecard"].__setitem__("base_odds", -2))
    linear_case("linear_version", "version 2 is unknown", lambda m: m.__setitem__("version", 2))
    linear_case("linear_softmax_one_class", "softmax needs",
                lambda m: m.__setitem__("link", "softmax"))

    lgb_base = base_lgb()
    with open(os.path.join(HERE, "base_lgb.txt"), "w") as f:
        f.write(lgb_base)
    cat_lgb = next(t for t in range(3)
                   if "num_cat=0" not in lgb_base[slice(*tree_block(lgb_base, t))])

    def lgb_case(name, expect, edit):
        body = edit(lgb_base)
        assert body != lgb_base, name
        with open(os.path.join(HERE, name + ".txt"), "w") as f:
            f.write(body)
        cases[name + ".txt"] = expect

    def tree_edit(key, edit, tree=0):
        return lambda text: edit_line(text, key, edit, tree)

    def set_header(key, value):
        return lambda text: edit_line(text, key, lambda _: value)

    def drop_line(key):
        """The first `key=...` line removed."""
        def edit(text):
            at = text.index(f"{key}=")
            return text[:at] + text[text.index("\n", at) + 1:]
        return edit

    lgb_case("lgb_truncated", "no \"end of trees\"", lambda t: t[:t.index("Tree=1\n") + 40])
    lgb_case("lgb_child_out_of_range", "child 99 is out of range",
             tree_edit("left_child", edit_entry(0, "99")))
    lgb_case("lgb_cycle", "is reached twice", tree_edit("right_child", edit_entry(1, "0")))
    lgb_case("lgb_leaf_out_of_range", "leaf 98 is out of range",
             tree_edit("right_child", edit_entry(0, "-99")))
    lgb_case("lgb_leaf_twice", "leaf 0 is reached twice",
             lambda t: edit_line(edit_line(t, "left_child", edit_entry(0, "-1"), 0),
                                 "right_child", edit_entry(0, "-1"), 0))
    lgb_case("lgb_feature_out_of_range", "split feature 7 is out of range",
             tree_edit("split_feature", edit_entry(0, "7")))
    lgb_case("lgb_feature_negative", "split feature -1 is out of range",
             tree_edit("split_feature", edit_entry(0, "-1")))
    lgb_case("lgb_threshold_nan", "threshold is NaN", tree_edit("threshold", edit_entry(0, "nan")))
    lgb_case("lgb_threshold_text", "is not a number",
             tree_edit("threshold", edit_entry(0, "1.5x")))
    lgb_case("lgb_threshold_long", "threshold has 4 entries, expected 3",
             tree_edit("threshold", lambda v: v + " 0.5"))
    lgb_case("lgb_leaf_value_short", "leaf_value has 3 entries, expected 4",
             tree_edit("leaf_value", lambda v: v.rsplit(" ", 1)[0]))
    lgb_case("lgb_leaf_value_missing", "has no \"leaf_value\"",
             drop_line("leaf_value"))
    lgb_case("lgb_leaf_value_huge", "value is not finite in float32",
             tree_edit("leaf_value", edit_entry(0, "1e300")))
    lgb_case("lgb_num_leaves_text", "num_leaves = \"four\" is not an integer",
             tree_edit("num_leaves", lambda v: "four"))
    lgb_case("lgb_num_leaves_huge", "num_leaves = 999999999999 is out of range",
             tree_edit("num_leaves", lambda v: "999999999999"))
    lgb_case("lgb_num_leaves_declared_large", "leaf_value has 4 entries, expected 1000000",
             tree_edit("num_leaves", lambda v: "1000000"))
    lgb_case("lgb_decision_type", "decision_type 12 is not valid",
             tree_edit("decision_type", edit_entry(0, "12")))
    numeric_tree = next(t for t in range(3) if t != cat_lgb)
    lgb_case("lgb_categorical_index", "is not a category set of this tree",
             tree_edit("decision_type", edit_entry(0, "1"), numeric_tree))
    lgb_case("lgb_cat_boundaries", "cat_boundaries is not an increasing list from 0",
             tree_edit("cat_boundaries", lambda v: "1 " + v.split(" ", 1)[1], cat_lgb))
    lgb_case("lgb_cat_threshold_short", "cat_threshold has 0 entries",
             tree_edit("cat_threshold", lambda v: "", cat_lgb))
    lgb_case("lgb_linear_tree", "linear trees (linear_tree) are not supported",
             tree_edit("is_linear", lambda v: "1"))
    lgb_case("lgb_objective_unsupported",
             "objective \"cross_entropy_lambda\" is not supported",
             set_header("objective", "cross_entropy_lambda"))
    lgb_case("lgb_sigmoid", "sigmoid other than 1 is not supported",
             set_header("objective", "binary sigmoid:2"))
    lgb_case("lgb_reg_sqrt", "(reg_sqrt) is not supported",
             set_header("objective", "regression sqrt"))
    lgb_case("lgb_multiclass_one_class", "multiclass needs num_class in [2, 65536]",
             set_header("objective", "multiclass num_class:1"))
    lgb_case("lgb_trees_per_iteration", "num_tree_per_iteration = 2 does not fit",
             set_header("num_tree_per_iteration", "2"))
    lgb_case("lgb_not_whole_iterations", "3 trees are not whole iterations of 2 trees",
             lambda t: set_header("objective", "multiclass num_class:2")(
                 set_header("num_tree_per_iteration", "2")(set_header("num_class", "2")(t))))
    lgb_case("lgb_version", "model version \"v9\" is not supported",
             set_header("version", "v9"))
    lgb_case("lgb_tree_numbering", "where Tree=1 was expected", lambda t: t.replace("Tree=1\n", "Tree=5\n"))
    lgb_case("lgb_feature_names_count", "feature_names has 2 names",
             set_header("feature_names", "a b"))
    lgb_case("lgb_feature_names_duplicate", "names \"a\" twice",
             set_header("feature_names", "a a c"))
    lgb_case("lgb_no_objective", "the header has no \"objective\"",
             drop_line("objective"))
    lgb_case("lgb_bare_line_in_tree", "is not key=value",
             lambda t: t.replace("Tree=0\n", "Tree=0\nsplit_feature\n"))
    # LightGBM locates trees by tree_sizes: fewer sizes drop trees silently, a wrong one aborts it.
    lgb_case("lgb_tree_sizes_fewer", "tree_sizes lists 2 sizes for 3 trees",
             lambda t: edit_line(t, "tree_sizes", lambda v: " ".join(v.split()[:-1])))
    lgb_case("lgb_tree_sizes_wrong", "tree_sizes puts tree 1 at byte",
             set_header("tree_sizes", "5 5 5"))

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
    print(f"{len(cases)} malformed models")


if __name__ == "__main__":
    main()
