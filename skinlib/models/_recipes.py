"""Each model's default training settings, in one place.

:func:`skinlib.train` uses them when it is given a model's name and no other value;
:class:`skinlib.RunConfig` takes its default epochs and batch sizes from them, and so
do the results commands. Kept apart from :mod:`skinlib.models._builders` so that reading them
does not import TensorFlow.

>>> RECIPES["v2"]["epochs"], RECIPES["v2"]["batch_size"]
(100, 32)
"""

from __future__ import annotations

__all__ = ["RECIPES"]

#: Each model's default training settings (:func:`skinlib.train` uses them when it is
#: given a model's name and no other value). v1 and v2 keep their published
#: settings; v3's recipe is this project's: light augmentation, AdamW with warm-up
#: and cosine decay, the epoch with the best validation ROC AUC, and test-time
#: augmentation over the eight flips and quarter turns.
RECIPES: dict[str, dict] = {
    "v1": dict(epochs=10, batch_size=128, learning_rate=1e-3, augment=False, optimizer="adam",
               schedule="constant", best_epoch=False, tta=False),
    "v2": dict(epochs=100, batch_size=32, learning_rate=1e-3, augment=False, optimizer="adam",
               schedule="constant", best_epoch=False, tta=False),
    "v3": dict(epochs=25, batch_size=64, learning_rate=2e-3, augment="full", optimizer="adamw",
               schedule="cosine", best_epoch=True, tta=True),
}
