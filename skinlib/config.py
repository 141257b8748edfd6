"""One place that configures a run: dataset, output folder, epochs, batch sizes, seed.

Every notebook starts with ``cfg = RunConfig.from_env()``. Environment variables
override the defaults, so the same notebooks run on the built-in sample, in CI
with a quick profile, or on a real dataset:

=====================  ==================================================
``SKINLIB_DATA``       dataset folder (default: the built-in sample)
``SKINLIB_RUN``        output folder for caches, models, figures
``SKINLIB_EPOCHS_V1``  epochs of run 1 (default 10, the original)
``SKINLIB_EPOCHS_V2``  epochs of run 2 (default 100, the original)
``SKINLIB_SEED``       seed of the split, weights and augmentation (default 0)
``SKINLIB_PROFILE``    ``quick``: few epochs, for CI and a first look
=====================  ==================================================
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = ["RunConfig", "project_dir", "sample_dir"]

SAMPLE_SIZE = 200
SAMPLE_SEED = 0


def project_dir() -> Path:
    """The checkout this package lives in, or a per-user cache folder when installed."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return here
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skinlib"


def sample_dir(create: bool = True) -> Path:
    """The built-in synthetic sample dataset, generated on first use (git-ignored)."""
    from skinlib.sample import make_sample

    path = project_dir() / "data" / f"sample-n{SAMPLE_SIZE}-seed{SAMPLE_SEED}"
    if create and not path.exists():
        try:
            make_sample(path, n=SAMPLE_SIZE, seed=SAMPLE_SEED)
        except FileExistsError:  # another process made it meanwhile
            pass
    return path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected a whole number") from None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of one run. Build it with :meth:`from_env`; change it with ``dataclasses.replace``."""

    data: Path
    run_dir: Path
    seed: int = 0
    epochs_v1: int = 10
    batch_v1: int = 128
    epochs_v2: int = 100
    batch_v2: int = 32
    test_size: float = 0.2
    val_size: float = 0.1
    profile: str = "full"

    @classmethod
    def from_env(cls, **overrides) -> "RunConfig":
        """Defaults, then ``SKINLIB_*`` environment variables, then ``overrides``."""
        profile = os.environ.get("SKINLIB_PROFILE", "full").strip() or "full"
        if profile not in ("full", "quick"):
            raise ValueError(f"SKINLIB_PROFILE={profile!r}: expected 'full' or 'quick'")
        data_env = os.environ.get("SKINLIB_DATA", "").strip()
        data = Path(data_env).expanduser() if data_env else sample_dir()
        run_env = os.environ.get("SKINLIB_RUN", "").strip()
        run_dir = Path(run_env).expanduser() if run_env else project_dir() / "runs" / (
            "sample" if not data_env else Path(data).name
        )
        quick = profile == "quick"
        values = dict(
            data=data,
            run_dir=run_dir,
            seed=_env_int("SKINLIB_SEED", 0),
            epochs_v1=_env_int("SKINLIB_EPOCHS_V1", 3 if quick else 10),
            epochs_v2=_env_int("SKINLIB_EPOCHS_V2", 5 if quick else 100),
            profile=profile,
        )
        values.update(overrides)
        return cls(**values)
