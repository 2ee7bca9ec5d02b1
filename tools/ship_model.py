"""Copy a trained rtstyle .safetensors into the package and record it in the weights manifest.

    python tools/ship_model.py runs/starry/johnson_starry_night_lite.safetensors --default-size 240

The spec stored in the file's metadata (written by ``rtstyle train``) is copied into
``rtstyle/weights_data/manifest.json`` with the file's sha256, so the registry can list the model
without opening the weights and can verify them when loading.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from safetensors import safe_open

from rtstyle.models import ModelSpec
from rtstyle.weights import sha256_file

PKG = Path(__file__).resolve().parents[1] / "rtstyle" / "weights_data"


def _replace_atomically(dest: Path, write: "Callable[[Path], None]") -> None:
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("--default-size", type=int, default=None, help="recommended live internal short side")
    ap.add_argument("--description", default=None)
    ap.add_argument("--package-dir", type=Path, default=PKG,
                    help="the weights folder holding manifest.json (default: the package's rtstyle/weights_data)")
    a = ap.parse_args(argv)
    pkg = a.package_dir
    with safe_open(str(a.weights), framework="pt") as f:
        meta = f.metadata() or {}
    if "spec" not in meta:
        raise SystemExit(f"{a.weights}: no rtstyle spec in its metadata (was it written by `rtstyle train`?)")
    spec = ModelSpec.from_json(meta["spec"])
    dest = pkg / a.weights.name
    if dest.resolve() != a.weights.resolve():
        _replace_atomically(dest, lambda tmp: shutil.copyfile(a.weights, tmp))
    changes = {"sha256": sha256_file(dest), "weights": dest.name}
    if a.default_size:
        changes["default_size"] = a.default_size
    if a.description:
        changes["description"] = a.description
    spec = dataclasses.replace(spec, **changes)
    man_path = pkg / "manifest.json"
    manifest = json.loads(man_path.read_text()) if man_path.exists() else {"models": []}
    manifest["models"] = [m for m in manifest["models"] if m["spec"]["name"] != spec.name]
    manifest["models"].append({"spec": json.loads(spec.to_json()), "bytes": dest.stat().st_size})
    manifest["models"].sort(key=lambda m: m["spec"]["name"])
    _replace_atomically(man_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    print(f"shipped {spec.name}: {dest} ({dest.stat().st_size / 1e3:.0f} kB, sha256 {spec.sha256[:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
