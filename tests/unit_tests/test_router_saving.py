"""Saving while other processes save, load or die: the path always holds a loadable router.

Child processes are forked (fast: the routers are already fitted) and killed at chosen steps
or at random moments; each test takes well under two seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import filelock  # imported before forking, so that no child imports it
import pytest

from langchain_avengers import ClusterRouter, RouterFileError

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
CRASHED = 17


@pytest.fixture
def routers(small_jsonl: Path, keyword_embeddings) -> tuple[ClusterRouter, ClusterRouter]:
    """Two routers told apart by their cluster count."""
    return (
        ClusterRouter(n_clusters=4, nearest_clusters=2, embedder=keyword_embeddings).fit(
            small_jsonl
        ),
        ClusterRouter(n_clusters=3, nearest_clusters=1, embedder=keyword_embeddings).fit(
            small_jsonl
        ),
    )


def fork(work: Callable[[], object]) -> int:
    """Run ``work`` in a child process; its exit status is 0, 1 on an exception, or its own."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.alarm(20)  # never outlive a hung test
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def exit_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def load_cluster_count(path: Path, embedder) -> int:
    return ClusterRouter.load(path, embedder=embedder).n_clusters_


def own_files(path: Path) -> set[str]:
    """What a save leaves: the lock, router.json and one arrays file."""
    names = {p.name for p in path.iterdir()}
    arrays = {name for name in names if name.startswith("arrays-")}
    assert len(arrays) == 1, names
    return {".router.lock", "router.json", *arrays}


def save_alternately(routers: tuple[ClusterRouter, ...], path: Path, times: int | None) -> None:
    for router in itertools.islice(itertools.cycle(routers), times):
        router.save(path)


def crash_at_step(step: int) -> None:
    """Make the ``step``-th file operation of this (child) process exit without cleaning up."""
    counter = itertools.count()
    for name in ("replace", "fsync", "unlink", "rename"):
        operation = getattr(os, name)

        def crash_first(*args: object, _operation=operation, **kwargs: object) -> object:
            if next(counter) == step:
                os._exit(CRASHED)
            return _operation(*args, **kwargs)

        setattr(os, name, crash_first)


@needs_fork
@pytest.mark.slow
def test_a_save_killed_at_each_step_leaves_the_old_or_the_new_router(
    routers: tuple[ClusterRouter, ClusterRouter], tmp_path: Path, keyword_embeddings
) -> None:
    old, new = routers
    path = tmp_path / "router"
    outcomes = []
    for step in itertools.count():
        old.save(path)
        pid = fork(lambda step=step: (crash_at_step(step), new.save(path)))
        status = exit_status(pid)
        if status == 0:
            break
        assert status == CRASHED
        outcomes.append(load_cluster_count(path, keyword_embeddings))
    # fsync and rename of each file, then of the directory, then removal of the old arrays
    assert len(outcomes) >= 5
    assert set(outcomes) == {4, 3}  # crashes before and after router.json was replaced
    assert load_cluster_count(path, keyword_embeddings) == 3
    old.save(path)  # and the next save removes what the dead ones left
    assert [p.name for p in tmp_path.iterdir()] == ["router"]
    assert {p.name for p in path.iterdir()} == own_files(path)


@needs_fork
@pytest.mark.slow
def test_saves_killed_at_random_moments(
    routers: tuple[ClusterRouter, ClusterRouter], tmp_path: Path, keyword_embeddings
) -> None:
    path = routers[0].save(tmp_path / "router")
    rng = random.Random(8)
    for _ in range(25):
        pid = fork(lambda: save_alternately(routers, path, None))
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        assert exit_status(pid) == -signal.SIGKILL
        assert load_cluster_count(path, keyword_embeddings) in (4, 3)
    routers[1].save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["router"]
    assert {p.name for p in path.iterdir()} == own_files(path)


@needs_fork
@pytest.mark.slow
def test_loading_while_another_process_saves(
    routers: tuple[ClusterRouter, ClusterRouter], tmp_path: Path, keyword_embeddings
) -> None:
    path = routers[0].save(tmp_path / "router")
    pid = fork(lambda: save_alternately(routers, path, 60))
    seen, failures = set(), []
    while not (reaped := os.waitpid(pid, os.WNOHANG))[0]:
        try:
            seen.add(load_cluster_count(path, keyword_embeddings))
        except Exception as exc:
            failures.append(repr(exc))
    assert os.waitstatus_to_exitcode(reaped[1]) == 0
    assert failures == []
    assert seen == {4, 3}  # the loads really overlapped the saves


@pytest.mark.parametrize("workers", [pytest.param("processes", marks=needs_fork), "threads"])
def test_concurrent_saves_both_succeed_and_the_last_wins(
    routers: tuple[ClusterRouter, ClusterRouter],
    tmp_path: Path,
    keyword_embeddings,
    workers: str,
) -> None:
    path = tmp_path / "router"
    if workers == "processes":
        pids = [fork(lambda r=router: save_alternately((r,), path, 15)) for router in routers]
        assert [exit_status(pid) for pid in pids] == [0, 0]
    else:
        errors: list[BaseException] = []

        def save(router: ClusterRouter) -> None:
            try:
                save_alternately((router,), path, 15)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(router,)) for router in routers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
    assert load_cluster_count(path, keyword_embeddings) in (4, 3)
    assert {p.name for p in path.iterdir()} == own_files(path)


def test_a_save_waits_for_another_and_gives_up_clearly(
    routers: tuple[ClusterRouter, ClusterRouter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_avengers.routing import persistence as _persistence

    path = routers[0].save(tmp_path / "router")
    monkeypatch.setattr(_persistence, "SAVE_LOCK_TIMEOUT", 0.2)
    with (
        filelock.FileLock(path / ".router.lock"),
        pytest.raises(RouterFileError, match="another process has been saving") as info,
    ):
        routers[1].save(path)
    assert str(path) in str(info.value)


def test_a_save_between_reading_router_json_and_its_arrays(
    routers: tuple[ClusterRouter, ClusterRouter],
    tmp_path: Path,
    keyword_embeddings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = routers
    path = old.save(tmp_path / "router")
    stale = path / json.loads((path / "router.json").read_text())["arrays"]["file"]
    real_open, saved = os.open, []

    def open_after_a_save(file: str | Path, *args: object, **kwargs: object) -> int:
        if Path(file) == stale and not saved:
            saved.append(True)
            new.save(path)  # lands after router.json was read; removes the arrays it names
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_a_save)
    assert load_cluster_count(path, keyword_embeddings) == 3
    assert saved
    assert not stale.exists()
