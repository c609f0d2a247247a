"""The search races its candidates: each evaluation carries the best speedup so far (TimingSettings.race_below), so
that the judge stops timing a clear loser early; the re-timing of the leaders never races, `race=False` and
`--no-race` turn it off, and the mark never changes which verdict a cached evaluation stands for."""

from test_verified_best import TASK, NoisyEvaluator, run

from ksdk.models import Task, TimingSettings


class Marks(NoisyEvaluator):
    """NoisyEvaluator that also keeps the race mark of every task it was given."""

    def __init__(self):
        super().__init__()
        self.marks: list = []

    async def evaluate(self, task, candidate):
        self.marks.append(task.timing.race_below)
        return await super().evaluate(task, candidate)


def test_each_search_evaluation_races_against_the_best_so_far_and_the_retiming_never_does(tmp_path):
    ev = Marks()
    run(tmp_path, ev)
    # the search: X = 1 (1x), X = 2 (2x), X = 3 (5x, its luck), X = 4; then 20 re-timing evaluations
    assert ev.marks[:4] == [None, 1.0, 2.0, 5.0]
    assert ev.marks[4:] == [None] * 20


def test_racing_off_times_every_candidate_to_the_usual_precision(tmp_path):
    ev = Marks()
    run(tmp_path, ev, race=False)
    assert ev.marks == [None] * 24
    assert '"race": false' in (tmp_path / "run" / "run.json").read_text()


def test_a_task_that_sets_its_own_mark_keeps_it(tmp_path):
    ev = Marks()
    own = TASK.model_copy(update={"timing": TimingSettings(race_below=0.5)})
    from ksdk.evolution.api import evolve
    from ksdk.models import Candidate
    from toy_plugins import StepMutator

    evolve(own, backend=ev, mutator=StepMutator(), out=tmp_path / "run", progress=False, handle_signals=False,
           max_candidates=3, retime_rounds=0, seed=Candidate(source="X = 1\nSLEEP = 0\n", language="toy"))
    assert ev.marks == [0.5, 0.5, 0.5]


def test_the_mark_is_not_part_of_the_cache_key():
    raced = Task(name="t", source="x", timing=TimingSettings(race_below=3.0))
    assert raced.digest == Task(name="t", source="x").digest
    assert Task(name="t", source="x", timing=TimingSettings(warmup=3)).digest != raced.digest
