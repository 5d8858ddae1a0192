"""The benchmark suite behind ``usgan bench``: each workload timed, in one process, in the
plain reference form and in usgan's form (docs/benchmarks.md).

- `usgan.benchmarks.suite`: which workloads, how often; ``run(settings, command)`` -> result
- `usgan.benchmarks.training`, `.sampling`, `.metrics`: the workloads and their two forms
- `usgan.benchmarks.forms`: how one form is measured; `.measure`: timers, memory, FLOPs, peaks
- `usgan.benchmarks.profile`: where the time goes (``--profile``: top operators, torch.profiler)
- `usgan.benchmarks.report`: the table, the Markdown section, the JSON
- `usgan.benchmarks.quality`, `.quality_report`: ``usgan bench quality``, what each form
  trains in a wall-clock budget, scored on held-out images (docs/benchmarks.md)

It imports `usgan.core` only (networks through the public factory), never a plugin module.
"""
