"""runtime telegram routes.

Contract rows of this group:
- DELETE /telegram-frontends/{id}
- GET /telegram-frontends
- GET /telegram-frontends/users/{userId}
- GET /telegram-frontends/{id}
- POST /telegram-frontends
- PUT /telegram-frontends/{id}
"""

from fastapi import APIRouter

router = APIRouter()
