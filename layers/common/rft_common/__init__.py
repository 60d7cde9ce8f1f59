"""Shared customer-management logic for the React Fast Training Lambdas.

Modules are imported on demand by each function so that a handler pays the
import cost only for what it uses. ``snapstart`` is imported here so that every
function registers its SnapStart hook, as Lambda requires, from the handler's imports.
"""

from rft_common.core import snapstart as snapstart
