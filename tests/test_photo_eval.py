"""The real-photo evaluation (eval/photo_eval.py, eval/photo_set.py, tools/eval_photos.py).

Scoring rules on made-up keypoints against hand-computed answers, and the tool end to end on
rendered people (tests/anny_scenes.py; no real photo in tests) with annotations written here
from the rendered body's true keypoints: one whole, one cut at the hips, and a grey photo.
"""
import json

import cv2
import numpy as np
import pytest

from eval import demo, photo_eval, photo_set
from pose_era import constants
from tests.anny_scenes import scenes
from tests.tiny_pose_workdir import make_workdir
from tools import eval_photos

NAMES = constants.COCO17_NAMES


def _joints(points, fill=(-1000.0, -1000.0)):
    """(17, 2) projected joints: the named ones at the given pixels, the others far away."""
    out = np.tile(np.array(fill, np.float64), (17, 1))
    for name, uv in points.items():
        out[NAMES.index(name)] = uv
    return out


def _person(keypoints, box, outside=(), **flags):
    return {"name": "p", "box": list(box), "keypoints": keypoints, "outside": list(outside),
            **flags}


def test_tolerance_is_the_larger_of_shoulder_width_and_height_rules():
    shoulders = {"left_shoulder": [200, 100], "right_shoulder": [100, 100]}
    assert photo_eval.tolerance(_person(shoulders, [0, 0, 300, 300])) == pytest.approx(35.0)
    assert photo_eval.tolerance(_person(shoulders, [0, 0, 300, 500])) == pytest.approx(40.0)
    one = {"left_shoulder": [200, 100], "nose": [150, 50]}          # no width: 8 % of 300
    assert photo_eval.tolerance(_person(one, [0, 0, 300, 300])) == pytest.approx(24.0)


def test_score_counts_joints_within_the_tolerance_and_outside_joints_beyond_the_border():
    kp = {"left_shoulder": [200, 100], "right_shoulder": [100, 100], "nose": [150, 50],
          "left_wrist": [220, 200]}
    person = _person(kp, [0, 0, 300, 300], outside=["left_ankle", "right_ankle", "left_knee"])
    joints = _joints({"left_shoulder": [200, 134],     # 34 px off: right (tolerance 35)
                      "right_shoulder": [100, 100],    # exact
                      "nose": [150, 86],               # 36 px: wrong
                      "left_wrist": [244, 232],        # 40 px: wrong
                      "left_ankle": [150, 300],        # v = height: beyond the border
                      "right_ankle": [150, 299.5],     # inside
                      "left_knee": [-0.1, 150]})       # beyond the left border
    s = photo_eval.score(person, joints, 300, 300)
    assert (s["right"], s["annotated"], s["outside_ok"], s["outside"]) == (2, 4, 2, 3)
    assert s["errors_px"]["left_wrist"] == 40.0 and s["tolerance_px"] == 35.0
    assert s["outside_in_frame"] == ["right_ankle"]
    assert not s["mirrored"]


def test_left_right_ambiguous_people_take_the_better_of_the_mesh_and_its_mirror():
    kp = {"left_wrist": [10, 10], "right_knee": [50, 90]}
    mirrored = _joints({"right_wrist": [10, 10], "left_knee": [50, 90]})
    strict = photo_eval.score(_person(kp, [0, 0, 100, 100]), mirrored, 100, 100)
    assert strict["right"] == 0
    either = photo_eval.score(_person(kp, [0, 0, 100, 100], lr_ambiguous=True), mirrored,
                              100, 100)
    assert either["right"] == 2 and either["mirrored"]


def test_box_iou_and_greedy_matching():
    assert photo_eval.box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert photo_eval.box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    annotated = [[0, 0, 100, 200], [100, 0, 200, 200], [300, 0, 400, 200]]
    detected = [[110, 0, 200, 200],      # IoU 0.9 with the second
                [-100, -50, 100, 250],   # clipped to [0, 0, 100, 200]: IoU 1 with the first
                [20, 0, 120, 200],       # IoU 80/120 with the first, taken: left unused
                [330, 150, 400, 200]]    # IoU 3500/20000 = 0.175 with the third: too low
    pairs = photo_eval.match(annotated, detected, 400, 200)
    assert [j for j, _ in pairs] == [1, 0, None]
    assert [round(iou, 3) for _, iou in pairs] == [1.0, 0.9, 0.0]


class _StubPipeline:
    """The pipeline's interface with fixed people: K = identity, so a COCO-17 joint (u, v, 1)
    projects to (u, v)."""

    def __init__(self, people):
        self.people = people

    def __call__(self, rgb, all_people=False, fit=True):
        assert all_people
        return self.people


def _stub_person(box, fitted_uv, network_uv, agreement=None, keypoints_uv=None):
    def pred(uv):
        return {"coco17": np.concatenate([uv, np.ones((17, 1))], 1).astype(np.float32)}

    keypoints = None if keypoints_uv is None else pred(keypoints_uv)["coco17"]  # + visibility 1
    person = demo.Person(box, "blazepose", np.zeros(4), np.eye(3, dtype=np.float32),
                         np.eye(3, dtype=np.float32), pred(fitted_uv), keypoints=keypoints,
                         network=pred(network_uv), fit={"reprojection_error_px": 1.0})
    if agreement is not None:
        person.world_agreement_mm = agreement
    return person


def test_evaluate_photo_scores_fit_and_network_and_reports_3d_agreement():
    kp = {"nose": [50, 20], "left_shoulder": [70, 50], "right_shoulder": [30, 50]}
    photo = {"file": "x.png", "people": [_person(kp, [20, 10, 80, 190], ["left_ankle"]),
                                         dict(_person(kp, [300, 10, 380, 190]), name="q")]}
    good = _joints(kp, fill=(50, 500))                         # ankles below the 200 px photo
    bad = _joints({}, fill=(50, 100))
    half = good.copy()
    half[constants.COCO17_NAMES.index("nose")] = (50, 100)   # BlazePose's nose 80 px off
    people = [_stub_person((20, 10, 60, 180), good, bad, agreement=42.0, keypoints_uv=half),
              _stub_person((500, 0, 50, 50), bad, bad)]        # an extra, matched to no one
    summary, records, _ = photo_eval.evaluate_photo(_StubPipeline(people), photo,
                                                    np.zeros((200, 400, 3), np.uint8))
    assert summary == {"file": "x.png", "annotated_people": 2, "detected": 2,
                       "extra_detections": 1}
    first, second = records
    assert first["found"] and first["fit"]["right"] == 3 and first["network"]["right"] == 0
    assert first["fit"]["outside_ok"] == 1 and first["network"]["outside_ok"] == 0
    assert first["keypoints"]["right"] == 2 and first["keypoints"]["outside_ok"] == 1
    assert first["keypoints"]["errors_px"]["nose"] == 80.0
    assert first["world_agreement_mm"] == 42.0 and first["reliable"] is True
    assert not second["found"] and second["fit"] is None and second["keypoints"] is None
    empty = {"file": "cat.png", "people": []}
    cat, _, _ = photo_eval.evaluate_photo(_StubPipeline([]), empty, np.zeros((9, 9, 3)))
    assert cat["no_person_found"] is True
    total = photo_eval.totals([summary, cat], records)
    assert total["fit"]["joints_right"] == 3 and total["fit"]["joints_annotated"] == 6
    assert total["fit"]["fraction"] == 0.5 and total["fit"]["worst_person"] == 0.0
    assert total["keypoints"]["joints_right"] == 2 and total["keypoints"]["outside_ok"] == 1
    assert total["world_agreement_mm"] == 42.0 and total["no_person_found"] == 1
    text = photo_eval.table([summary, cat], records, total)
    assert "NOT FOUND" in text and "no person found" in text and "3/3 100%" in text
    assert "joints BlazePose" in text and "2/3 67%" in text
    assert " 42 " in text and "n/a" in text


def test_annotation_errors_are_one_line(tmp_path):
    def write(doc):
        path = tmp_path / "a.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    ok = {"name": "p", "box": [0, 0, 10, 10], "keypoints": {"nose": [1, 2]}}
    cases = [("{", "not a readable JSON"), ({"photos": []}, "expected"),
             ({"photos": [{"file": "a.png", "people": [dict(ok, box=[5, 0, 1, 10])]}]}, "box"),
             ({"photos": [{"file": "a.png", "people": [dict(ok, keypoints={"toe": [1, 2]})]}]},
              "unknown joint 'toe'"),
             ({"photos": [{"file": "a.png", "people": [dict(ok, outside=["nose"])]}]},
              "both annotated"),
             ({"photos": [{"file": "a.png", "people": []}] * 2}, "listed twice")]
    for doc, message in cases:
        with pytest.raises(photo_set.PhotoSetError, match=message) as info:
            photo_set.load_annotations(write(doc))
        assert "\n" not in str(info.value)
    with pytest.raises(photo_set.PhotoSetError, match="no such annotation file"):
        photo_set.load_annotations(tmp_path / "missing.json")
    (tmp_path / "a.png").write_bytes(b"not the photo")
    with pytest.raises(photo_set.PhotoSetError, match="not the photo that was annotated"):
        photo_set.locate({"file": "a.png", "sha256": "0" * 64}, [tmp_path])
    with pytest.raises(photo_set.PhotoSetError, match="make photos"):
        photo_set.locate({"file": "b.jpg", "fetched": True}, [tmp_path])


def test_the_committed_annotations_are_valid_and_name_their_photos():
    """The set's own file loads, and the committed photos are the annotated ones."""
    photos = photo_set.load_annotations()
    assert sum(len(p["people"]) for p in photos) >= 8 and sum(not p["people"] for p in photos) == 2
    for photo in photos:
        if not photo.get("fetched"):
            assert photo_set.locate(photo, [photo_set.COMMITTED]).is_file()
    assert {p["file"] for p in photos if p.get("fetched")} == \
        set(photo_set.MEMBERS) | set(photo_set.DERIVED)


# ---- the tool end to end on rendered people ----

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("photos"))[0]


def _annotation(kp2d, height, width, cut=None):
    """A person annotated from the rendered body's true COCO-17 keypoints (visible ones), in a
    photo cut to its first `cut` rows: joints below the cut are outside."""
    seen = {n: [float(u), float(v)] for n, (u, v, vis) in zip(NAMES, kp2d)
            if vis == 2 and 0 <= u < width and 0 <= v < (cut or height)}
    outside = [n for n, (u, v, _) in zip(NAMES, kp2d) if cut is not None and v >= cut]
    uv = np.array(list(seen.values()))
    box = [*(uv.min(0) - 15).tolist(), *(uv.max(0) + 15).tolist()]
    return _person(seen, box, outside, name="rendered")


def test_tool_on_rendered_people_a_cut_body_and_an_empty_photo(workdir, tmp_path, capsys):
    ex = scenes()[0]
    kp, rgb = ex["kp2d"], ex["rgb"]
    hips = kp[[NAMES.index("left_hip"), NAMES.index("right_hip")], 1].max()
    cut = int(hips) + 10                                    # the knees and ankles are below it
    cv2.imwrite(str(tmp_path / "whole.png"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "cut.png"), rgb[:cut, :, ::-1])
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((120, 160, 3), 128, np.uint8))
    h, w = rgb.shape[:2]
    doc = {"photos": [{"file": "whole.png", "people": [_annotation(kp, h, w)]},
                      {"file": "cut.png", "people": [_annotation(kp, h, w, cut)]},
                      {"file": "grey.png", "people": []}]}
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    out, sheet = tmp_path / "summary.json", tmp_path / "sheet.png"
    argv = ["--photos", str(tmp_path), "--annotations", str(ann), "--ckpt", str(workdir)]
    assert eval_photos.main(argv + ["--out", str(out), "--sheet", str(sheet)]) == 0
    stdout = capsys.readouterr().out
    assert "grey.png" in stdout and "no person found" in stdout
    summary = json.loads(out.read_text())
    whole, cut_person = summary["people"]
    assert whole["found"] and cut_person["found"] and summary["totals"]["no_person_found"] == 1
    assert cut_person["outside"] >= 4                       # knees and ankles at least
    for rec in (whole, cut_person):
        for mode in photo_eval.MODES:
            assert 0 <= rec[mode]["right"] <= rec["annotated"]
        assert rec["fit"]["right"] >= rec["network"]["right"]    # the fit follows the 2D
    assert whole["fit"]["right"] / whole["annotated"] >= 0.7
    picture = cv2.imread(str(sheet))
    assert picture is not None and picture.shape[0] > photo_eval.SHEET_ROW

    assert eval_photos.main(argv + ["--out", str(out), "--no-fit"]) == 0
    capsys.readouterr()
    summary = json.loads(out.read_text())
    assert summary["totals"]["fit"] is None and summary["people"][0]["network"] is not None


def test_tool_bad_inputs_are_one_line_and_exit_2(workdir, tmp_path, capsys):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"photos": [{"file": "missing.png", "people": []}]}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    cv2.imwrite(str(tmp_path / "ok.png"), np.zeros((20, 20, 3), np.uint8))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"photos": [{"file": "ok.png", "people": []}]}))
    cases = [(["--annotations", str(ann)], "missing.png: not found"),
             (["--annotations", str(broken)], "not a readable JSON"),
             (["--annotations", str(good), "--ckpt", str(tmp_path)], "neither a training")]
    for argv, message in cases:
        assert eval_photos.main(argv + ["--photos", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_pinned_wheel_extracts_checked_members_and_refuses_other_wheels(tmp_path, monkeypatch):
    """pip is replaced by a copy of a wheel made here: members land with their hashes, a
    second call downloads nothing, a wheel or member with another hash is refused."""
    import hashlib
    import subprocess
    import zipfile

    from eval import pinned_wheel

    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/assets/a.jpg", b"photo bytes")
    sha = hashlib.sha256(b"photo bytes").hexdigest()
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        (tmp_path / dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out = tmp_path / "out"
    members = {"a.jpg": ("pkg/assets/a.jpg", sha)}
    pinned_wheel.extract("pkg==1.0", wheel.name, wheel_sha, members, out, log=lambda m: None)
    assert (out / "a.jpg").read_bytes() == b"photo bytes" and len(calls) == 1
    pinned_wheel.extract("pkg==1.0", wheel.name, wheel_sha, members, out, log=lambda m: None)
    assert len(calls) == 1
    with pytest.raises(RuntimeError, match="refusing"):
        pinned_wheel.extract("pkg==1.0", wheel.name, "0" * 64, members, tmp_path / "o2",
                             log=lambda m: None)
    with pytest.raises(RuntimeError, match="unexpected SHA-256"):
        pinned_wheel.extract("pkg==1.0", wheel.name, wheel_sha,
                             {"a.jpg": ("pkg/assets/a.jpg", "0" * 64)}, tmp_path / "o3",
                             log=lambda m: None)
    assert not (tmp_path / "o3" / "a.jpg").exists()
