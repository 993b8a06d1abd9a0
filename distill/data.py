"""What the distillation reads from a dataset, as arrays.

In:  an `nbody.dataset.Dataset` (`distill_data`), or arrays a test or a planted model makes.
Out: `DistillData`: the law, dimension, softening, and the training and test splits' states
     [G, n, 2*dim+2] and true accelerations [G, n, dim].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbody.laws import Law, get_law


@dataclass(frozen=True)
class DistillData:
    """Everything the stage needs from a dataset.

    Attributes:
        law: the pair law; dim: 2|3; softening: eps of r' = r + eps.
        train_x, test_x: states [G, n, 2*dim+2]; train_a, test_a: true accelerations [G, n, dim].
    """

    law: Law
    dim: int
    softening: float
    train_x: np.ndarray
    train_a: np.ndarray
    test_x: np.ndarray
    test_a: np.ndarray


def distill_data(dataset) -> DistillData:
    """The `DistillData` of an `nbody.dataset.Dataset`: its law, dim, softening, and the
    train and test splits' states and accelerations."""
    law = dataset.law if isinstance(dataset.law, Law) else get_law(str(dataset.law))
    train_x, train_a = dataset.split("train").graphs()
    test_x, test_a = dataset.split("test").graphs()
    return DistillData(law, int(dataset.config.dim), float(dataset.config.softening), train_x, train_a,
                       test_x, test_a)
