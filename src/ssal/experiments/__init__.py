"""Experiments: the demo, reproduction on user data, the ablation (``ssal demo | reproduce |
ablate``) and benchmarks defined as data (``ssal benchmark SPEC``).

Modules, one job each:

* :mod:`.schedule`: how long each stage runs (YAML presets in ``schedules/``);
* :mod:`.experiment`: one dataset, one split, one schedule, and how it is set up;
* :mod:`.pretraining`: pretraining runs, one per method and pretraining seed;
* :mod:`.protocols`: the evaluation protocols, a registry; :mod:`.seeds`: a pretrained encoder
  and several seeds' encoders evaluated; :mod:`.references`: the from-scratch references;
* :mod:`.notes`, :mod:`.figures`: the report's notes and figures; :mod:`.jobs`: the jobs;
  :mod:`.progress`: the line saying how far a job is (stage k of n, time left);
* benchmarks: :mod:`.spec`, :mod:`.corpus` (and :mod:`.corpus_cache`, the cut corpora kept as
  ``.ssal``), :mod:`.folds`, :mod:`.scoring`, :mod:`.runner`, :mod:`.report`;
  :mod:`.typed_yaml` reads the spec and schedule files.
"""

from .experiment import Experiment, prepare_experiment
from .jobs import ablation_variants, run_ablation, run_demo, run_kfold, run_protocols
from .protocols import PROTOCOLS, Protocol, evaluate_encoder
from .runner import run_benchmark
from .schedule import SCHEDULES, EvalSchedule, PretrainSchedule, Schedule, load_schedule
from .spec import BenchmarkSpec, load_spec, shipped_specs

__all__ = [
    "run_benchmark", "load_spec", "shipped_specs", "BenchmarkSpec",
    "SCHEDULES", "Schedule", "PretrainSchedule", "EvalSchedule", "load_schedule",
    "Experiment", "prepare_experiment", "PROTOCOLS", "Protocol", "evaluate_encoder",
    "run_demo", "run_protocols", "run_kfold", "run_ablation", "ablation_variants",
]
