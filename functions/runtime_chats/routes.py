"""runtime chats routes.

Contract rows of this group:
- GET /chats
- GET /chats/{id}
- POST /chats
- POST /chats/{id}/chat
- POST /chats/{id}/instruction
"""

from fastapi import APIRouter

router = APIRouter()
