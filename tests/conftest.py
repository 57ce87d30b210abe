import os


import pytest

# Tests are written for 2-core CI machines: keep torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def _ray_session():
    """Shuts the suite's local Ray instance down once, at the end of the session (``local_ray`` starts it lazily)."""
    yield
    ray = __import__("sys").modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture()
def local_ray(_ray_session):
    """The suite's one local Ray instance (2 CPUs; start-up costs ~5 s, paid once): started on first use and kept
    for every later test that asks for it; zendeploy joins it instead of starting one. A test that needs another
    cluster (``farm_cluster``) shuts it down, and the next ``local_ray`` starts it again."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    if not ray.is_initialized():
        # address="local": always a fresh instance of our own, never a cluster some other job started here
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the tests marked slow (minutes each; make test leaves them out)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("ZENDEPLOY_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow (minutes of work): run with pytest --slow or ZENDEPLOY_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
