"""Helpers for the tools' smoke tests: load a script from tools/ as a module and run its main()."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (tools are scripts, not a package)."""
    path = TOOLS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"rtstyle_tool_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tool() -> Callable[[str], ModuleType]:
    return load_tool


@pytest.fixture
def photo_files(tmp_path: Path) -> Callable[[int, tuple[int, int]], list[Path]]:
    """Write ``n`` structured test photos (gradients, a disc, stripes; not noise) as JPEG files."""
    import cv2

    def make(n: int = 2, size: tuple[int, int] = (128, 96)) -> list[Path]:
        w, h = size
        out = []
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (255 * xx / w).astype(np.uint8)
            img[..., 1] = (255 * yy / h).astype(np.uint8)
            img[..., 2] = (128 + 127 * np.sin(xx / (4 + 3 * i))).astype(np.uint8)
            cv2.circle(img, (w // 2 + 10 * i, h // 2), h // 4, (250, 240, 30 * i), -1)
            p = tmp_path / f"photo_{i}.jpg"
            cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            out.append(p)
        return out

    return make
