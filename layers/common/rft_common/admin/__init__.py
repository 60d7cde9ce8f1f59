"""The admin users API's domain: list and search, profiles and history, edits, export.

Nothing here knows HTTP; ``rft_common.routes.admin_users`` maps it onto routes.
"""
