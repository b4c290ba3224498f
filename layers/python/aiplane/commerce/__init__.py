"""gpufarm commerce: credits and payments, spending guardrails, storage quota, model serving and
the agent protocols (MCP, A2A) over them. Every record lives in the gpufarm table (`records`)."""
