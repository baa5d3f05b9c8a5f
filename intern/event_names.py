"""The run's vocabulary: every event name ``events.jsonl`` may hold, declared once with its fields.

Writers and readers of the event log meet here: ``EventLog.emit`` refuses a name that is not
declared (``UndeclaredEvent``), readers compare with these constants rather than with spelled-out
strings, and ``tests/unit/test_event_names.py`` fails when code emits or reads a name that is not
declared here (or a field that its declaration does not list). The integrity gate, the progress
view, the report, the cost model and the ledger on resume all read events back by name, so a name
spelled two ways would silently empty a table or pass a gate.

    from intern.event_names import TEST_EVAL
    log.emit("evaluator", TEST_EVAL, branch="b0", which="final", score=0.5, n=64)
    finals = [e for e in events if e.get("event") == TEST_EVAL]

Every event also carries ``ts, run_id, role, event, branch`` (``intern/events.py``). ``fields`` are
the keys its writers set; ``more`` says where an event carries a record's keys besides.
docs/architecture.md's event table is generated from this module (``python -m intern.docs_gen``).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("researcher", "data_engineer", "trainer", "evaluator", "supervisor", "notify")
COMMON_FIELDS = ("ts", "run_id", "role", "event", "branch")


@dataclass(frozen=True)
class EventSpec:
    """One declared event: its name, who writes it, the fields it carries and what it means."""

    name: str
    by: str
    fields: tuple[str, ...]
    means: str
    more: str = ""


EVENTS: dict[str, EventSpec] = {}


def _declare(name: str, by: str, fields: str, means: str, more: str = "") -> str:
    if name in EVENTS:
        raise ValueError(f"event {name!r} is declared twice in intern/event_names.py: keep one declaration")
    EVENTS[name] = EventSpec(name, by, tuple(fields.split()), means, more)
    return name


# --- the plan and the supervisor's loop
BASE_FINGERPRINT = _declare("base_fingerprint", "supervisor", "",
                            "the base model's fingerprint, before anything trains",
                            more="the fingerprint's keys (intern/integrity_weights.py)")
COSTS = _declare("costs", "supervisor", "source seconds figures",
                 "what a step, a stage start and an evaluation cost here (probed or cached)",
                 more="the cost model's keys (intern/planning/costs.py)")
PLAN = _declare("plan", "supervisor", "started_at benchmark base_model branches max_rounds max_wall_seconds plan",
                "the budget plan made at the start")
REPLAN = _declare("replan", "supervisor", "started_at benchmark base_model branches max_rounds max_wall_seconds plan",
                  "the plan made again at a review, from what things really cost")
ALLOCATION = _declare("allocation", "supervisor", "iteration branches", "the branches a round runs")
DECISION = _declare("decision", "supervisor", "iteration elapsed_s",
                    "the supervisor's decision after a round (continue, stop, ...)",
                    more="the decision's keys (action, reason, ...)")
INTEGRITY = _declare("integrity", "supervisor", "passed failed nothing_to_check checks",
                     "the integrity gate's verdict on the final result")
FINISHED = _declare("finished", "supervisor", "status final baseline", "the run ended")
RUN_RESUMED = _declare("run_resumed", "supervisor", "previous_status previous_error down_s was_doing to_do",
                       "`intern resume` took a run up again")
APPROVAL_WAIT = _declare("approval_wait", "supervisor", "request_id role_waiting how",
                         "the run waits for a person's approval")
BUDGET_WARNING = _declare("budget_warning", "supervisor", "resource used limits fractions",
                          "a budget is nearly spent")

# --- research and data
HYPOTHESES = _declare("hypotheses", "researcher", "iteration hypotheses sources",
                      "the researcher's hypotheses, with each cited source")
SOURCES_DROPPED = _declare("sources_dropped", "researcher", "iteration dropped reason",
                           "cited ids no tool found, dropped")
RESEARCH_FALLBACK = _declare("research_fallback", "researcher", "iteration failed cited message",
                             "research failed; the playbook's hypotheses are used")
OVERRIDES_DROPPED = _declare("overrides_dropped", "researcher", "problems train data",
                             "a hypothesis' config overrides did not validate, dropped")
INIT_FROM_REFUSED = _declare("init_from_refused", "researcher", "init_from reason",
                             "a hypothesis asked to start from a checkpoint it may not use")
DATASET_START = _declare("dataset_start", "data_engineer", "rows style start", "the data engineer starts a dataset")
DATASET = _declare("dataset", "data_engineer", "origin", "an SFT dataset is built",
                   more="the dataset's reference (path, rows, manifest, ...)")
GRPO_DATASET = _declare("grpo_dataset", "data_engineer", "origin", "a GRPO prompt set is built",
                        more="the dataset's reference (path, rows, manifest, ...)")

# --- training
TRAIN_START = _declare("train_start", "trainer",
                       "method cpus_per_worker max_steps lora learning_rate init_from stages backend",
                       "a branch's training starts")
TRAIN_WORKER = _declare("train_worker", "trainer", "recipe pid host node_id run_name resumed",
                        "a Ray Train worker started (one per attempt)")
TRAIN_STEP = _declare("train_step", "trainer", "iteration stage step max_steps loss learning_rate num_tokens",
                      "one logged training step", more="GRPO's reward figures")
TRAIN_END = _declare("train_end", "trainer", "gpu_hours_used", "a branch's training ended",
                     more="the training result (checkpoint, method, stopped, resume_point, ...)")
TRAIN_FAILED = _declare("train_failed", "trainer", "error", "a branch's training failed")
TRAIN_SKIPPED = _declare("train_skipped", "trainer", "recipe reason checkpoint",
                         "a stage already finished (on resume), not run again")
TRAIN_RESUME = _declare("train_resume", "trainer", "recipe from_step checkpoint", "a stage resumes from a checkpoint")
TRAIN_CONTINUE = _declare("train_continue", "trainer", "recipe from_step checkpoint",
                          "a stage continues from its own last checkpoint")
TRAIN_RECOVERY = _declare("train_recovery", "trainer",
                          "recipe run_name cause lost_node node from_step last_step steps_redone down_s",
                          "Ray Train restarts a failed worker group")
TRAIN_RECOVERED = _declare("train_recovered", "trainer", "recipe from_step step lost_s",
                           "training goes on after a recovery")
CHECKPOINT_INCOMPLETE = _declare("checkpoint_incomplete", "trainer", "recipe skipped using",
                                 "a checkpoint lacks files; an earlier one is used")
RESULT_KEPT_AT_BUDGET = _declare("result_kept_at_budget", "trainer", "resource checkpoint",
                                 "a budget ran out mid-training; the last checkpoint is kept")
GRPO_REWARDS = _declare("grpo_rewards", "trainer", "", "a GRPO stage's reward summary",
                        more="the stage's summary")
GRPO_SKIPPED = _declare("grpo_skipped", "trainer", "reason", "a GRPO stage was skipped (no reward signal)",
                        more="the stage's summary")
TRACKING = _declare("tracking", "trainer", "", "the experiment tracker's record",
                    more="backend, mode, status, paths")
DEEPSPEED_OP_BUILD = _declare("deepspeed_op_build", "trainer", "message",
                              "DeepSpeed compiles its ops (once per machine)")
DEEPSPEED_OP_BUILT = _declare("deepspeed_op_built", "trainer", "seconds", "DeepSpeed's ops are compiled")

# --- evaluation
EVAL_START = _declare("eval_start", "evaluator", "split n which", "an evaluation starts")
DEV_EVAL = _declare("dev_eval", "evaluator",
                    "which iteration score n stderr seconds samples model_path generation cached_from",
                    "a checkpoint scored on the dev split")
TEST_EVAL = _declare("test_eval", "evaluator",
                     "which iteration score n stderr seconds samples model_path generation cached_from "
                     "item_scores item_ids",
                     "a checkpoint scored on the held-out test split (the baseline and the final)")

# --- agent loops, brains and tools (any role)
AGENT_START = _declare("agent_start", "any role", "max_steps tools llm",
                       "an agent loop starts (`llm`: a model or the playbook)")
AGENT_STEP = _declare("agent_step", "any role",
                      "step finish_reason error tool_calls seconds prompt_tokens completion_tokens",
                      "one model reply in an agent loop")
AGENT_RESULT = _declare("agent_result", "any role", "step result", "the loop's final answer")
AGENT_END = _declare("agent_end", "any role", "stopped_reason steps detail resource", "an agent loop ended")
TOOL_CALL = _declare("tool_call", "any role", "step tool ok args result_chars seconds", "a tool was called",
                     more="the guard's decision when one stopped it")
TOOL_ERROR = _declare("tool_error", "any role", "step tool error", "a tool call could not be parsed or run")
RESULT_REJECTED = _declare("result_rejected", "any role", "step problems",
                           "the loop's answer did not validate; the model is asked again")
LLM_USAGE = _declare("llm_usage", "any role", "", "one model call's tokens and seconds",
                     more="the usage record (prompt_tokens, completion_tokens, seconds, ...)")
BRAIN_FALLBACK = _declare("brain_fallback", "any role", "to reason roles detail llm_steps",
                          "a role's brain gave way to the playbook")
BRAIN_PROBE = _declare("brain_probe", "supervisor", "transcript then",
                       "the brain was probed at the start", more="the probe's figures")
BRAIN_SHARE_SIZED = _declare("brain_share_sized", "supervisor", "share_s used_s left_s",
                             "the brains' share of the wall clock", more="how it was sized")
BRAIN_SHARE_USED = _declare("brain_share_used", "supervisor", "share_s used_s left_s",
                            "what the brains used of their share")
ROLE_RETRY = _declare("role_retry", "any role", "method attempt lost_s error details",
                      "a role call is retried after its actor or node was lost")
SANDBOX_RUN = _declare("sandbox_run", "any role",
                       "tool isolation network exit_code timed_out seconds code_sha256 code_lines",
                       "code ran in the sandbox", more="the tool's own facts")

# --- the guards' decisions other than a plain continue (intern/guards/gatekeeper.py)
_GUARD = "guard verdict reason message decided_by"
BUDGET = _declare("budget", "any role", _GUARD, "the budget guard's decision", more="the decision's details")
LOOP = _declare("loop", "any role", _GUARD, "the loop guard's decision", more="the decision's details")
COMPACTION = _declare("compaction", "any role",
                      f"{_GUARD} step failed tokens_before tokens_after summarized_messages kept_messages summary_by",
                      "the context was compacted (or compaction failed)", more="the decision's details")
APPROVAL = _declare("approval", "any role",
                    f"{_GUARD} step request_id tool approved who at feedback action",
                    "an action waits for, or got, a person's approval", more="the decision's details")
BRAIN_SHARE = _declare("brain_share", "any role", _GUARD, "the brain-share guard's decision",
                       more="the decision's details")

# --- notifications
NOTIFY_SENT = _declare("notify_sent", "notify", "kind key", "a notification was sent")
NOTIFY_FAILED = _declare("notify_failed", "notify", "kind key error", "a notification could not be sent")


def event_table() -> str:
    """The declared events as a markdown table (docs/architecture.md's, generated)."""
    rows = ["| event | written by | fields (besides `ts, run_id, role, event, branch`) | what it means |",
            "|---|---|---|---|"]
    for spec in EVENTS.values():
        fields = ", ".join(f"`{f}`" for f in spec.fields)
        if spec.more:
            fields = f"{fields}; {spec.more}" if fields else spec.more
        rows.append(f"| `{spec.name}` | {spec.by} | {fields or '-'} | {spec.means} |")
    return "\n".join(rows) + "\n"
