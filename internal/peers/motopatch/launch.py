"""Start moto's server with the portal's runtime patches applied.

Usage: python launch.py [moto_server arguments...]

Every module named patch_*.py next to this file is imported, in name
order, and its apply() called before moto's server starts. Each patch mends
one place where moto 5.2.5 answers differently from AWS, names that
upstream behaviour in its docstring, and has its own test (test_<name>.py
beside it, run by `go test ./internal/peers`).

The launcher never changes what AWS itself would do: a patch may only make
moto behave more like the AWS documentation says.
"""

import importlib
import pathlib
import sys


def apply_patches(folder: pathlib.Path) -> list[str]:
    """Import and apply every patch_*.py in folder; return their names."""
    sys.path.insert(0, str(folder))
    applied = []
    for path in sorted(folder.glob("patch_*.py")):
        module = importlib.import_module(path.stem)
        apply = getattr(module, "apply", None)
        if apply is None:
            raise SystemExit(f"moto patch {path.name} has no apply() function")
        apply()
        applied.append(path.stem)
    return applied


def main() -> None:
    applied = apply_patches(pathlib.Path(__file__).resolve().parent)
    print("moto patches applied: " + (", ".join(applied) or "none"), file=sys.stderr, flush=True)
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
