"""A synthetic skin-lesion dataset in the real HAM10000 (or DermMel) layout, made on demand."""
import csv
import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..flags import OneLineParser, choice, folder_path, int_at_least
from ..flags import image_size as size_flag
from .imageio import check_size

VERSION = 2        # bump when the images change, so that cached folders are made again
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
REAL_COUNTS = (327, 514, 1099, 115, 1113, 6705, 142)   # HAM10000: 10,015 images
LAYOUTS = ("ham10000", "dermmel")
DERMMEL_SPLITS = (("train_sep", 0.6), ("valid", 0.2), ("test", 0.2))
FIRST_IMAGE, FIRST_LESION = 24306, 0                     # ISIC_0024306 is HAM10000's first
LOCALIZATIONS = ("back", "lower extremity", "trunk", "upper extremity", "abdomen", "face",
                 "chest", "foot", "unknown", "neck", "scalp", "hand", "ear", "genital", "acral")
LOCALIZATION_P = np.array([2192, 2077, 1404, 1118, 1022, 745, 407, 319, 234, 168, 128, 90, 56,
                           48, 7], float)
DX_TYPES = ("histo", "follow_up", "consensus", "confocal")

# Per class: the look of its lesions, after the dermoscopic textbook picture of each (akiec:
# pink, scaly, ill-defined; bcc: pearly pink with blue-grey nests and branching vessels; bkl:
# tan, sharp, cerebriform; df: small, a white scar inside a faint network; mel: large, dark,
# several colours, irregular, streaks; nv: round, uniform brown, regular network; vasc: red to
# purple lacunae). Every number is the centre of a random draw, and some lesions take another
# class's colours, so the classes overlap. Fields: radius (of the image's short half-side),
# border irregularity, border softness, base and second colour (RGB in [0, 1]), how much of the
# second colour, the colour of dots/globules, then the probability of each pattern: network,
# dots/globules, vessels, scales, white centre, streaks, stripes (cerebriform).
STYLE = {
    #        radius irreg soft  base colour          second colour       mix   dot colour
    "akiec": (0.52, 0.12, 0.20, (0.88, 0.45, 0.42), (0.95, 0.90, 0.85), 0.20, (0.93, 0.88, 0.84),
              (0.05, 0.05, 0.25, 0.95, 0.03, 0.02, 0.05)),
    "bcc": (0.45, 0.10, 0.08, (0.93, 0.80, 0.82), (0.40, 0.47, 0.62), 0.15, (0.36, 0.43, 0.60),
            (0.03, 0.90, 0.85, 0.03, 0.03, 0.02, 0.03)),
    "bkl": (0.60, 0.08, 0.03, (0.74, 0.57, 0.33), (0.50, 0.36, 0.20), 0.30, (0.95, 0.92, 0.80),
            (0.10, 0.30, 0.03, 0.10, 0.03, 0.02, 0.85)),
    "df": (0.25, 0.04, 0.16, (0.66, 0.46, 0.36), (0.95, 0.92, 0.88), 0.10, (0.45, 0.30, 0.22),
           (0.50, 0.05, 0.03, 0.05, 0.90, 0.02, 0.03)),
    "mel": (0.70, 0.22, 0.06, (0.27, 0.16, 0.12), (0.42, 0.48, 0.62), 0.45, (0.12, 0.08, 0.07),
            (0.50, 0.35, 0.05, 0.03, 0.10, 0.65, 0.05)),
    "nv": (0.40, 0.03, 0.05, (0.52, 0.34, 0.22), (0.42, 0.27, 0.17), 0.10, (0.30, 0.19, 0.12),
           (0.85, 0.15, 0.02, 0.02, 0.03, 0.03, 0.05)),
    "vasc": (0.30, 0.04, 0.03, (0.64, 0.14, 0.28), (0.40, 0.08, 0.28), 0.35, (0.36, 0.05, 0.20),
             (0.03, 0.90, 0.05, 0.02, 0.02, 0.02, 0.03)),
}
BORROW_P = 0.08     # the chance that a lesion takes its colours from another class
AGE_MEAN = {"akiec": 67, "bcc": 66, "bkl": 60, "df": 50, "mel": 62, "nv": 45, "vasc": 50}
DX_TYPE_P = {"akiec": (1, 0, 0, 0), "bcc": (1, 0, 0, 0), "bkl": (0.5, 0, 0.3, 0.2),
             "df": (0.5, 0, 0.5, 0), "mel": (1, 0, 0, 0), "nv": (0.3, 0.55, 0.1, 0.05),
             "vasc": (0.5, 0, 0.5, 0)}
SKIN = np.array([0.87, 0.68, 0.58])
LESION_SIZES, LESION_SIZE_P = (1, 2, 3, 4, 5), (0.74, 0.16, 0.06, 0.03, 0.01)


def class_counts(n):
    """Images per class for n images: HAM10000's proportions, at least a few of every class."""
    if n < 20:
        raise ValueError(f"n must be at least 20 (a few images of each of 7 classes), got {n}")
    floor = min(6, n // 20)
    counts = [max(floor, round(n * c / sum(REAL_COUNTS))) for c in REAL_COUNTS]
    nv = CLASSES.index("nv")
    counts[nv] += n - sum(counts)
    return counts


def _plan_ham(n, seed):
    """Rows (image number, lesion number, class index) for the HAM10000 layout."""
    rng = np.random.default_rng([seed, 0])
    rows, lesion = [], 0
    for k, count in enumerate(class_counts(n)):
        left = count
        while left:
            size = min(left, int(rng.choice(LESION_SIZES, p=LESION_SIZE_P)))
            rows += [(lesion, k)] * size
            lesion, left = lesion + 1, left - size
    image_numbers = rng.permutation(len(rows))
    lesion_numbers = rng.permutation(lesion)
    return [(int(image_numbers[i]), int(lesion_numbers[les]), k)
            for i, (les, k) in enumerate(rows)]


def _plan_dermmel(n, seed):
    """Rows (image number, split name, class index): half melanoma, each lesion once."""
    rng = np.random.default_rng([seed, 0])
    mel = CLASSES.index("mel")
    others = [k for k in range(len(CLASSES)) if k != mel]
    p = np.array([REAL_COUNTS[k] for k in others], float)
    labels = [mel] * (n // 2) + list(rng.choice(others, size=n - n // 2, p=p / p.sum()))
    rows = []
    for is_mel in (True, False):
        idx = [i for i, k in enumerate(labels) if (k == mel) == is_mel]
        idx = [idx[j] for j in rng.permutation(len(idx))]
        start = 0
        for s, (name, fraction) in enumerate(DERMMEL_SPLITS):
            stop = len(idx) if s == len(DERMMEL_SPLITS) - 1 else start + round(fraction * len(idx))
            rows += [(i, name, int(labels[i])) for i in idx[start:stop]]
            start = stop
    return sorted(rows)


def _sinusoids(rng, count, freq):
    """Parameters of a smooth random field: a sum of `count` plane waves near frequency freq."""
    angle = rng.uniform(0, 2 * np.pi, count)
    f = freq * rng.uniform(0.6, 1.4, count)
    return np.stack([f * np.cos(angle), f * np.sin(angle), rng.uniform(0, 2 * np.pi, count),
                     rng.uniform(0.5, 1.0, count)])


def _field(params, u, v):
    """Evaluate a _sinusoids field at coordinates (u, v); values roughly in [-1, 1]."""
    fu, fv, phase, amp = params
    total = sum(a * np.sin(a_u * u + a_v * v + ph) for a_u, a_v, ph, a in zip(fu, fv, phase, amp))
    return total / np.sqrt(0.5 * np.sum(amp ** 2))   # unit standard deviation


def _lesion(k, rng):
    """The fixed look of one lesion of class index k: every image of it shares these."""
    radius, irreg, soft, base, second, mix, dot_colour, pattern_p = STYLE[CLASSES[k]]
    if rng.random() < BORROW_P:  # a lesion with another class's colours
        other = (k + 1 + rng.integers(len(CLASSES) - 1)) % len(CLASSES)
        _, _, _, base, second, _, dot_colour, _ = STYLE[CLASSES[other]]
    harmonics = np.arange(1, 7)
    return dict(
        radius=radius * np.exp(rng.normal(0, 0.15)),
        elong=1 + abs(rng.normal(0, 0.12)),
        amps=irreg * np.exp(rng.normal(0, 0.3)) * rng.dirichlet(np.ones(6)) * 2 / np.sqrt(
            harmonics),
        phases=rng.uniform(0, 2 * np.pi, 6),
        soft=soft * np.exp(rng.normal(0, 0.3)),
        base=np.clip(np.array(base) * rng.normal(1, 0.07) + rng.normal(0, 0.03, 3), 0.03, 1),
        second=np.clip(np.array(second) + rng.normal(0, 0.05, 3), 0.03, 1),
        mix=float(np.clip(mix * np.exp(rng.normal(0, 0.3)), 0, 0.8)),
        mix_field=_sinusoids(rng, 5, 3.0),
        patterns=rng.random(7) < np.array(pattern_p),
        net_freq=rng.uniform(10, 15), net_warp=_sinusoids(rng, 3, 4.0),
        net_irreg=0.1 + 0.5 * (CLASSES[k] == "mel") * rng.random(),
        dots=rng.uniform(-0.75, 0.75, (int(rng.integers(6, 18)), 2)),
        dot_size=rng.uniform(0.09, 0.16) * (1.4 if CLASSES[k] == "vasc" else 1.0),
        dot_colour=np.clip(np.array(dot_colour) + rng.normal(0, 0.04, 3), 0, 1),
        vessels=rng.uniform(-0.6, 0.6, (int(rng.integers(3, 6)), 2)),
        vessel_seed=int(rng.integers(2**31)),
        scales=_sinusoids(rng, 12, 16.0),
        streaks=rng.uniform(0, 2 * np.pi, int(rng.integers(8, 18))),
        stripes=_sinusoids(rng, 2, 12.0), centre=rng.uniform(0.35, 0.55),
    )


def _lines_mask(size, polylines, width):
    """A float mask (h, w) in [0, 1] of polylines drawn with PIL."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for points in polylines:
        draw.line([tuple(p) for p in points], fill=255, width=max(1, int(round(width))))
    return np.asarray(mask, dtype=np.float32) / 255.0


def _render(job):
    """Draw one image and write it as JPEG; job = (path, class index, lesion seq, image seq,
    seed, (width, height))."""
    im, _ = _draw(job)
    im.save(job[0], "JPEG", quality=90)


def _draw(job):
    """(the PIL image of a job, the (height, width) float mask in [0, 1] of its lesion)."""
    _, k, lesion_seq, image_seq, seed, (width, height) = job
    look = _lesion(k, np.random.default_rng([seed, 1, lesion_seq]))
    look = {key: (val.astype(np.float32) if isinstance(val, np.ndarray) and val.dtype == float
                  else val) for key, val in look.items()}     # float32 arithmetic below
    rng = np.random.default_rng([seed, 2, image_seq])
    rw = min(width, 128)          # drawn small (still above the 100 x 75 models see), then enlarged
    rh = max(8, round(rw * height / width))
    half = min(rw, rh) / 2.0
    y, x = np.mgrid[0:rh, 0:rw].astype(np.float32)
    x, y = (x - rw / 2) / half, (y - rh / 2) / half        # image coordinates, short half-side 1

    # skin: colour, lighting gradient, mottling, dermatoscope vignette
    skin = np.clip(SKIN * rng.normal(1, 0.05) + rng.normal(0, 0.025, 3), 0, 1).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.1) * (x * np.cos(a) + y * np.sin(a))
    mottle = 1 + 0.03 * _field(_sinusoids(rng, 4, 2.5), x, y)
    img = skin * (light * mottle)[..., None]

    # the lesion's own coordinates (u, v): shifted, turned, scaled, stretched
    cx, cy = rng.normal(0, 0.1, 2)
    turn = rng.uniform(0, 2 * np.pi)
    r = look["radius"] * rng.normal(1, 0.06)
    du, dv = x - cx, y - cy
    u = (du * np.cos(turn) + dv * np.sin(turn)) / r
    v = (-du * np.sin(turn) + dv * np.cos(turn)) / (r / look["elong"])
    d, theta = np.hypot(u, v), np.arctan2(v, u)
    rim = 1 + sum(am * np.cos((h + 1) * theta + ph)
                  for h, (am, ph) in enumerate(zip(look["amps"], look["phases"])))
    inside = 1 / (1 + np.exp(-np.clip((rim - d) / max(look["soft"], 0.01), -30, 30)))

    mix = look["mix"] * np.clip(0.5 + 0.8 * _field(look["mix_field"], u, v), 0, 1)
    col = look["base"] * (1 - mix[..., None]) + look["second"] * mix[..., None]
    net, dots, vessels, scales, centre, streaks, stripes = look["patterns"]
    if net:
        warp = look["net_irreg"] * _field(look["net_warp"], u, v)
        f = look["net_freq"]
        line = np.maximum(np.exp(-(np.sin(f * (u + warp)) / 0.35) ** 2),
                          np.exp(-(np.sin(f * (v - warp)) / 0.35) ** 2))
        col = col * (1 - 0.5 * line * np.clip(1.2 - d, 0, 1))[..., None]
    if dots:
        pu, pv = look["dots"][:, 0, None, None], look["dots"][:, 1, None, None]
        blob = np.exp(-((u - pu) ** 2 + (v - pv) ** 2) / look["dot_size"] ** 2).max(axis=0)
        col = col * (1 - 0.9 * blob[..., None]) + look["dot_colour"] * 0.9 * blob[..., None]
    if vessels:
        vr = np.random.default_rng(look["vessel_seed"])
        lines = []
        for start in look["vessels"]:
            p, step = np.array(start, float), vr.uniform(0, 2 * np.pi)
            pts = [p.copy()]
            for _ in range(8):
                step += vr.normal(0, 0.6)
                p = p + 0.12 * np.array([np.cos(step), np.sin(step)])
                pts.append(p.copy())
            lines.append(pts)
        # lesion coordinates back to render pixels
        c, s = np.cos(turn), np.sin(turn)
        pix = [[((cx + c * pu * r - s * pv * r / look["elong"]) * half + rw / 2,
                 (cy + s * pu * r + c * pv * r / look["elong"]) * half + rh / 2)
                for pu, pv in pts] for pts in lines]
        mask = _lines_mask((rw, rh), pix, rw / 64)
        col = col * (1 - 0.85 * mask[..., None]) + np.array([0.72, 0.08, 0.14]) * 0.85 * mask[
            ..., None]
    if scales:
        flake = _field(look["scales"], u, v) + rng.normal(0, 0.6, u.shape).astype(np.float32)
        flake = np.clip((flake - 0.9) * 2, 0, 1) * inside
        col = col * (1 - flake[..., None]) + np.array([0.93, 0.9, 0.86]) * flake[..., None]
    if centre:
        white = 0.95 * np.exp(-(d / look["centre"]) ** 2)
        col = col * (1 - white[..., None]) + np.array([0.93, 0.9, 0.87]) * white[..., None]
    if streaks:
        rays = np.exp(-(np.sin((theta[..., None] - look["streaks"]) / 2) / 0.05) ** 2).max(-1)
        rays = rays * np.exp(-((d - 1.05) / 0.22) ** 2)
        inside = np.maximum(inside, rays)
        col = col * (1 - 0.4 * rays[..., None])
    if stripes:
        wave = 0.5 + 0.5 * np.sin(8 * _field(look["stripes"], u, v))
        col = col * (1 - 0.4 * wave[..., None])
    img = img * (1 - inside[..., None]) + col * light[..., None] * inside[..., None]

    if rng.random() < 0.5:  # the dark corners of a dermatoscope
        rr = np.hypot(x * half / (rw / 2), y * half / (rh / 2))
        img *= (1 - rng.uniform(0.4, 0.9) * np.clip((rr - rng.uniform(0.95, 1.2)) * 3, 0, 1))[
            ..., None]
    img = img + rng.normal(0, 0.02, img.shape).astype(np.float32)
    small = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    im = small.resize((width, height), Image.Resampling.BILINEAR)
    _hair(im, rng)
    mask = Image.fromarray(inside.astype(np.float32), "F").resize((width, height),
                                                                  Image.Resampling.BILINEAR)
    return im, np.asarray(mask)


def _hair(im, rng):
    """Draw a few hair-like dark curves on a PIL image, in place."""
    if rng.random() > 0.25:
        return
    width, height = im.size
    draw = ImageDraw.Draw(im)
    t = np.linspace(0, 1, 12)[:, None]
    for _ in range(int(rng.integers(1, 7))):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * (width, height)
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        shade = int(rng.integers(15, 70))
        draw.line([tuple(p) for p in pts], fill=(shade, int(shade * 0.8), int(shade * 0.7)),
                  width=max(1, round(rng.uniform(1, 3) * width / 600)))


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"))
        writer.writerows(rows)


def _lesion_meta(k, lesion_seq, seed):
    """(dx_type, age, sex, localization) of a lesion, the same for each of its images."""
    rng = np.random.default_rng([seed, 3, lesion_seq])
    dx = CLASSES[k]
    dx_type = DX_TYPES[rng.choice(4, p=DX_TYPE_P[dx])]
    age = np.clip(5 * round(rng.normal(AGE_MEAN[dx], 15) / 5), 0, 85)
    age = "" if rng.random() < 0.01 else f"{age:.1f}"
    sex = ("male", "female", "unknown")[rng.choice(3, p=(0.54, 0.45, 0.01))]
    loc = LOCALIZATIONS[rng.choice(len(LOCALIZATIONS), p=LOCALIZATION_P / LOCALIZATION_P.sum())]
    return dx_type, age, sex, loc


def _plan_jobs(out, layout, n, seed, size, make_folders=False):
    """The render jobs of a dataset (see _render); with make_folders, create its folders and
    write the HAM10000 metadata file."""
    jobs = []
    if layout == "ham10000":
        rows = []
        for image_seq, lesion_seq, k in _plan_ham(n, seed):
            image_id = f"ISIC_{FIRST_IMAGE + image_seq:07d}"
            part = 1 if image_seq < (n + 1) // 2 else 2
            folder = out / f"HAM10000_images_part_{part}"
            jobs.append((str(folder / f"{image_id}.jpg"), k, lesion_seq, image_seq))
            rows.append((f"HAM_{FIRST_LESION + lesion_seq:07d}", image_id, CLASSES[k])
                        + _lesion_meta(k, lesion_seq, seed))
        if make_folders:
            for part in (1, 2):
                (out / f"HAM10000_images_part_{part}").mkdir(exist_ok=True)
            _write_csv(out / "HAM10000_metadata.csv",
                       sorted(rows, key=lambda r: (r[2], r[0], r[1])))
    else:
        mel = CLASSES.index("mel")
        if make_folders:
            for split, _ in DERMMEL_SPLITS:
                for name in ("Melanoma", "NotMelanoma"):
                    (out / split / name).mkdir(parents=True, exist_ok=True)
        for image_seq, split, k in _plan_dermmel(n, seed):
            name = "Melanoma" if k == mel else "NotMelanoma"
            path = out / split / name / f"ISIC_{FIRST_IMAGE + image_seq:07d}.jpg"
            jobs.append((str(path), k, image_seq, image_seq))
    return [job + (seed, tuple(size)) for job in jobs]


def lesion_masks(root, paths=None):
    """{image path: (height, width) bool array, True inside the lesion} of a folder written by
    make_synthetic, recomputed from its synthetic.json (nothing is read but that file).

    `paths` limits the answer to those images (a ValueError names one the folder lacks).
    """
    root = Path(root)
    try:
        info = json.loads((root / "synthetic.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{root}: not a folder written by make_synthetic ({exc})") from None
    if info.get("version") != VERSION:
        raise ValueError(f"{root}: made by synthetic version {info.get('version')}, not "
                         f"{VERSION}: the lesions cannot be recomputed; make it again")
    jobs = {job[0]: job for job in _plan_jobs(root, info["layout"], info["n"], info["seed"],
                                               info["image_size"])}
    wanted = list(jobs) if paths is None else [str(p) for p in paths]
    missing = [p for p in wanted if p not in jobs]
    if missing:
        raise ValueError(f"{missing[0]} is not an image of the synthetic folder {root}")
    return {p: _draw(jobs[p])[1] > 0.5 for p in wanted}


def make_synthetic(out, n=2000, seed=0, layout="ham10000", image_size=(600, 450), workers=None,
                   overwrite=False):
    """Write n synthetic lesion images into folder out and return its Path.

    layout "ham10000": HAM10000_metadata.csv and HAM10000_images_part_{1,2}/ISIC_*.jpg, with the
    real class proportions and several images of some lesions. layout "dermmel":
    {train_sep,valid,test}/{Melanoma,NotMelanoma}/*.jpg, half melanoma. Deterministic in seed
    whatever the number of worker threads (default: up to 2). overwrite replaces an earlier
    output of make_synthetic, never another folder.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    width, height = check_size(image_size)
    n, seed = int(n), int(seed)
    class_counts(n)                     # checks n before anything is written
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"make_synthetic: {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"make_synthetic: {out} already exists and is not empty; "
                                  "choose another folder or pass overwrite=True")
        if not (out / "synthetic.json").is_file():  # never delete a folder this did not make
            raise FileExistsError(f"make_synthetic: {out} is not empty and was not made by "
                                  "make_synthetic (no synthetic.json); it is left alone")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"make_synthetic: {out}: cannot create the folder "
                      f"({exc.strerror or exc})") from None
    jobs = _plan_jobs(out, layout, n, seed, (width, height), make_folders=True)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(jobs) >= 100 else 1
    if int(workers) > 1:
        # NOTE: threads, not processes: NumPy's array loops, Pillow's resize and JPEG encoder
        # release the GIL, and threads need no `if __name__ == "__main__"` guard in the caller
        with ThreadPoolExecutor(int(workers)) as pool:
            list(pool.map(_render, jobs))
    else:
        for job in jobs:
            _render(job)
    info = dict(version=VERSION, layout=layout, n=n, seed=seed, image_size=[width, height])
    (out / "synthetic.json").write_text(json.dumps(info) + "\n")
    return out


def _is_complete(root, info):
    """True when `root` is a finished make_synthetic folder of these settings (`info`, as in
    its synthetic.json): the file is written last, and every image is there."""
    try:
        found = json.loads((root / "synthetic.json").read_text())
    except (OSError, ValueError):
        return False
    if found != info:
        return False
    return sum(1 for _ in root.rglob("ISIC_*.jpg")) == info["n"]


def default_synthetic_root(layout="ham10000", n=2000, seed=0, image_size=(600, 450), log=print):
    """A synthetic dataset in the cache folder, made once and then reused; its Path.

    The folder is $TINYLESION_CACHE (else ~/.cache/tinylesion) / synthetic-<layout>-<n>-<seed>.
    It is made in a temporary folder beside it and renamed into place when complete, by one
    process at a time (a lock file beside it): another process that wants it meanwhile waits,
    saying so with one `log` line, then uses the finished folder. A folder left half made by
    a killed process is never taken for a complete one (and is removed by the next maker).
    """
    from ..runlock import RunLock
    width, height = check_size(image_size)
    n, seed = int(n), int(seed)
    base = Path(os.environ.get("TINYLESION_CACHE") or Path.home() / ".cache" / "tinylesion")
    base = base.expanduser()
    name = f"synthetic-{layout}-{n}-{seed}"
    if (width, height) != (600, 450):
        name += f"-{width}x{height}"
    root = base / name
    info = dict(version=VERSION, layout=layout, n=n, seed=seed, image_size=[width, height])
    if _is_complete(root, info):
        return root
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create the cache folder ({exc.strerror or exc})",
                      str(base)) from None
    with RunLock(root, "synthetic dataset", log, path=base / f".{name}.lock", wait=True):
        if _is_complete(root, info):  # made by another process while this one waited
            return root
        # NOTE: the lock holder is the only maker: temporary folders of this name are those
        # of a process killed while making it
        for kind in ("tmp", "old"):
            for left in base.glob(f".{name}.{kind}-*"):
                shutil.rmtree(left, ignore_errors=True)
        tmp = base / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            make_synthetic(tmp, n=n, seed=seed, layout=layout, image_size=(width, height))
            if root.exists() or root.is_symlink():  # an older or damaged one: moved aside
                old = base / f".{name}.old-{uuid.uuid4().hex[:8]}"
                os.rename(root, old)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def main(argv=None):
    """Command line: python -m tinylesion.data.synthetic --out DIR [--n N] [--seed S] ..."""
    parser = OneLineParser(
        prog="python -m tinylesion.data.synthetic",
        description="Write a synthetic skin-lesion dataset in the HAM10000 or DermMel layout.")
    parser.add_argument("--out", required=True, type=folder_path,
                        help="folder to create (must be empty)")
    parser.add_argument("--n", type=int_at_least(20), default=2000, help="number of images (>= 20)")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--layout", type=choice("a layout", LAYOUTS), default="ham10000",
                        help="ham10000 (default) or dermmel")
    parser.add_argument("--size", type=size_flag, default=(600, 450),
                        help="WIDTHxHEIGHT (default 600x450)")
    parser.add_argument("--workers", type=int_at_least(1), default=None, help="threads (default 2)")
    parser.add_argument("--force", action="store_true", help="replace an earlier synthetic --out")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = make_synthetic(args.out, n=args.n, seed=args.seed, layout=args.layout,
                             image_size=args.size, workers=args.workers, overwrite=args.force)
    except (ValueError, OSError) as exc:
        message = str(exc).replace("pass overwrite=True", "pass --force")
        message = message.replace("make_synthetic: ", "--out ", 1)
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    print(f"wrote {args.n} {args.layout} images to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
