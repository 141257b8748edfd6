"""Keras, imported once and quietly: TensorFlow's start-up notices kept out of notebook outputs."""

from __future__ import annotations

import os
import sys

# TensorFlow's C++ log lines (CUDA probing, tf.data attribute notices) would land in
# notebook outputs; 3 silences them unless the user has set the variable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


__all__ = ["import_keras"]


def import_keras():
    """Import Keras; with TF_CPP_MIN_LOG_LEVEL=3, hide TensorFlow's start-up notices.

    TensorFlow prints "oneDNN custom operations are on" and "Could not find cuda
    drivers" straight to file descriptor 2 before its logging honours
    TF_CPP_MIN_LOG_LEVEL, so they would reach notebook outputs. They are silenced
    for the import only; errors raise Python exceptions and still show.
    """
    if "keras" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        import keras
        return keras
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras
