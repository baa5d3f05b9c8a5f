"""The roles of a post-training run as plain classes, made Ray actors where they are created.

``RoleFactory`` creates each role once per (run, role, branch) as a named Ray actor
with the resources the cluster profile gives that role, or in-process when Ray is
off (tests that drive roles directly). Roles never import LangGraph.
"""

from actors.factory import RoleFactory

__all__ = ["RoleFactory"]
