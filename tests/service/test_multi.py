"""Several services of one backend used as one evaluator: load spread over them, failover, one backend only."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import toy_backend as toy
from service_proc import Service
from ksdk.evaluation import make_evaluator
from ksdk.errors import KsdkError
from ksdk.models import Candidate
from ksdk.service.multi import MultiEvaluator
from ksdk.tasks import task_from_source


@pytest.fixture
def two_services(toy_site, tmp_path):
    svcs = [Service(toy_site, tmp_path / f"s{i}", tmp_path / "ledger", ["--no-auth", "--workers", "1"]).start()
            for i in range(2)]
    yield svcs
    for s in svcs:
        s.stop()


def test_comma_separated_urls_make_one_pool_that_uses_every_service(two_services, tmp_path):
    ev = make_evaluator("toy_py", ",".join(s.url for s in two_services))
    assert isinstance(ev, MultiEvaluator) and ev.workers == 2 and ev.info().workers == 2
    task = task_from_source("toy", toy.TASK_SOURCE)
    cands = [Candidate(source=toy.SLOW.format(s=0.2) + f"tag = {i}\n", language="toy_py") for i in range(6)]

    async def go():
        try:
            return await asyncio.gather(*(ev.evaluate(task, c) for c in cands))
        finally:
            await ev.close()

    results = asyncio.run(go())
    assert all(r.correct for r in results) and [r.candidate_id for r in results] == [c.id for c in cands]
    pids = Counter(line.split()[1] for line in (tmp_path / "ledger").read_text().splitlines())
    assert len(pids) == 2 and min(pids.values()) >= 2  # both services' workers took a share


def test_a_dead_member_fails_over_to_the_others(two_services):
    two_services[0].kill()
    ev = make_evaluator("toy_py", ",".join(s.url for s in two_services))
    ev.members[0].retries = 0
    ev.members[0]._info = ev.members[1].service_info()  # known before it died
    task = task_from_source("toy", toy.TASK_SOURCE)
    r = asyncio.run(ev.evaluate(task, Candidate(source=toy.GOOD.format(n=9), language="toy_py")))
    assert r.correct


def test_members_must_share_one_backend(two_services):
    a = make_evaluator("toy_py", two_services[0].url)
    b = make_evaluator("toy_py", two_services[1].url)
    b.service_info()  # fetched, then made to look like another backend's
    b._info = b._info.model_copy(update={"backend": "cpu_c"})
    with pytest.raises(KsdkError, match="different backends .* one `ksdk evolve --backend B"):
        _ = MultiEvaluator([a, b]).workers
