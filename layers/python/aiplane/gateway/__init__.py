"""The LLM gateway of the runtime family: backends, pools/groups, models, providers, routing,
routed inference, the sync cycle and the model-download queue."""
