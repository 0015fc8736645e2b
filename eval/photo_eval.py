"""Scores the demo pipeline on real photos with hand-annotated COCO-17 keypoints (issue 19).

Synthetic test scenes say nothing about the photos people actually take (portraits, half
bodies, people cut by the frame, several people), so this measures the demo there. Per
annotated person (eval/photo_set.py reads the annotations):
- found: matched to one detected person, greedily by the IoU of the annotated box and the
  detection's box clipped to the photo (at least MIN_IOU); an unmatched person is "not found"
  and its joints count as wrong;
- joints right: the fraction of annotated joints within max(SHOULDER_FRACTION x the annotated
  shoulder width, HEIGHT_FRACTION x the annotated box's height) of the mesh's COCO-17 joints
  projected into the photo (same joint, same side; `lr_ambiguous` people take the better of
  the mesh and its mirror);
- outside: how many of the joints annotated as beyond the border project beyond it;
each with the fit, for the network alone, and for BlazePose's own 2D keypoints (what a fit
that followed them exactly would score: it tells the detector's misses from the fit's); plus
the 3D agreement with BlazePose's world landmarks where the pipeline reports it
(`world_agreement_mm`). Photos without a person must give no detection. tools/eval_photos.py
is the command line.
"""
import cv2
import numpy as np
import tensorflow as tf

from eval import demo, photo_set, report
from pose_era import constants, geometry, io

SHOULDER_FRACTION = 0.35   # of the annotated shoulder width
HEIGHT_FRACTION = 0.08     # of the annotated person box's height (the visible body)
MIN_IOU = 0.3              # annotated box vs detected box (clipped to the photo) to match
MODES = ("fit", "network", "keypoints")   # "keypoints": BlazePose's 2D, scored as a mesh
SHEET_ROW = 200            # px: the height of one person's pictures on the contact sheet


def tolerance(person):
    """Pixels within which a joint counts as right: max(0.35 x shoulder width, 8 % of the
    box's height); the shoulder term only when both shoulders are annotated."""
    kp = person["keypoints"]
    tol = HEIGHT_FRACTION * (person["box"][3] - person["box"][1])
    if "left_shoulder" in kp and "right_shoulder" in kp:
        width = np.linalg.norm(np.subtract(kp["left_shoulder"], kp["right_shoulder"]))
        tol = max(tol, SHOULDER_FRACTION * float(width))
    return float(tol)


def _one_side(person, joints2d, width, height, tol):
    names = list(person["keypoints"])
    idx = [constants.COCO17_NAMES.index(n) for n in names]
    errors = np.linalg.norm(joints2d[idx] - np.array([person["keypoints"][n] for n in names]),
                            axis=1) if names else np.zeros(0)
    outside = list(person.get("outside", []))
    uv = joints2d[[constants.COCO17_NAMES.index(n) for n in outside]]
    beyond = (uv[:, 0] < 0) | (uv[:, 0] >= width) | (uv[:, 1] < 0) | (uv[:, 1] >= height)
    return {"right": int((errors <= tol).sum()), "annotated": len(names),
            "outside_ok": int(beyond.sum()), "outside": len(outside),
            "errors_px": {n: round(float(e), 1) for n, e in zip(names, errors)},
            "outside_in_frame": [n for n, b in zip(outside, beyond) if not b],
            "mirrored": False}


def score(person, joints2d, width, height):
    """How the projected COCO-17 joints (17, 2) of one mesh agree with one annotated person in
    a width x height photo: right / annotated joints, outside_ok / outside, per-joint errors,
    the out-of-frame joints that land in the frame."""
    joints2d = np.asarray(joints2d, np.float64)
    tol = tolerance(person)
    best = _one_side(person, joints2d, width, height, tol)
    if person.get("lr_ambiguous"):
        flipped = _one_side(person, joints2d[list(constants.COCO17_FLIP_PERM)], width, height,
                            tol)
        if (flipped["right"], flipped["outside_ok"]) > (best["right"], best["outside_ok"]):
            best = dict(flipped, mirrored=True)
    best["tolerance_px"] = round(tol, 1)
    return best


def box_iou(a, b):
    """IoU of two [x0, y0, x1, y1] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(annotated, detected, width, height):
    """[(index of the detection or None, IoU)] per annotated box: pairs taken greedily from the
    highest IoU down, each detection used once, none under MIN_IOU. Boxes [x0, y0, x1, y1];
    detections are clipped to the photo first (BlazePose's box extends past the border where
    it extrapolates a cut body)."""
    clip = [[min(max(b[0], 0), width), min(max(b[1], 0), height), min(max(b[2], 0), width),
             min(max(b[3], 0), height)] for b in detected]
    pairs = sorted(((box_iou(a, d), i, j) for i, a in enumerate(annotated)
                    for j, d in enumerate(clip)), key=lambda p: -p[0])
    result, used = [(None, 0.0)] * len(annotated), set()
    for iou, i, j in pairs:
        if iou >= MIN_IOU and result[i][0] is None and j not in used:
            result[i] = (j, iou)
            used.add(j)
    return result


def projected_coco17(pred, K_full):
    """The mesh's COCO-17 joints projected into the photo: (17, 2) pixels."""
    return geometry.project(tf.constant(pred["coco17"][None], tf.float32),
                            tf.constant(K_full[None], tf.float32)).numpy()[0]


def _xyxy(box):
    x, y, w, h = box
    return [x, y, x + w, y + h]


def evaluate_photo(pipeline, photo, rgb, fit=True):
    """(photo record, [person records], detected people) of one photo through the demo
    pipeline (every person, eval.demo.Pipeline)."""
    height, width = rgb.shape[:2]
    people = pipeline(rgb, all_people=True, fit=fit)
    annotated = photo["people"]
    pairs = match([p["box"] for p in annotated], [_xyxy(p.box) for p in people], width, height)
    records = []
    for person, (j, iou) in zip(annotated, pairs):
        rec = {"photo": photo["file"], "name": person["name"], "found": j is not None,
               "detection": j, "iou": round(iou, 3), "tolerance_px": round(tolerance(person), 1),
               "annotated": len(person["keypoints"]), "outside": len(person.get("outside", [])),
               "fit": None, "network": None, "keypoints": None, "world_agreement_mm": None,
               "reliable": None}
        if j is not None:
            found = people[j]
            if found.fit is not None:
                rec["fit"] = score(person, projected_coco17(found.pred, found.K_full), width,
                                   height)
            network = found.network if found.network is not None else found.pred
            rec["network"] = score(person, projected_coco17(network, found.K_full), width,
                                   height)
            if found.keypoints is not None:
                rec["keypoints"] = score(person, found.keypoints[:, :2], width, height)
            agreement = getattr(found, "world_agreement_mm", None)
            rec["world_agreement_mm"] = None if agreement is None else float(agreement)
            rec["reliable"] = not found.unreliable_because
        records.append(rec)
    used = {j for j, _ in pairs if j is not None}
    summary = {"file": photo["file"], "annotated_people": len(annotated),
               "detected": len(people), "extra_detections": len(people) - len(used)}
    if not annotated:
        summary["no_person_found"] = not people
    return summary, records, people


def totals(photos, records):
    """Set-wide numbers: per mode, joints right / annotated (a person not found counts all its
    joints wrong), outside joints outside; people found; photos without a person kept empty;
    the mean 3D agreement where reported."""
    out = {"people": len(records), "found": sum(r["found"] for r in records)}
    for mode in MODES:
        scored = [r[mode] for r in records if r[mode] is not None]
        if not scored:
            out[mode] = None
            continue
        right = sum(s["right"] for s in scored)
        annotated = sum(r["annotated"] for r in records)
        fractions = [(r[mode]["right"] / r["annotated"]) if r[mode] and r["annotated"] else 0.0
                     for r in records if r["annotated"]]
        out[mode] = {"joints_right": right, "joints_annotated": annotated,
                     "fraction": right / annotated if annotated else None,
                     "worst_person": min(fractions) if fractions else None,
                     "outside_ok": sum(s["outside_ok"] for s in scored),
                     "outside": sum(r["outside"] for r in records)}
    agreement = [r["world_agreement_mm"] for r in records if r["world_agreement_mm"] is not None]
    out["world_agreement_mm"] = float(np.mean(agreement)) if agreement else None
    empty = [p for p in photos if "no_person_found" in p]
    out["no_person_photos"] = len(empty)
    out["no_person_found"] = sum(p["no_person_found"] for p in empty)
    return out


def _joints_cell(s, annotated):
    if s is None or not annotated:
        return "-"
    return f"{s['right']}/{annotated} {s['right'] / annotated:.0%}"


def _outside_cell(s, outside):
    return "-" if s is None or not outside else f"{s['outside_ok']}/{outside}"


def table(photos, records, summary):
    """The printed table: a row per annotated person, a row per photo without a person, and
    the totals."""
    header = ["photo / person", "found", "joints fit", "joints network", "joints BlazePose",
              "outside fit", "outside network", "outside BlazePose", "3D agree mm", "reliable"]
    rows = []
    for r in records:
        agree = r["world_agreement_mm"]
        rows.append([f"{r['photo']} / {r['name']}", "yes" if r["found"] else "NOT FOUND",
                     *(_joints_cell(r[mode], r["annotated"]) for mode in MODES),
                     *(_outside_cell(r[mode], r["outside"]) for mode in MODES),
                     "n/a" if agree is None else f"{agree:.0f}",
                     "-" if r["reliable"] is None else ("yes" if r["reliable"] else "no")])
    for p in photos:
        if "no_person_found" in p:
            rows.append([p["file"], "no person found" if p["no_person_found"] else
                         f"{p['detected']} FALSE"] + [""] * (len(header) - 2))
    total = ["all", f"{summary['found']}/{summary['people']}"]
    for mode in MODES:
        s = summary[mode]
        total.append("-" if s is None else f"{s['joints_right']}/{s['joints_annotated']} "
                                           f"{s['fraction']:.0%}")
    for mode in MODES:
        s = summary[mode]
        total.append("-" if s is None else f"{s['outside_ok']}/{s['outside']}")
    agree = summary["world_agreement_mm"]
    total += ["n/a" if agree is None else f"{agree:.0f}", ""]
    rows.append(total)
    return report.format_table(header, rows)


def evaluate(pipeline, photos, dirs, fit=True, progress=None):
    """Runs every annotated photo (found in dirs) through the pipeline: returns (photo
    records, person records, totals, {file: (rgb, detected people)} for pictures)."""
    photo_records, records, seen = [], [], {}
    for photo in photos:
        path = photo_set.locate(photo, dirs)
        rgb = demo.read_image(path)
        summary, recs, people = evaluate_photo(pipeline, photo, rgb, fit)
        photo_records.append(summary)
        records += recs
        seen[photo["file"]] = (rgb, people)
        if progress is not None:
            progress(photo["file"])
    return photo_records, records, totals(photo_records, records), seen


def _cut(image, box, margin=0.1):
    """image[box] with a margin, box [x0, y0, x1, y1] in the image's pixels, clipped."""
    h, w = image.shape[:2]
    pad = margin * max(box[2] - box[0], box[3] - box[1])
    x0, y0 = int(max(box[0] - pad, 0)), int(max(box[1] - pad, 0))
    x1, y1 = int(min(box[2] + pad, w)), int(min(box[3] + pad, h))
    return image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def _row_height(image):
    return cv2.resize(image, (max(1, round(image.shape[1] * SHEET_ROW / image.shape[0])),
                              SHEET_ROW), interpolation=cv2.INTER_AREA)


def _caption(text, width):
    """A white bar with text, at least as wide as the text."""
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    bar = np.full((22, max(width, w + 8), 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def _stack(pictures, axis, gap=6):
    """Pictures side by side (axis 1) or one above the other (axis 0), padded white."""
    other = 1 - axis
    size = max(p.shape[other] for p in pictures)
    padded = []
    for p in pictures:
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[other] = (0, size - p.shape[other])
        pad[axis] = (0, gap)
        padded.append(np.pad(p, pad, constant_values=255))
    return np.concatenate(padded, axis)


def _person_row(record, rgb, person, box, faces, tmp):
    """Caption over: network alone, fit, fit's side view (the demo's own pictures)."""
    import dataclasses

    from eval import demo_outputs

    variants = [("fit", person)]
    if person.network is not None:
        variants.insert(0, ("network", dataclasses.replace(person, pred=person.network)))
    cells = []
    for name, p in variants:
        over, side = (cv2.imread(str(f))[..., ::-1] for f in
                      demo_outputs.write_pictures(tmp, name, rgb / 255.0, p, faces))
        cells.append(_row_height(_cut(over, np.multiply(box, over.shape[1] / rgb.shape[1]))))
    ys, xs = np.nonzero(side.min(-1) < 250)          # the fit's side view (the last variant)
    if len(xs):
        cells.append(_row_height(_cut(side, [xs.min(), ys.min(), xs.max(), ys.max()])))
    row = _stack(cells, 1, gap=4)
    right = ", ".join(f"{m} {record[m]['right']}/{record['annotated']}" for m in MODES
                      if record[m] is not None)
    caption = f"{record['photo']} / {record['name']}: joints right {right}"
    return _stack([_caption(caption, row.shape[1]), row], 0, gap=0)


def contact_sheet(photos, records, seen, faces, columns=2):
    """RGB uint8 picture: per found person, under a caption (photo, person, joints right), the
    demo's pictures (eval.demo_outputs) cut around the person: the network alone over the
    photo, the fitted mesh over the photo, the fitted mesh's side view; the people not found
    named at the bottom. None if nobody was found."""
    import tempfile
    from pathlib import Path

    boxes = {(p["file"], q["name"]): q["box"] for p in photos for q in p["people"]}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_person_row(r, seen[r["photo"]][0], seen[r["photo"]][1][r["detection"]],
                            boxes[r["photo"], r["name"]], faces, Path(tmp))
                for r in records if r["found"]]
    if not rows:
        return None
    per = -(-len(rows) // columns)
    body = _stack([_stack(rows[i:i + per], 0) for i in range(0, len(rows), per)], 1, gap=12)
    title = ("left to right: the network alone, the fit (mesh over the photo, BlazePose's "
             "keypoints in orange), the fit's side view")
    parts = [_caption(title, body.shape[1]), body]
    missed = [f"{r['photo']} / {r['name']}" for r in records if not r["found"]]
    if missed:
        parts.append(_caption("not found: " + ", ".join(missed), body.shape[1]))
    return _stack(parts, 0)


def write_sheet(path, sheet):
    """The contact sheet as a 256-colour PNG (small enough to commit), written atomically."""
    from PIL import Image

    image = Image.fromarray(sheet).quantize(256)
    return io.write_via_path(path, lambda p: image.save(p, format="PNG", optimize=True))
