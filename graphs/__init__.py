"""The LangGraph workflow of a post-training run: state, nodes, edges, and the runner."""

__all__: list[str] = []  # the modules are the interface: state, post_training (build_graph), runner (run)
