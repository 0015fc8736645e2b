"""Per-sample errors -> averages, per-action breakdowns, a printed table and an atomic JSON file.

Kept apart from the CLI (eval/h36m.py) so the bookkeeping is testable without a model, and so
other evaluators print and write results the same way.
"""
import os
import re

import numpy as np

from pose_era import io

# 'images/S9_Directions_1.60457274_000001.jpg' -> subject S9, action Directions (sub-take _1
# dropped), as in SPIN's file names. Two actions have another name for subject 1's takes.
_H36M_NAME = re.compile(r"^(S\d+)_(.+?)(?:[ _]\d+)?\.(\d+)_\d+\.\w+$")
_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
METRICS = ("mpjpe", "pa_mpjpe", "mpvpe")
HEADERS = {"mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE", "mpvpe": "MPVPE"}


def action_of(imgname):
    """The Human3.6M action of a SPIN image name, or None when the name is not one."""
    match = _H36M_NAME.match(os.path.basename(str(imgname)))
    if match is None:
        return None
    action = match.group(2)
    return _ACTION_ALIASES.get(action, action)


def actions_of(imgnames):
    """Actions of all image names, or None unless every name parses (not Human3.6M)."""
    actions = [action_of(n) for n in imgnames]
    return None if not actions or None in actions else actions


def summarize(errors, actions=None):
    """errors: dict metric -> (N,) per-sample mm (a metric may be None: not available).

    Returns {metric: mean or None, "count": N, "per_action": {action: {metric..., count}}}.
    """
    count = len(next(iter(errors.values())))
    out = {m: (float(np.mean(errors[m])) if errors.get(m) is not None and count else None)
           for m in METRICS}
    out["count"] = int(count)
    out["per_action"] = {}
    if actions is not None:
        actions = np.asarray(actions)
        for action in sorted(set(actions.tolist())):
            keep = actions == action
            out["per_action"][action] = {
                **{m: (float(np.mean(errors[m][keep])) if errors.get(m) is not None else None)
                   for m in METRICS},
                "count": int(keep.sum())}
    return out


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def format_table(header, rows):
    """Aligned text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, header))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def results_table(summaries):
    """summaries: dict row name (e.g. model, mean_pose) -> `summarize` output."""
    header = ["", *(HEADERS[m] for m in METRICS), "count"]
    rows = [[name, *(s[m] for m in METRICS), s["count"]] for name, s in summaries.items()]
    return format_table(header, rows)


def action_table(summaries):
    """Per-action MPJPE / PA-MPJPE (mm) of each row of `summaries`, plus an "all" line."""
    names = list(summaries)
    actions = sorted(summaries[names[0]]["per_action"])
    header = ["action", "count"] + [f"{HEADERS[m]} {n}" for n in names
                                    for m in ("mpjpe", "pa_mpjpe")]
    rows = []
    for action in actions + ["all"]:
        per = {n: summaries[n] if action == "all" else summaries[n]["per_action"][action]
               for n in names}
        rows.append([action, per[names[0]]["count"]] +
                    [per[n][m] for n in names for m in ("mpjpe", "pa_mpjpe")])
    return format_table(header, rows)


def write_json(path, payload):
    """Writes payload as indented JSON atomically (pose_era.io); returns the path."""
    return io.write_json(path, payload)
