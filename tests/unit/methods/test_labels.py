"""ψ of the auxiliary-label generators: the config's, else the dataset's class hierarchy's, else
the papers' 5."""

from dataclasses import replace

import pytest
from fixtures import synthetic_config

from auxbench.data import make_synthetic
from auxbench.methods import create_method
from auxbench.methods.labels import DEFAULT_PSI

GENERATORS = ("maxl", "maxl-fo", "wa-maxl", "rl-aux", "wa-rl-aux", "random-aux")


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_train=40, n_test=10, num_classes=4, aux_per_class=2, seed=0)


@pytest.mark.parametrize("name", GENERATORS)
def test_psi_comes_from_the_config_then_the_hierarchy_then_the_default(synthetic, name):
    def psi(dataset, **params):
        config = synthetic_config(method=name, method_params=params).validate()
        return create_method(name, config, dataset).psi

    assert synthetic.hierarchy_psi is None and psi(synthetic) == DEFAULT_PSI == 5
    hierarchy = replace(synthetic, hierarchy_psi=3)
    assert psi(hierarchy) == 3
    assert psi(hierarchy, psi=4) == 4
