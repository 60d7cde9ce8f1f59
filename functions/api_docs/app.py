"""GET /api/openapi.json and GET /api/docs: the whole API's document and Swagger UI.

A function of its own: the documentation stays up whatever the admin flag says,
needs no database, secret or bucket, and is public (the document holds no data).
Routes are in ``rft_common.http.docs``.
"""

from rft_common.http.api import api_function
from rft_common.http.docs import router

app, lambda_handler = api_function(router)
