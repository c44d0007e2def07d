import pytest
import torch
from fixtures import synthetic_config

from auxbench.data import make_synthetic
from auxbench.foundations.errors import ConfigError
from auxbench.training import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=400, n_test=100, num_classes=4, aux_per_class=2, seed=0)


def trainer_for(synthetic, seed=0, **params) -> Trainer:
    config = synthetic_config(method="random-aux", seed=seed, epochs=2, method_params=params)
    return Trainer(config, synthetic)


def aux_targets(trainer: Trainer, batch):
    task = next(task for task in trainer.tasks if task.name == "aux")
    targets, weights = task.targets(batch)
    assert weights is None
    return targets


def test_each_image_keeps_one_random_sub_label_within_its_class_block(synthetic):
    trainer = trainer_for(synthetic, psi=3)
    seen: dict[int, int] = {}
    for _ in range(2):  # two shuffled, augmented epochs: the same image, the same label
        for batch in trainer.batches():
            targets = aux_targets(trainer, batch)
            assert torch.equal(targets // 3, batch.labels)
            for index, target in zip(batch.index.tolist(), targets.tolist(), strict=True):
                assert seen.setdefault(index, target) == target
    assert len(seen) == len(trainer.train_split)
    sub_labels = torch.tensor(list(seen.values())) % 3
    counts = torch.bincount(sub_labels, minlength=3)
    assert counts.min() > len(seen) / 3 * 0.7  # drawn uniformly, not all one sub-label


def test_the_labels_follow_the_run_seed(synthetic):
    first, again, other = (trainer_for(synthetic, seed) for seed in (0, 0, 1))
    assert torch.equal(first.method.sub_labels, again.method.sub_labels)
    assert not torch.equal(first.method.sub_labels, other.method.sub_labels)


def test_fit_trains_the_auxiliary_head_logs_classes_used_and_checkpoints_the_labels(
    synthetic, tmp_path
):
    trainer = trainer_for(synthetic)
    metrics = trainer.fit(tmp_path)
    assert trainer.history[-1]["aux_classes_used"] == 4 * 5
    assert 0 <= metrics["test_acc_at_best_val"] <= 1
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert torch.equal(state["method"]["sub_labels"], trainer.method.sub_labels)


def test_bad_psi_is_refused(synthetic):
    with pytest.raises(ConfigError, match="psi"):
        trainer_for(synthetic, psi=0)
