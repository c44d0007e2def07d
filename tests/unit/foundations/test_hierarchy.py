import math

import pytest
import torch

from auxbench.foundations.hierarchy import block_label_information, chosen_label_entropy


def test_chosen_label_entropy_is_zero_when_each_class_gets_one_sub_label_and_ln_psi_when_even():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    collapsed = torch.tensor([2, 2, 2, 2, 0, 0, 0, 0])
    even = torch.tensor([0, 1, 0, 1, 1, 0, 1, 0])
    assert chosen_label_entropy(labels, collapsed, psi=2).item() == 0.0
    assert chosen_label_entropy(labels, even, psi=2).item() == pytest.approx(math.log(2))


def test_chosen_label_entropy_weights_each_class_by_its_share_of_the_batch():
    labels = torch.tensor([0, 0, 0, 1])  # class 0: 3 images over 3 sub-labels; class 1: one image
    sub_labels = torch.tensor([0, 1, 2, 0])
    assert chosen_label_entropy(labels, sub_labels, psi=3).item() == pytest.approx(
        0.75 * math.log(3)
    )


def test_block_label_information_is_high_only_for_confident_and_spread_labels():
    labels = torch.tensor([0, 0, 1, 1])
    eye = torch.eye(2)
    spread = torch.stack([eye[0], eye[1], eye[0], eye[1]])  # confident, both sub-labels used
    collapsed = torch.stack([eye[0], eye[0], eye[1], eye[1]])  # confident, one per class
    uniform = torch.full((4, 2), 0.5)  # spread on average, no image decided
    assert block_label_information(spread, labels).item() == pytest.approx(math.log(2))
    assert block_label_information(collapsed, labels).item() == pytest.approx(0.0, abs=1e-6)
    assert block_label_information(uniform, labels).item() == pytest.approx(0.0, abs=1e-6)


def test_block_label_information_has_a_gradient_towards_spreading_collapsed_labels():
    labels = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.1], [0.0, 2.0], [0.1, 2.0]], requires_grad=True)
    block_label_information(torch.softmax(logits, dim=1), labels).backward()
    # The second image of each class is pushed towards the sub-label its class does not use.
    assert logits.grad[1, 1] > logits.grad[1, 0] and logits.grad[3, 0] > logits.grad[3, 1]
