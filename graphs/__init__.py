"""The LangGraph workflow of a post-training run: state, nodes, edges, and the runner."""
