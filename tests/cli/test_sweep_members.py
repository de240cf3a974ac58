"""Sweep members composed on a shared base (value overrides applied in place) equal Hydra's own full
composition of each member, and the base is left as it was."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from nemotron.config import register_configs
from nemotron.config.dump import resolved_yaml
from nemotron.config.parse_cache import cached_parsing
from nemotron.common.paths import CONF_DIR
from nemotron.launchers.members import MemberComposer

COMMON = ["+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none"]


SUBDIRS = ["${hydra.job.num}", "${hydra.job.override_dirname}"]


@pytest.fixture(params=SUBDIRS, ids=["num", "override_dirname"])
def loader_and_master(tmp_path, request, monkeypatch):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        monkeypatch.chdir(tmp_path)  # a relative sweep dir, as the shipped default (outputs/...) is
        master = loader.load_configuration("config", [*COMMON, "hydra.sweep.dir=rel/sweep",
                                                      f"hydra.sweep.subdir={request.param}"], RunMode.MULTIRUN)
        HydraConfig.instance().set_config(master)
        yield loader, master


def full_config(loader, master, num, overrides):
    """What Hydra's basic launcher would run for member `num`: composed from scratch, run_dir resolved
    as hydra.core.utils.run_job does (os.path.abspath of sweep.dir/subdir); (output dir, config)."""
    cfg = loader.load_sweep_config(master, overrides)
    cfg.hydra.job.num = num
    out = Path(os.path.abspath(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)))
    cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    return out, cfg


def full_composition(loader, master, num, overrides):
    """(output dir, resolved YAML) of Hydra's own composition of member `num` (full_config)."""
    out, cfg = full_config(loader, master, num, overrides)
    return out, resolved_yaml(cfg)


MEMBERS = [
    ["optim.lr=0.001", "train.seed=3"],  # values only: the shared base
    ["optim.lr=0.002", "train.seed=4"],
    ["model=nano3_tiny", "optim.lr=0.001"],  # a group: its own base
    ["resources.nodes=2", "train.global_batch_size=16"],  # replaces an interpolation (${recipe.nodes})
    ["+cluster.env.FOO=bar", "optim.lr=0.003"],  # an add: composed from scratch
    ["data.prefixes=[/a,/b]", "data.generate_tiny=false"],  # a list value: composed from scratch
    ["data.name=other", "paths.cache_dir=/elsewhere"],  # read by an interpolation (data.cache_dir)
    ["optim.lr=0.001", "train.seed=3"],  # again: the base must be back as it was
]


@pytest.mark.parametrize("cached", [False, True], ids=["plain_parsing", "cached_parsing"])
def test_members_equal_hydras_full_composition_and_leave_the_base_unchanged(loader_and_master, cached):
    loader, master = loader_and_master
    composer = MemberComposer(loader, master)
    for num, extra in enumerate(MEMBERS):
        overrides = [*COMMON, *extra]
        with cached_parsing() if cached else nullcontext():  # as the launcher composes
            member = composer.compose(num, overrides, lambda cfg, changed: resolved_yaml(cfg))
        run_dir, expected = full_composition(loader, master, num, overrides)
        assert member.run_dir == run_dir
        assert member.rendered == expected, f"member {num} {extra} differs from Hydra's composition"
        assert f"run_dir: {run_dir}\n" in member.rendered


def test_members_config_yaml_from_cached_sections_equals_hydras_full_composition(loader_and_master):
    from nemotron.config.dump import SectionCache, config_yaml

    loader, master = loader_and_master
    composer, sections, seen = MemberComposer(loader, master), SectionCache(), set()
    for num, extra in enumerate(MEMBERS):
        overrides = [*COMMON, *extra]
        with cached_parsing():

            def render(cfg, changed):
                first = id(cfg) not in seen
                seen.add(id(cfg))
                return sections.config_yaml(cfg, frozenset() if first else changed)[0]

            member = composer.compose(num, overrides, render)
        expected = config_yaml(full_config(loader, master, num, overrides)[1])[0]
        assert member.rendered == expected, f"member {num} {extra} differs from Hydra's composition"



def test_members_hydra_node_equals_hydras_own(loader_and_master):
    """The per-member keys of Hydra's node (`overrides.task` written entry by entry on a shared base)
    are the ones Hydra's own composition of each member gives."""
    loader, master = loader_and_master
    composer = MemberComposer(loader, master)
    for num, extra in enumerate([*MEMBERS, ["train.seed=3", "optim.lr=0.001"], ["optim.lr=0.001"]]):
        overrides = [*COMMON, *extra]
        member = composer.compose(num, overrides, lambda cfg, changed: (
            list(cfg.hydra.overrides.task), cfg.hydra.job.override_dirname, cfg.hydra.job.num, cfg.hydra.job.id))
        cfg = full_config(loader, master, num, overrides)[1]
        expected = (list(cfg.hydra.overrides.task), cfg.hydra.job.override_dirname, num, f"{cfg.hydra.job.name}_{num}")
        assert member.rendered == expected, f"member {num} {extra}"

SECRET_MEMBERS = [
    ["data.name=plain"],  # the base's first member: no secret, its sections cached
    ["data.name='http://user:pw-in-a-uri@host/x'"],  # a changed value brings a URI password
    ["data.name=plain2"],
    ["data.name=tok-0123456789abcdef"],  # the value of a secret variable of this process
    ["data.name=plain3", "+cluster.env.FOO=bar"],  # cluster.env changes (composed on its own base)
]


def test_a_member_whose_changed_value_holds_a_secret_gets_config_yamls_references(loader_and_master, monkeypatch):
    """The cached sections hold no secret; a member bringing one (in a section it changes) is written
    as config_yaml writes it: the value replaced by `${oc.env:NAME}`, NAME -> value for the job."""
    from nemotron.config.dump import SectionCache, config_yaml

    monkeypatch.setenv("NEMOTRON_TEST_TOKEN", "tok-0123456789abcdef")
    loader, master = loader_and_master
    composer, sections, seen, found = MemberComposer(loader, master), SectionCache(), set(), []
    for num, extra in enumerate(SECRET_MEMBERS):
        overrides = [*COMMON, *extra]
        with cached_parsing():

            def render(cfg, changed):
                first = id(cfg) not in seen
                seen.add(id(cfg))
                return sections.config_yaml(cfg, frozenset() if first else changed)

            member = composer.compose(num, overrides, render)
        expected = config_yaml(full_config(loader, master, num, overrides)[1])
        assert member.rendered == expected, f"member {num} {extra} differs from Hydra's composition"
        found.append(sorted(set(member.rendered[1].values())))
    assert found == [[], ["pw-in-a-uri"], [], ["tok-0123456789abcdef"], []]


def test_hydra_job_num_interpolation_follows_each_member(loader_and_master):
    loader, master = loader_and_master
    composer = MemberComposer(loader, master)
    seeds = [composer.compose(n, [*COMMON, "train.seed=${hydra:job.num}", f"optim.lr={n + 1}e-3"],
                              lambda cfg, changed: cfg.train.seed).rendered for n in range(3)]
    assert seeds == [0, 1, 2]


def test_an_unknown_key_raises_hydras_override_error(loader_and_master):
    loader, master = loader_and_master
    with pytest.raises(Exception, match="model.num_layrs"):
        MemberComposer(loader, master).compose(0, [*COMMON, "model.num_layrs=3"], lambda cfg, changed: None)


CHECKED = [
    ["optim.lr=0.001", "train.seed=3"],  # the base's first member: validated in full, reads recorded
    ["optim.lr=0.0001", "optim.min_lr=0.001"],  # min_lr above lr
    ["train.global_batch_size=7"],  # not a multiple of the micro batch
    ["train.seed=-1"],  # out of range
    ["parallel.tensor_model_parallel_size=2"],  # does not divide the world
    ["model.num_attention_heads=3", "model.num_query_groups=3"],  # does not divide hidden
    ["resources.procs_per_node=2", "parallel.tensor_model_parallel_size=2", "train.global_batch_size=8"],  # valid
    ["model.seq_length=100000", "cluster.gpu_memory_gb=1", "preflight.memory=check"],  # memory: over 1 GiB
    ["optim.lr=0.002", "train.seed=4"],  # valid again
    ["model=nano3_tiny", "parallel.tensor_model_parallel_size=2"],  # its own base, its first member refused
    ["model=nano3_tiny", "optim.lr=0.1"],  # that base again: validated in full (no member of it passed yet)
    ["model=nano3_tiny", "parallel.tensor_model_parallel_size=2"],  # the refused first's values, after a valid one
]


def test_members_checked_by_their_rules_reads_get_the_lines_a_full_validation_gives(loader_and_master):
    from nemotron.config.rule_reads import check_member, check_recording
    from nemotron.config.validate import ConfigError, problems

    loader, master = loader_and_master
    composer, bases, reran = MemberComposer(loader, master), [], []

    def check(cfg, changed):
        expected = problems(cfg)  # every rule, as a full composition's validation runs them
        known = next((checked for base, checked in bases if base is cfg), None)
        try:
            if known is None:
                bases.append((cfg, check_recording(cfg)))
            else:
                check_member(cfg, known, changed)
            got = []
        except ConfigError as err:
            got = str(err).splitlines()
        reran.append(known is not None)
        return expected, got

    for num, extra in enumerate(CHECKED):
        expected, got = composer.compose(num, [*COMMON, *extra], check).rendered
        assert got == expected, f"member {num} {extra}"
        assert (expected == []) == (num in (0, 6, 8, 10)), (num, expected)
    assert reran == [False, *[True] * 8, False, False, True]


PARTS_MEMBERS = [
    ["optim.lr=0.001"],  # the base's first member: parts made, reads recorded
    ["optim.lr=0.002"],  # reads nothing the parts read: reused
    ["optim.lr=0.003", "cluster.cpus_per_task=3"],  # an executor parameter
    ["optim.lr=0.004", "resources.nodes=2"],  # nodes, and ranks in the check and rank commands
    ["optim.lr=0.005", "cluster.env_check=false"],  # the environment check step
    ["optim.lr=0.006", "tracker=mlflow"],  # a group (its own base): the check needs mlflow
    ["optim.lr=0.007"],  # back to the first's values: made again (earlier members varied keys the parts read)
]


def test_members_job_parts_from_the_cache_equal_parts_made_from_scratch(loader_and_master, tmp_path):
    from nemotron.launchers.parts_cache import PartsCache
    from nemotron.launchers.script import job_parts

    loader, master = loader_and_master
    composer, made = MemberComposer(loader, master), []
    cache = PartsCache(tmp_path, {}, make=lambda *args: made.append(args[0]) or job_parts(*args))
    for num, extra in enumerate(PARTS_MEMBERS):
        overrides = [*COMMON, *extra]
        with cached_parsing():
            got = composer.compose(num, overrides, lambda cfg, changed: cache.parts(cfg, changed, None, {})).rendered
        expected = job_parts(full_config(loader, master, num, overrides)[1], tmp_path, None, {}, {})
        assert (got.params, got.argv, got.python, got.max_requeues) == (
            expected.params, expected.argv, expected.python, expected.max_requeues
        ), f"member {num} {extra}"
    assert len(made) == 6  # member 1 reused the first member's parts; every other one was made
