"""runtime auth routes.

Contract rows of this group:
- GET /ui/me
- POST /login
- POST /register
- POST /token_refresh
- POST /ui/login
- POST /ui/logout
- POST /ui/register
- POST /ui/token_refresh
"""

from fastapi import APIRouter

router = APIRouter()
