"""Task chains: the chain model and its validation, the task handlers, the compiler to Amazon
States Language, hooks, and chats. LLM access goes through `llm_port` only."""
