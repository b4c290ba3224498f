"""Identity: who is calling. One credential check shared by the FastAPI dependency and the
API Gateway authorizers."""
