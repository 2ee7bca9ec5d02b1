"""The double-buffered CUDA path (skipped cleanly without a CUDA GPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.frame import Frame
from rtstyle.stylizer import Stylizer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_double_buffer_matches_cpu_and_keeps_order(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    from rtstyle.gpu import CudaDoubleBuffer

    cpu = Stylizer(str(tiny_johnson))
    gpu = Stylizer(str(tiny_johnson), device="cuda")
    frames = [Frame(np.ascontiguousarray(np.roll(content_photo, 5 * i, 1)), i) for i in range(7)]
    db = CudaDoubleBuffer(gpu, depth=2)
    out = [r for f in frames if (r := db.push(f)) is not None] + db.flush()
    assert [f.index for f in out] == list(range(7))
    for f, o in zip(frames, out):
        ref = cpu(f).image
        assert np.abs(o.image.astype(int) - ref.astype(int)).mean() < 1.0


def test_pipeline_uses_gpu_path(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    from rtstyle.io.base import Source, SourceInfo
    from rtstyle.io.null import NullSink
    from rtstyle.pipeline import Pipeline

    class Ten(Source):
        info = SourceInfo(width=content_photo.shape[1], height=content_photo.shape[0], fps=25.0)
        n = 0

        def read(self) -> Frame | None:
            self.n += 1
            return Frame(content_photo, self.n - 1) if self.n <= 10 else None

        def close(self) -> None:
            pass

    sink = NullSink()
    Pipeline(Ten(), Stylizer(str(tiny_johnson), device="cuda"), [sink]).run()
    assert sink.count == 10
