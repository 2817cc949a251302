"""The batch split across threads (``parallel``) and the forward without caches (``Layer.inference``).

A training step in parts must be the same step: the same loss and the same
gradients as the whole batch in one thread (to float64 rounding), the same
numbers bit for bit when repeated, and replicas must share the parameters
(an update by the optimizer reaches every thread).
"""
import os
import signal
import time
import types

import numpy as np
import pytest

from minipixel import threads as threads_module
from minipixel.data import labels_to_inputs
from minipixel.layers import Layer
from minipixel.losses import nll_per_image, softmax_cross_entropy
from minipixel.model import PixelCNNConfig, build_model
from minipixel.optim import Adam
from minipixel.train import evaluate, train_step
from minipixel import step as step_module
from minipixel import evaluate as evaluate_module

CONFIGS = {
    "pixelcnn": PixelCNNConfig(height=6, width=6, channels=3, levels=4, filters=12, blocks=2, input_kernel=3),
    "gated": PixelCNNConfig(height=6, width=6, channels=1, levels=4, filters=8, blocks=2, input_kernel=3,
                            arch="gated", classes=3),
}


@pytest.fixture
def threads():
    """Set the thread count for one test; the default comes back after it."""
    yield threads_module.set_threads
    threads_module.set_threads(None)


def batch(cfg, n=7, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, cfg.levels, (n, cfg.height, cfg.width, cfg.channels)).astype(np.uint8)
    classes = rng.integers(0, cfg.classes, n) if cfg.classes else None
    return labels_to_inputs(labels, cfg.levels, np.float64), labels, classes


def whole_batch_gradients(model, x, labels, classes):
    """The plain, one-thread step: forward, loss, backward on the whole batch."""
    loss, dlogits = softmax_cross_entropy(model.forward(x, classes), labels)
    model.backward(dlogits)
    return loss, {k: g.copy() for k, g in model.gradients().items()}


@pytest.mark.parametrize("arch", sorted(CONFIGS))
@pytest.mark.parametrize("n_threads", [2, 3, 7])
def test_a_step_in_parts_equals_the_whole_batch(arch, n_threads, threads):
    cfg = CONFIGS[arch]
    model = build_model(cfg, seed=1, dtype="float64")
    x, labels, classes = batch(cfg)
    want_loss, want = whole_batch_gradients(model, x, labels, classes)
    threads(n_threads)
    assert len(threads_module.replicas(model, len(x))) == n_threads
    loss = step_module.loss_and_gradients(model, x, labels, classes)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for name, g in model.gradients().items():
        np.testing.assert_allclose(g, want[name], rtol=1e-10, atol=1e-13, err_msg=name)


def test_more_threads_than_images_gives_one_part_per_image(threads):
    cfg = CONFIGS["pixelcnn"]
    model = build_model(cfg, dtype="float64")
    threads(8)
    assert len(threads_module.replicas(model, 3)) == 3
    assert [s.stop - s.start for s in threads_module.split(7, 3)] == [2, 2, 3]


def test_replicas_share_the_parameters_and_nothing_else(threads):
    threads(2)
    model = build_model(CONFIGS["pixelcnn"], dtype="float64")
    twin = threads_module.replicas(model, 4)[1]
    for (name, p, g), (_, tp, tg) in zip(model.named_parameters(), twin.named_parameters()):
        assert tp is p, name  # the optimizer's updates reach the twin
        assert tg is not g, name  # each thread fills its own gradients
    x, labels, classes = batch(CONFIGS["pixelcnn"])
    optimizer = Adam(model.parameters())
    train_step(model, optimizer, x, labels)
    before = {k: p.copy() for k, p in twin.parameters().items()}
    train_step(model, optimizer, x, labels)
    assert all(not np.array_equal(p, before[k]) for k, p in twin.parameters().items() if k.endswith("W"))


def held(obj):
    """Every object reachable from ``obj`` through attributes, lists, tuples and dicts (modules aside)."""
    seen, stack = {}, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, types.ModuleType):
            continue
        seen[id(o)] = o
        if isinstance(o, dict):
            stack += o.values()
        elif isinstance(o, (list, tuple)):
            stack += o
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            stack += vars(o).values()
    return list(seen.values())


def test_a_replica_copies_no_caches_no_flat_arrays_and_no_other_replica(threads):
    cfg = CONFIGS["pixelcnn"]
    model = build_model(cfg, dtype="float64")
    assert threads_module.replica(model).packed is None  # also before any replicas() call
    whole_batch_gradients(model, *batch(cfg))  # the model's layers now hold forward's caches
    assert any(getattr(layer, name) is not None for layer in model.layers() for name in layer.CACHE)
    threads(3)
    made = threads_module.replicas(model, 4)
    assert len(made) == 3
    for twin in made[1:]:
        # Its gradients are its own arrays, not views of the model's flat one: it has no flat arrays.
        assert twin.packed is None
        assert all(getattr(layer, name) is None for layer in twin.layers() for name in layer.CACHE)
        # Its own layers and nothing of the model or of the replicas made before it.
        assert {id(o) for o in held(twin) if isinstance(o, Layer)} == {id(layer) for layer in twin.layers()}
    # A replica is a model like any other: it makes replicas of its own, sharing the same parameters.
    again = threads_module.replicas(made[2], 4)
    assert len(again) == 3 and again[0] is made[2]
    for name, p in model.parameters().items():
        assert all(m.parameters()[name] is p for m in again), name


def test_the_same_thread_count_gives_the_same_bits(threads):
    threads(2)
    cfg = CONFIGS["pixelcnn"]
    runs = []
    for _ in range(2):
        model = build_model(cfg, seed=3)  # float32: where rounding order would show
        rng = np.random.default_rng(5)
        labels = rng.integers(0, cfg.levels, (9, cfg.height, cfg.width, cfg.channels)).astype(np.uint8)
        x = labels_to_inputs(labels, cfg.levels, np.float32)
        optimizer = Adam(model.parameters())
        losses = [train_step(model, optimizer, x, labels) for _ in range(3)]
        runs.append((losses, model.parameters()))
    assert runs[0][0] == runs[1][0]
    for name, p in runs[0][1].items():
        np.testing.assert_array_equal(p, runs[1][1][name], err_msg=name)


def test_evaluation_in_parts_equals_one_thread(threads):
    cfg = CONFIGS["gated"]
    model = build_model(cfg, seed=2, dtype="float64")
    x, labels, classes = batch(cfg, n=10)
    want = nll_per_image(model.forward(x, classes), labels)
    threads(3)
    np.testing.assert_allclose(evaluate_module.nll(model, x, labels, classes), want, rtol=1e-12)
    got = evaluate(model, labels, batch_size=4, classes=classes)
    assert got["nll_nats"] == pytest.approx(want.mean(), rel=1e-12)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_inference_keeps_no_caches_and_gives_the_same_logits(arch):
    cfg = CONFIGS[arch]
    model = build_model(cfg, seed=4, dtype="float64")
    x, labels, classes = batch(cfg)
    want = model.forward(x, classes).copy()
    cached = [(layer, name) for layer in model.layers() for name in layer.CACHE if getattr(layer, name) is not None]
    kinds = {type(layer).__name__ for layer, _ in cached}
    assert kinds >= ({"MaskedConv2d", "ReLU", "Gate"} if arch == "gated" else {"MaskedConv2d", "ReLU"})
    with model.inference():
        np.testing.assert_array_equal(model.forward(x, classes), want)
        assert all(getattr(layer, name) is None for layer, name in cached)
    # Nothing to go back through: backward says so instead of using stale caches.
    with pytest.raises(RuntimeError, match="no forward to go back through"):
        model.backward(np.ones(want.shape))
    # Out of inference, forward keeps its caches again and backward works.
    model.forward(x, classes)
    model.backward(np.ones(want.shape))


def test_threads_1_means_one_blas_thread_too(threads):
    # --threads 1 beside another busy process: BLAS's own extra threads spun against it (14x slower).
    before = threads_module.blas_threads()
    if before is None or before < 2:
        pytest.skip("BLAS runs on one thread here already (or cannot be told)")
    seen = threads_module.blas_threads
    assert threads_module.run([seen]) == [before]  # no --threads: BLAS as it is
    threads(1)
    assert threads_module.run([seen]) == [1] and threads_module.blas_threads_in(1) == 1
    threads(2)
    assert threads_module.run([seen]) == [min(before, 2)]  # one part (a batch of 1): at most 2
    assert threads_module.run([seen, seen]) == [1, 1]  # parts in threads: one BLAS thread each
    assert threads_module.blas_threads() == before  # and back after each


def test_threads_are_validated():
    for bad in (0, -1, 1.5, "2", 10**6):
        with pytest.raises(ValueError, match="threads: expected an int from 1 to 256"):
            threads_module.set_threads(bad)


def test_without_an_affinity_mask_the_cores_are_the_machines(monkeypatch):
    """Where os has no sched_getaffinity (not Linux): os.cpu_count(), or 1 when it does not know."""
    if hasattr(os, "sched_getaffinity"):
        assert threads_module.cpu_count() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    for machine, cores in ((6, 6), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda: machine)
        assert threads_module.cpu_count() == cores


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_still_runs_work_in_threads():
    # A child forked after the thread pool exists has none of its threads: with the
    # parent's pool it would hang on the first task (as mutmut's forked workers did).
    assert threads_module.run([lambda: 1, lambda: 2]) == [1, 2]  # the pool exists now
    pid = os.fork()
    if pid == 0:
        try:
            code = 0 if threads_module.run([lambda: 3, lambda: 4]) == [3, 4] else 1
        except BaseException:
            code = 2
        os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the thread pool it inherited")
    assert os.waitstatus_to_exitcode(status) == 0


def test_limit_blas_caps_the_blas_threads_of_the_whole_process():
    # what an MPI rank does at its start, so that the ranks on one host do not fight over its cores
    from threadpoolctl import threadpool_limits

    if threads_module.blas_threads() is None:
        pytest.skip("no BLAS whose threads can be told")
    before = threads_module.blas_threads()
    with threadpool_limits(limits=2, user_api="blas"):  # puts the process's limit back on the way out
        assert threads_module.blas_threads() == 2
        threads_module.limit_blas(1)
        assert threads_module.blas_threads() == 1
        assert threads_module.run([threads_module.blas_threads]) == [1]  # and stays: no run lifts it
    assert threads_module.blas_threads() == before


def test_after_a_fork_the_pool_whose_threads_are_gone_is_dropped():
    # In a forked child the parent's pool is still there but its threads are not; the
    # at-fork hook drops it. Here the pool is shut down to stand for that child's view.
    assert threads_module.run([lambda: 1, lambda: 2]) == [1, 2]
    threads_module._pool.shutdown()  # a pool that takes no more tasks, as in the child
    threads_module._forget_pool()  # what os.register_at_fork runs in the child
    assert threads_module.run([lambda: 3, lambda: 4]) == [3, 4]


class _Controller:
    """A stand-in for threadpoolctl's controller that reports the given libraries."""

    def __init__(self, libraries):
        self.libraries = libraries

    def info(self):
        return self.libraries


def test_the_blas_threads_are_read_from_the_blas_library_alone(monkeypatch):
    openmp = {"user_api": "openmp", "num_threads": 7}
    monkeypatch.setattr(threads_module, "_blas", lambda: _Controller([openmp, {"user_api": "blas", "num_threads": 3}]))
    assert threads_module.blas_threads() == 3
    monkeypatch.setattr(threads_module, "_blas", lambda: _Controller([openmp]))  # no BLAS that can be told
    assert threads_module.blas_threads() is None


def test_one_task_runs_with_blas_as_it_is_capped_by_the_threads_asked_for(monkeypatch, threads):
    # what run() limits BLAS to around one task; with tasks in threads, one BLAS thread each
    monkeypatch.setattr(threads_module, "_blas", lambda: _Controller([{"user_api": "blas", "num_threads": 4}]))
    assert [threads_module.blas_threads_in(parts) for parts in (1, 2, 3)] == [4, 1, 1]
    threads(2)
    assert [threads_module.blas_threads_in(parts) for parts in (1, 2)] == [2, 1]
    threads(8)  # more threads than BLAS has: BLAS as it is
    assert threads_module.blas_threads_in(1) == 4
    monkeypatch.setattr(threads_module, "_blas", lambda: _Controller([]))  # BLAS's threads cannot be told
    assert threads_module.blas_threads_in(1) is None and threads_module.blas_threads_in(2) == 1
    threads(None)
    assert threads_module.blas_threads_in(1) is None


def test_the_time_estimate_is_the_faster_of_two_passes_of_one_blank_image_times_the_passes_of_the_work(monkeypatch):
    # the first pass pays for buffers and BLAS's start: here it takes 3 s, the second 2 s (a third would take 1 s)
    seen = []
    monkeypatch.setattr(evaluate_module, "forward", lambda model, x, classes: seen.append((x.shape, x.max(), classes)))

    def estimate(cfg, *args):
        clock = iter([0.0, 3.0, 3.0, 5.0, 5.0, 6.0])
        monkeypatch.setattr(evaluate_module, "time", type("Clock", (), {"perf_counter": lambda: next(clock)}))
        return evaluate_module.estimate_seconds(build_model(cfg, seed=1), *args)

    colour, conditional = CONFIGS["pixelcnn"], CONFIGS["gated"]
    assert estimate(colour, 10) == 2 * 10  # one pass per image
    assert estimate(colour, 10, "cached") == 2 * 10 * 2.5
    assert estimate(colour, 10, "naive", 4, 5) == 2 * 10 * 4 * 5 * 3  # one pass per sub-pixel of 4x5 RGB images
    assert [shape for shape, _, _ in seen] == [(1, 6, 6, 3)] * 4 + [(1, 4, 5, 3)] * 2 and not any(x for _, x, _ in seen)
    seen.clear()
    assert estimate(conditional, 3, "wavefront") == 2 * 3 * 2
    assert [(shape, list(classes)) for shape, _, classes in seen] == [((1, 6, 6, 1), [0])] * 2


def test_a_long_evaluation_says_its_estimate_and_its_images_before_it_starts(monkeypatch, capsys):
    cfg = CONFIGS["pixelcnn"]
    _, labels, _ = batch(cfg, n=3)
    monkeypatch.setattr(evaluate_module, "estimate_seconds", lambda model, images: 45.0 * images / 3)
    evaluate_module.evaluate(build_model(cfg, seed=1), labels, progress=True)
    assert capsys.readouterr().err.splitlines()[0] == ("evaluating 3 images: about 45 s (estimated from one forward "
                                                       "pass); Ctrl-C stops it")
    evaluate_module.evaluate(build_model(cfg, seed=1), labels)  # no progress: quiet
    assert capsys.readouterr().err == ""


class _Libraries:
    """A stand-in for threadpoolctl's controller over a BLAS and an OpenMP runtime: ``limit``
    does what threadpoolctl's does (``limits=None`` changes nothing, ``user_api=None`` reaches
    every library) and returns a limiter whose ``restore_original_limits()`` puts back the
    threads it found."""

    def __init__(self, **threads):
        self.threads = threads

    def info(self):
        return [{"user_api": api, "num_threads": n} for api, n in self.threads.items()]

    def limit(self, limits=None, user_api=None):
        found = dict(self.threads)
        for api in self.threads:
            if limits is not None and user_api in (None, api):
                self.threads[api] = limits
        return types.SimpleNamespace(restore_original_limits=lambda: self.threads.update(found))


def test_run_and_limit_blas_cap_blas_alone(monkeypatch, threads):
    libraries = _Libraries(blas=4, openmp=4)
    monkeypatch.setattr(threads_module, "_blas", lambda: libraries)
    seen = lambda: dict(libraries.threads)  # noqa: E731 - what the BLAS and OpenMP threads are inside a task
    assert threads_module.run([seen]) == [{"blas": 4, "openmp": 4}]  # one task, no --threads: as it is
    threads(2)
    assert threads_module.run([seen]) == [{"blas": 2, "openmp": 4}]
    assert threads_module.run([seen, seen, seen]) == [{"blas": 1, "openmp": 4}] * 3
    assert libraries.threads == {"blas": 4, "openmp": 4}  # given back after each run
    threads_module.limit_blas(3)
    assert libraries.threads == {"blas": 3, "openmp": 4}


def test_overlapping_blas_limits_hold_the_lowest_and_give_back_blas_as_it_was(monkeypatch):
    libraries = _Libraries(blas=4, openmp=4)
    monkeypatch.setattr(threads_module, "_blas", lambda: libraries)
    blas = lambda: libraries.threads["blas"]  # noqa: E731
    for first, second in ((1, 2), (2, 1)):  # blocks of two threads, entered and ended in either order
        for first_out in (True, False):
            a, b = threads_module.blas_limit(first), threads_module.blas_limit(second)
            a.__enter__()
            b.__enter__()
            assert libraries.threads == {"blas": 1, "openmp": 4}  # the lowest, and BLAS alone
            (a if first_out else b).__exit__(None, None, None)
            left = second if first_out else first  # the block left open holds
            assert libraries.threads == {"blas": left, "openmp": 4}
            (b if first_out else a).__exit__(None, None, None)
            assert libraries.threads == {"blas": 4, "openmp": 4}
    with threads_module.blas_limit(None):  # BLAS that cannot be told: left alone
        assert blas() == 4
    with pytest.raises(KeyError), threads_module.blas_limit(3):
        raise KeyError  # an error in the block gives BLAS back too
    assert blas() == 4 and threads_module._limits == []


def _run_together(n):
    """``run`` of ``n`` tasks that pass a barrier only when all ``n`` run at the same time;
    each returns the thread it ran in."""
    import threading

    barrier = threading.Barrier(n, timeout=20)

    def task():
        barrier.wait()
        return threading.current_thread()

    ran = threads_module.run([task] * n)
    assert ran[0] is threading.current_thread()  # the first in the calling thread
    assert len(set(ran[1:])) == n - 1 and all(t.name.startswith("minipixel_") for t in ran[1:])
    return set(ran[1:])


def test_the_tasks_run_at_once_in_threads_of_one_pool_kept_between_runs(monkeypatch):
    monkeypatch.setattr(threads_module, "_pool", None)
    for n in (3, 4, 40):  # the pool grows to the tasks it is given, past the executor's default size too
        first = _run_together(n)
        assert threads_module._pool._max_workers == n - 1
    pool = threads_module._pool
    assert _run_together(40) == first and threads_module._pool is pool  # the same threads, not new ones
    _run_together(3)
    assert threads_module._pool is pool


def test_replicas_are_made_once_one_per_thread_beyond_the_first(monkeypatch, threads):
    made = []
    replica = threads_module.replica
    monkeypatch.setattr(threads_module, "replica", lambda model: made.append(replica(model)) or made[-1])
    model = build_model(CONFIGS["pixelcnn"], dtype="float64")
    threads(3)
    assert threads_module.replicas(model, 8) == [model, *made] and len(made) == 2
    assert threads_module.replicas(model, 2) == [model, made[0]]  # fewer images than threads
    assert threads_module.replicas(model, 8) == [model, *made] and len(made) == 2  # none made again
