"""runtime chains routes.

Contract rows of this group:
- DELETE /taskchains/{id}
- GET /openai/{chainID}/v1/models
- GET /taskchains
- GET /taskchains/{id}
- POST /chains
- POST /openai/{chainID}/v1/chat/completions
- POST /taskchains
- POST /tasks
- PUT /taskchains/{id}
"""

from fastapi import APIRouter

router = APIRouter()
