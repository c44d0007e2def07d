"""Multi-domain datasets: one classification task per domain, each with its own splits.

A multi-domain dataset is read like any other (``RawDataset``), with the domain of each image as
its label and its class as the auxiliary label; ``assemble_domains`` turns that into one
``Dataset`` per domain. For ``cifar100-mtl`` (Auto-λ §5.2, after Rosenbaum et al. 2018 and Yu et
al. 2020) the domains are CIFAR-100's 20 superclasses (the files' ``coarse_labels``, named by
``coarse_label_names``) and each domain's task is a 5-way classification of its fine classes: an
image's label is the **rank of its fine label among the fine labels of its superclass, in
increasing order of fine label id** (e.g. ``people`` has the fine classes baby 2, boy 11, girl 35,
man 46, woman 98, labelled 0..4). Which fine classes a superclass has is read from the training
file's (coarse, fine) pairs.

A separate ``MultiDomainDataset`` rather than one ``Dataset``: its domains each have their own
classes, class names and splits, which a single-task ``Dataset`` (one label space) cannot hold
without overloading its fields; each domain is a plain ``Dataset``, so the single-task helpers
(splits, ``to``, normalisation) apply to it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import torch

from auxbench.data.assemble import RawDataset
from auxbench.data.dataset import DataError, Dataset, Split
from auxbench.data.split import stratified_split
from auxbench.data.transforms import channel_stats


def slug(name: str) -> str:
    """A column-friendly form of a domain name: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class MultiDomainDataset:
    """A dataset of several domains, each a ``Dataset`` (its ``name`` the domain's name, its own
    classes and train / validation / test splits); all share one normalisation (``mean``,
    ``std`` of the union of the domains' training splits) and augmentation."""

    name: str
    domains: tuple[Dataset, ...]
    source: str

    @property
    def domain_names(self) -> tuple[str, ...]:
        return tuple(domain.name for domain in self.domains)

    @property
    def slugs(self) -> tuple[str, ...]:
        """The domain names as used in column names (``val_acc_<slug>``)."""
        return tuple(slug(name) for name in self.domain_names)

    @property
    def num_classes(self) -> int:
        """Classes per domain (the same for every domain)."""
        return self.domains[0].num_classes

    @property
    def in_channels(self) -> int:
        return self.domains[0].in_channels

    @property
    def image_size(self) -> int:
        return self.domains[0].image_size

    def to(self, device: torch.device | str) -> MultiDomainDataset:
        """Return a copy whose splits live on ``device``."""
        return replace(self, domains=tuple(domain.to(device) for domain in self.domains))


def class_ranks(
    domains: torch.Tensor, classes: torch.Tensor, num_classes: int, names: tuple[str, ...], where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(domain, rank) of each class id in ``[0, num_classes)``, from the (domain, class) pairs of
    the training images: a class's rank is its position among its domain's classes sorted by id.

    Raises ``DataError`` when a class occurs in two domains or the domains differ in their number
    of classes (-1 marks classes without training images)."""
    pairs = torch.unique(torch.stack([domains, classes], dim=1), dim=0)  # sorted by domain, class
    domain_of = torch.full((num_classes,), -1, dtype=torch.int64)
    rank_of = torch.full((num_classes,), -1, dtype=torch.int64)
    counts = []
    for domain in range(len(names)):
        members = pairs[pairs[:, 0] == domain, 1]
        twice = members[domain_of[members] >= 0]
        if len(twice):
            other = names[int(domain_of[twice[0]])]
            raise DataError(
                f"{where}: class {int(twice[0])} occurs in the domains {other!r} and "
                f"{names[domain]!r}; each class must belong to one domain"
            )
        domain_of[members] = domain
        rank_of[members] = torch.arange(len(members))
        counts.append(len(members))
    if min(counts) < 2 or len(set(counts)) != 1:
        listing = ", ".join(f"{name} {count}" for name, count in zip(names, counts, strict=True))
        raise DataError(
            f"{where}: every domain needs the same number (at least 2) of classes; the training "
            f"images have: {listing}"
        )
    return domain_of, rank_of


def assemble_domains(raw: RawDataset, val_fraction: float, seed: int) -> MultiDomainDataset:
    """Split ``raw`` (labels: domains, auxiliary labels: classes) into one ``Dataset`` per domain.

    Each domain's validation split holds ``val_fraction`` of each of its classes (seeded by
    ``seed``; the hold-out is stratified by class, hence by domain and class), its test split its
    images of ``raw.test``. Labels are the classes' ranks within their domain (``class_ranks``).
    """
    if raw.aux_class_names is None or raw.train.aux_labels is None or raw.test.aux_labels is None:
        raise DataError(f"{raw.name}: a multi-domain dataset needs the class of every image")
    if raw.train.images.shape[1:] != raw.test.images.shape[1:]:
        raise DataError(
            f"{raw.name}: train images are {tuple(raw.train.images.shape[1:])} but test images are "
            f"{tuple(raw.test.images.shape[1:])}, in {raw.source}"
        )
    names, class_names = raw.class_names, raw.aux_class_names
    domain_of, rank_of = class_ranks(
        raw.train.labels, raw.train.aux_labels, len(class_names), names, raw.source
    )
    wrong = domain_of[raw.test.aux_labels] != raw.test.labels
    if wrong.any():
        first = int(torch.nonzero(wrong)[0, 0])
        fine, coarse = int(raw.test.aux_labels[first]), int(raw.test.labels[first])
        known = "no training images" if domain_of[fine] < 0 else repr(names[domain_of[fine]])
        raise DataError(
            f"{raw.source}: test image {first} has class {fine} in domain {names[coarse]!r}, but "
            f"in the training images that class has {known}"
        )
    if len(set(map(slug, names))) != len(names):
        raise DataError(f"{raw.source}: domain names {names} are not distinct once slugged")
    train_index, val_index = stratified_split(raw.train.aux_labels, val_fraction, seed)
    mean, std = channel_stats(raw.train.images[train_index])

    def of_domain(split: Split, domain: int) -> Split:
        index = torch.nonzero(split.labels == domain).flatten()
        return Split(split.images[index], rank_of[split.aux_labels[index]])

    domains = []
    for domain, name in enumerate(names):
        members = torch.nonzero(domain_of == domain).flatten()  # class ids in rank order
        domains.append(
            Dataset(
                name=name,
                train=of_domain(raw.train.subset(train_index), domain),
                val=of_domain(raw.train.subset(val_index), domain),
                test=of_domain(raw.test, domain),
                num_classes=len(members),
                class_names=tuple(class_names[int(i)] for i in members),
                num_aux_classes=None,
                aux_class_names=None,
                mean=mean,
                std=std,
                crop_padding=raw.crop_padding,
                horizontal_flip=raw.horizontal_flip,
                source=raw.source,
            )
        )
    return MultiDomainDataset(raw.name, tuple(domains), raw.source)
