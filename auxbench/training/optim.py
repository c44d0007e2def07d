"""What turns a run's task losses into parameter updates: the configured weighting (fixed
weights from the tasks), the SGD optimiser and lr schedule, and the functional view of a step for
weightings that look ahead."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from auxbench import weighting
from auxbench.config import TrainConfig
from auxbench.foundations.errors import ConfigError
from auxbench.foundations.lookahead import SGDSettings
from auxbench.tasks import Task
from auxbench.weighting import MetaStep, Weighting, settings_for


def create_weighting(config: TrainConfig, tasks: Sequence[Task]) -> Weighting:
    """The configured weighting of the ``tasks``' losses (primary: the primary tasks' indices),
    with its settings from ``weighting_params`` (``settings_for``); ``fixed`` takes each task's
    fixed weight (1 for primary tasks, λ or the task's own for auxiliary ones) unless the settings
    give ``weights``."""
    params = settings_for(config.weighting, config.weighting_params)
    if config.weighting == "fixed" and "weights" not in params:
        params["weights"] = [task.fixed_weight(config.lam) for task in tasks]
    try:
        return weighting.create(
            config.weighting,
            len(tasks),
            primary=[i for i, task in enumerate(tasks) if task.primary],
            gradient=config.gradient,
            gradient_params=config.gradient_params,
            **params,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"weighting {config.weighting!r}: {error}") from error


def create_optimizer(
    model: torch.nn.Module, task_weighting: Weighting, config: TrainConfig
) -> torch.optim.Optimizer:
    """SGD with the config's lr, momentum and weight decay on the model's parameters (Adam with
    its lr and weight decay when the config has ``optimizer: adam``), plus the weighting's
    learnable weights (Uncertainty) without weight decay."""
    if getattr(config, "optimizer", "sgd") == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    if task_weighting.parameters():
        optimizer.add_param_group({"params": task_weighting.parameters(), "weight_decay": 0})
    return optimizer


def create_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The config's lr schedule, stepped once per epoch: ``step`` (StepLR(lr_step, lr_gamma)) or
    ``cosine`` (from lr to 0 over ``epochs``: lr·(1 + cos(π·e / epochs)) / 2 in epoch e + 1)."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.lr_step, gamma=config.lr_gamma
    )


def buffer_copies(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the model's buffers, for functional calls that must not move its BatchNorm
    statistics."""
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def meta_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    task_losses: Callable[[dict[str, torch.Tensor], Any], list[torch.Tensor]],
    batch: Any,
    meta_batch: Any,
) -> MetaStep:
    """The ``MetaStep`` of one SGD step of ``model`` on ``batch`` for weightings that look ahead:
    its named parameters, ``task_losses(params, batch)`` (without side effects), the
    ``meta_batch``, and the optimiser's step (``SGDSettings``)."""
    named = dict(model.named_parameters())
    return MetaStep(
        params=named,
        task_losses=task_losses,
        batch=batch,
        meta_batch=meta_batch,
        sgd=SGDSettings.of(optimizer, named),
    )
