"""Approval gating: which actions need a human's yes, and the file channel that carries it.

The policy names the sensitive actions (launching training above a GPU-hour
threshold, pushing to the Hub, sandboxed code with network access, spending past a
budget) and, by mode, asks (``ask``), approves within caps (``auto``) or denies
(``never``). Which tool is which action, and which argument says how much, is the
tool's own declaration (``intern.tools.base.ToolGate``, ``@gated``), passed in with the
call: a tool's name decides nothing. The channel lives in the run directory, so it works across processes and,
on shared storage, across the machines of a cluster:

- ``approvals/<id>.request.json``: written by the run (idempotent: the id is derived
  from the call, so a re-run node finds its earlier request);
- ``approvals/<id>.response.json``: written once by ``intern approve`` from another
  terminal, with who, when and feedback for the role.

Both are written atomically (a temporary file, then a link or rename).

    gate = ApprovalGate(ApprovalPolicy(mode="ask"), run_dir, wait_seconds=None)
    decision = gate.check("launch_training", {"gpu_hours": 4}, call_id="c1", role="trainer",
                          gate=ToolGate("train", cost_arg="gpu_hours"))
    # another process:  respond(run_dir, None, approve=False, message="use LoRA", who="ana")
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern.config import APPROVAL_MODES
from intern.errors import InternError
from intern.guards.decisions import GuardDecision, Verdict, go_on
from intern.guards.loops import canonical_args
from intern.guards.secrets import redact_obj
from intern.tools.base import ToolGate


class ApprovalError(InternError):
    """An approval request or response is missing, ambiguous or already answered."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which tool calls need approval, and how they are answered.

    Attributes:
        mode: ``ask`` (a human decides), ``auto`` (approve within the auto caps, deny above),
            ``never`` (deny every gated action).
        gpu_hours_threshold: training estimated above this many GPU hours needs approval.
        spend_budget_usd: spending that would take the run past this needs approval.
        auto_max_gpu_hours: in ``auto`` mode, the largest training approved.
        auto_max_usd: in ``auto`` mode, the most total spending approved.
        auto_allow_hub_push: in ``auto`` mode, whether pushing to the Hub is approved.
        auto_allow_network: in ``auto`` mode, whether sandboxed code may use the network.
    """

    mode: str = "ask"
    gpu_hours_threshold: float = 1.0
    spend_budget_usd: float = 0.0
    auto_max_gpu_hours: float = 8.0
    auto_max_usd: float = 20.0
    auto_allow_hub_push: bool = False
    auto_allow_network: bool = True

    def __post_init__(self) -> None:
        if self.mode not in APPROVAL_MODES:
            raise ApprovalError(f"approval mode must be one of {APPROVAL_MODES} (got {self.mode!r})")

    def action(self, tool: str, args: dict[str, Any], spent_usd: float = 0.0,
               gate: ToolGate | None = None) -> dict[str, Any] | None:
        """The sensitive action this call is (``{"kind", "reason", ...}``), or None if none.

        Args:
            tool: the tool's name (for the reason's text only).
            args: its arguments.
            spent_usd: what the run spent so far.
            gate: the sensitive action the tool declares (None: it declares none; only a ``cost_usd``
                argument past the spending budget is then gated).
        """
        cost = _number(args.get("cost_usd"))
        action = gate.action if gate is not None else None
        if action == "hub_push":
            return {"kind": "hub_push", "reason": f"`{tool}` publishes to the Hugging Face Hub"}
        if action == "code" and gate.cost_arg and args.get(gate.cost_arg):
            return {"kind": "network", "reason": f"`{tool}` runs code with network access"}
        gpu_hours = _number(args.get(gate.cost_arg)) if action == "train" and gate.cost_arg else 0.0
        if action == "train" and gpu_hours > self.gpu_hours_threshold:
            return {"kind": "gpu_hours", "gpu_hours": gpu_hours,
                    "reason": f"`{tool}` needs ~{gpu_hours:g} GPU hours (> {self.gpu_hours_threshold:g})"}
        if cost > 0 and spent_usd + cost > self.spend_budget_usd:
            return {"kind": "spend", "cost_usd": cost, "spent_usd": spent_usd,
                    "reason": f"`{tool}` costs ~${cost:g}, past the ${self.spend_budget_usd:g} budget "
                              f"(${spent_usd:g} spent)"}
        return None

    def auto_approves(self, action: dict[str, Any]) -> bool:
        """Whether ``auto`` mode approves ``action`` (within its caps)."""
        kind = action["kind"]
        if kind == "hub_push":
            return self.auto_allow_hub_push
        if kind == "network":
            return self.auto_allow_network
        if kind == "gpu_hours":
            return action["gpu_hours"] <= self.auto_max_gpu_hours
        return action["spent_usd"] + action["cost_usd"] <= self.auto_max_usd


class ApprovalGate:
    """The policy plus the channel: turns a tool call into a typed decision.

    Args:
        policy: what needs approval and how it is answered.
        run_dir: the run directory holding ``approvals/``.
        wait_seconds: in ``ask`` mode, how long :meth:`check` waits for a response (None:
            until one comes; 0: not at all, return ``pause_for_approval`` at once).
        poll_seconds: how often to look for the response file.
    """

    def __init__(self, policy: ApprovalPolicy, run_dir: str | Path, wait_seconds: float | None = 0.0,
                 poll_seconds: float = 0.5):
        self.policy = policy
        self.run_dir = Path(run_dir)
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.spent_usd = 0.0

    def check(self, tool: str, args: dict[str, Any], call_id: str, role: str, branch: str | None = None,
              gate: ToolGate | None = None,
              on_request: Callable[[dict[str, Any]], None] | None = None) -> GuardDecision:
        """``continue`` (not gated or approved), ``correct`` (denied, with feedback for the model)
        or ``pause_for_approval`` (asked, no answer yet: ``details["request_id"]``).

        Args:
            tool: the tool's name.
            args: its arguments.
            call_id: the model's call id (part of the request id, so a re-run finds its request).
            role: the role asking.
            branch: its branch, if any.
            gate: the sensitive action the tool declares (``ToolGate``; None: none).
            on_request: called with the stored request before waiting (``ask`` mode), e.g. to
                record an event telling the user how to answer.
        """
        action = self.policy.action(tool, args, self.spent_usd, gate)
        if action is None:
            return go_on("approval")
        facts = {"tool": tool, "action": action["kind"], "reason": action["reason"]}
        if self.policy.mode == "never":
            return _denied(facts, "policy", "approval mode is `never`")
        if self.policy.mode == "auto":
            if self.policy.auto_approves(action):
                return GuardDecision(Verdict.CONTINUE, "approval", "auto_approved",
                                     details={**facts, "approved": True, "who": "auto", "at": _now()})
            return _denied(facts, "auto", "it is above the automatic-approval caps; choose a smaller action")
        request_id = request_id_for(role, branch, call_id, tool, args)
        request = submit_request(self.run_dir, {"id": request_id, "role": role, "branch": branch, "tool": tool,
                                                "args": redact_obj(args), **facts})
        if on_request is not None and get_response(self.run_dir, request_id) is None:
            on_request(request)
        response = wait_for_response(self.run_dir, request_id, self.wait_seconds, self.poll_seconds)
        if response is None:
            return GuardDecision(Verdict.PAUSE_FOR_APPROVAL, "approval", "awaiting_response",
                                 details={**facts, "request_id": request_id})
        answer = {**facts, "request_id": request_id, "approved": response["approve"], "who": response["who"],
                  "at": response["at"], "feedback": response.get("message", "")}
        if response["approve"]:
            return GuardDecision(Verdict.CONTINUE, "approval", "approved", message=response.get("message") or None,
                                 details=answer)
        return _denied(answer, response["who"], response.get("message") or "no reason given")

    def record_spend(self, args: dict[str, Any]) -> None:
        """Count the ``cost_usd`` of a call that ran toward the spending budget."""
        self.spent_usd += _number(args.get("cost_usd"))


def _denied(facts: dict[str, Any], who: str, why: str) -> GuardDecision:
    message = f"[Supervisor] Not approved ({facts['reason']}); denied by {who}: {why}"
    details = {"approved": False, "who": who, "at": _now(), **facts}
    return GuardDecision(Verdict.CORRECT, "approval", "denied", message=message, details=details)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def default_who() -> str:
    """``user@host`` of this process, for a response's ``who``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


# ----------------------------------------------------------------- the file channel


def approvals_dir(run_dir: str | Path) -> Path:
    """``<run_dir>/approvals``."""
    return Path(run_dir) / "approvals"


def request_id_for(role: str, branch: str | None, call_id: str, tool: str, args: dict[str, Any]) -> str:
    """A stable id for a gated call, so a re-run finds the request it already wrote."""
    key = "\x1f".join([role, branch or "", call_id, tool, canonical_args(args)])
    return f"{role}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _write_once(path: Path, payload: dict[str, Any]) -> bool:
    """Atomically create ``path`` with ``payload``; False if it already existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic and exclusive: two approvers cannot both answer
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this filesystem: rename is still atomic
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def submit_request(run_dir: str | Path, request: dict[str, Any]) -> dict[str, Any]:
    """Write ``approvals/<id>.request.json`` unless it exists; returns the stored request."""
    path = approvals_dir(run_dir) / f"{request['id']}.request.json"
    _write_once(path, {**request, "created_at": _now(), "created_ts": time.time()})
    stored = _read(path)
    if stored is None:
        raise ApprovalError(f"could not read back the approval request {path}")
    return stored


def get_response(run_dir: str | Path, request_id: str) -> dict[str, Any] | None:
    """The response to ``request_id``, or None while unanswered."""
    return _read(approvals_dir(run_dir) / f"{request_id}.response.json")


def wait_for_response(run_dir: str | Path, request_id: str, timeout: float | None,
                      poll_seconds: float = 0.5) -> dict[str, Any] | None:
    """Poll for the response to ``request_id`` for up to ``timeout`` seconds (None: forever)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        response = get_response(run_dir, request_id)
        if response is not None:
            return response
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(poll_seconds if deadline is None else max(0.0, min(poll_seconds, deadline - time.monotonic())))


def list_pending(run_dir: str | Path) -> list[dict[str, Any]]:
    """Requests of the run without a response, oldest first (what ``intern approve`` lists)."""
    folder = approvals_dir(run_dir)
    if not folder.is_dir():
        return []
    pending = []
    for path in folder.glob("*.request.json"):
        request = _read(path)
        if request is not None and get_response(run_dir, request["id"]) is None:
            pending.append(request)
    return sorted(pending, key=lambda r: r.get("created_ts", 0.0))


def respond(run_dir: str | Path, request_id: str | None, approve: bool, message: str = "",
            who: str | None = None) -> dict[str, Any]:
    """Answer a pending request (what ``intern approve RUN [--deny --message ...]`` calls).

    Args:
        run_dir: the run directory.
        request_id: the request to answer; None answers the only pending one.
        approve: True to approve, False to deny.
        message: feedback that goes back to the role (why, or what to do instead).
        who: who answers; default ``user@host``.

    Raises:
        ApprovalError: no such request, several pending and none named, or already answered.
    """
    if request_id is None:
        pending = list_pending(run_dir)
        if not pending:
            raise ApprovalError(f"no approval is pending in {run_dir}")
        if len(pending) > 1:
            ids = ", ".join(r["id"] for r in pending)
            raise ApprovalError(f"{len(pending)} approvals are pending in {run_dir}; name one of: {ids}")
        request_id = pending[0]["id"]
    if _read(approvals_dir(run_dir) / f"{request_id}.request.json") is None:
        raise ApprovalError(f"no approval request '{request_id}' in {run_dir}; see `intern approve {run_dir}`")
    response = {"id": request_id, "approve": bool(approve), "message": message, "who": who or default_who(),
                "at": _now()}
    if not _write_once(approvals_dir(run_dir) / f"{request_id}.response.json", response):
        earlier = get_response(run_dir, request_id) or {}
        raise ApprovalError(f"approval '{request_id}' was already answered by {earlier.get('who')} "
                            f"at {earlier.get('at')}")
    return response
