"""``human``: a second head trained on the dataset's human auxiliary labels with a fixed λ."""

from __future__ import annotations

from auxbench.data import DataError
from auxbench.methods.base import Method, register
from auxbench.tasks import ClassificationTask, Task


@register
class HumanAuxiliary(Method):
    name = "human"
    description = "primary + human-labelled auxiliary task (e.g. CIFAR-100 fine classes), fixed λ"
    uses_lambda = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        if not dataset.has_human_aux:
            raise DataError(
                f"dataset {dataset.name!r} has no human auxiliary labels, so method 'human' "
                f"cannot run on it; `auxbench datasets` lists the datasets that have them"
            )

    def tasks(self) -> list[Task]:
        return [
            ClassificationTask(
                "aux",
                self.dataset.num_aux_classes,
                field="aux_label",
                loss=self.config.loss,
                gamma=self.config.focal_gamma,
            )
        ]
