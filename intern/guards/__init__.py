"""The supervisor's guards: small policy objects that return typed decisions.

Each guard is plain Python, driven directly by tests and applied to every role's
agent loop by :func:`intern.llm.agent.run_agent`:

- :mod:`.compaction` keeps the context under the model's window;
- :mod:`.loops` detects repeated tool calls, corrects, then escalates;
- :mod:`.approval` gates sensitive actions (policy + file channel in the run dir);
- :mod:`.budgets` stops a run when tool calls, wall clock or GPU hours run out;
- :mod:`.brain_share` keeps the LLM's calls within their share of the wall clock;
- :mod:`.deadline` bounds every call made inside a role's step by the time the budget leaves;
- :mod:`.secrets` masks API keys and tokens in any text we write.
"""
