"""Classifies an image with a converted GoogLeNet in onnxruntime, preprocessing as Caffe did.

    python examples/googlenet/classify.py googlenet.onnx cat.jpg --labels synset_words.txt

Preprocessing follows BVLC's ImageNet models: the image as 0..255 RGB, resized
to 224x224 (or, with ``--crop``, to 256x256 then the central 224x224), channels
reordered RGB -> BGR, HWC -> CHW, and the ImageNet BGR mean (104, 117, 123)
subtracted. Reading images needs Pillow (``pip install pillow``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
SIZE = 224
CROP_FROM = 256


def load_rgb(path: str | Path, crop: bool = False) -> np.ndarray:
    """The image as a SIZE x SIZE x 3 uint8 RGB array (bilinear resize, optional centre crop)."""
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("classify.py reads images with Pillow, which is not installed: pip install pillow") from None
    try:
        img = Image.open(path)
    except OSError as e:  # missing file, or a format Pillow cannot read
        raise SystemExit(f"cannot read image {path}: {e}") from None
    with img:
        img = img.convert("RGB")
        side = CROP_FROM if crop else SIZE
        img = img.resize((side, side), Image.BILINEAR)
        if crop:
            off = (CROP_FROM - SIZE) // 2
            img = img.crop((off, off, off + SIZE, off + SIZE))
        return np.asarray(img, dtype=np.uint8)


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB 0..255 -> 1x3xHxW float32 BGR with the ImageNet mean subtracted, as Caffe's Transformer."""
    bgr = np.asarray(rgb, np.float32)[:, :, ::-1]
    chw = (bgr - MEAN_BGR).transpose(2, 0, 1)
    return np.ascontiguousarray(chw[None])


def read_labels(path: str | Path | None) -> list[str] | None:
    """One label per line, class index = line number (e.g. BVLC's synset_words.txt)."""
    if path is None:
        return None
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]


def classify(model: str | Path, batch: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Runs the model; returns the class probabilities of the first image, shape (classes,)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    n = inp.shape[0]
    if isinstance(n, int) and n > 1:
        # A model converted from the unchanged deploy.prototxt keeps Caffe's batch of 10.
        batch = np.repeat(batch, n, axis=0)
    out = sess.run(None, {inp.name: batch})[0]
    return np.asarray(out[0], np.float64).reshape(-1)


def top_k(probs: np.ndarray, k: int) -> list[tuple[int, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Top-k ImageNet classes of an image with a converted GoogLeNet.")
    ap.add_argument("model", help="the converted .onnx file (output 'prob')")
    ap.add_argument("image", help="an image file Pillow can read (JPEG, PNG, ...)")
    ap.add_argument("--labels", help="labels file, one class per line (e.g. synset_words.txt)")
    ap.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    ap.add_argument("--crop", action="store_true", help="resize to 256x256 and take the central 224x224")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = ap.parse_args(argv)
    labels = read_labels(args.labels)
    probs = classify(args.model, preprocess(load_rgb(args.image, args.crop)), args.threads)
    if labels is not None and len(labels) != probs.size:
        print(f"warning: {args.labels} has {len(labels)} labels, the model {probs.size} classes", file=sys.stderr)
    for rank, (i, p) in enumerate(top_k(probs, args.top), 1):
        name = labels[i] if labels is not None and i < len(labels) else ""
        print(f"{rank}. {p:.6f}  class {i:4d}  {name}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
