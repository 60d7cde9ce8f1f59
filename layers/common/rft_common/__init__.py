"""Shared customer-management logic for the React Fast Training Lambdas.

Modules are imported on demand by each function so that a handler pays the
import cost only for what it uses.
"""
