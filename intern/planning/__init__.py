"""Spending a run's budget well: measure what work costs here, then size the search to the budget.

- :mod:`.costs`: probes a training slot (s/step, stage start, eval s/item, whether branches
  should share a node's CPUs), caches the figures, updates them from the run's own events;
- :mod:`.budget_plan`: the plan (successive halving rounds, steps, dev sizes, the reserve for
  the final evaluation), re-sized at every review from what things really cost.

The supervisor (``actors/supervisor.py``) makes and follows the plan; everything here is
plain Python that tests drive with scripted costs.
"""

from intern.planning.budget_plan import Plan, PlanInputs, RoundPlan, make_plan, replan
from intern.planning.costs import Costs, ProbeSpec, Slot, measure_costs, probe, update_from_events

__all__ = ["Costs", "Plan", "PlanInputs", "ProbeSpec", "RoundPlan", "Slot", "make_plan", "measure_costs", "probe",
           "replan", "update_from_events"]
