"""GET /api/openapi.json and GET /api/docs: the whole API's document and Swagger UI.

A function of its own: the documentation stays up whatever the admin flag says,
needs no database, secret or bucket, and is public (the document holds no data).
Routes are in ``rft_common.routes.docs``.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from rft_common.api import create_resolver
from rft_common.observability import logger
from rft_common.routes.docs import router

app = create_resolver()
app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
