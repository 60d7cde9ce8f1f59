"""HTTP routes as Powertools ``Router``s, one module per area of the API.

Each function's handler builds a resolver and includes the routers it serves; the
API document (``rft_common.routes.openapi``) includes all of them, so it describes
every route of every function from the code itself.
"""
