"""Runtime settings read from the environment, once per execution environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from functools import cache


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    """Full SQLAlchemy URL; used locally and in tests."""
    db_secret_arn: str | None
    """Secrets Manager secret holding the RDS credentials (AWS)."""
    db_proxy_endpoint: str | None
    """RDS Proxy host name; the secret's own host is used when absent."""
    db_name: str | None
    db_socket_timeout_seconds: int
    """The longest a statement may take, lock waits included, before its connection is
    given up (``DB_SOCKET_TIMEOUT_SECONDS``); the backfill worker, whose batches may
    queue behind each other on shared customers, and the scheduled scans allow more
    than the API's 5 s."""
    db_pool_size: int
    """Connections per pool (``DB_POOL_SIZE``): 1 in Lambda, more for the local stack's
    threads."""
    secrets_extension_port: int | None
    """The Parameters and Secrets Lambda extension's port; without it, Secrets Manager
    is asked directly (boto3)."""
    flags_file: str | None
    """Local JSON flag store; when unset, flags come from the AppConfig agent."""
    appconfig_agent_url: str
    """The AppConfig Agent Lambda extension (or a local server speaking its protocol)."""
    appconfig_application: str | None
    appconfig_environment: str | None
    appconfig_profile: str | None
    flags_max_age_seconds: int
    admin_jwt_secret: str | None
    """The admin login's HS256 secret itself; only the local stack and tests set it."""
    admin_jwt_secret_arn: str | None
    """Secrets Manager secret holding the admin login's HS256 secret (AWS)."""
    admin_refresh_secret: str | None
    """The admin refresh tokens' own HS256 secret; only the local stack and tests set it."""
    admin_refresh_secret_arn: str | None
    """Secrets Manager secret holding the refresh tokens' HS256 secret (AWS)."""
    admin_jwt_issuer: str
    admin_jwt_audience: str
    admin_export_bucket: str | None
    """S3 bucket the users CSV export is written to."""
    group_discount_percent: Decimal
    """Percent off a booking of ``group_discount_min_participants`` or more (``pricing``)."""
    group_discount_min_participants: int
    stripe_secret_key: str | None
    """Stripe's secret API key itself; only the local stack and tests set it."""
    stripe_secret_key_arn: str | None
    """Secrets Manager secret holding Stripe's secret API key (AWS)."""
    stripe_webhook_secret: str | None
    """The webhook endpoint's signing secret itself (local stack and tests)."""
    stripe_webhook_secret_arn: str | None
    """Secrets Manager secret holding the webhook endpoint's signing secret (AWS)."""
    stripe_api_base: str | None
    """Another Stripe API server (localstripe); Stripe's own when unset."""
    """How long a first-aid certificate is valid (renewals list); 3 in the UK."""
    retention_years: int
    """Customers with no booking for this long are erased by retention (accounting: 7)."""
    email_from: str
    """The From address of every email (an SES-verified identity in AWS)."""
    email_reply_to: str | None
    """Where replies go (the company's inbox); none when unset."""
    ses_configuration_set: str | None
    """The SES configuration set sends go through (bounce and complaint events)."""
    admin_origin: str
    """The admin dashboard's origin: the reset link's default host."""
    admin_reset_url: str
    """The password reset link, ``{AdminOrigin}`` and ``{token}`` filled in."""
    company_phone: str
    company_email: str
    log_fingerprint_key: str | None
    """The key of the logs' email fingerprints itself (local stack and tests)."""
    log_fingerprint_key_arn: str | None
    """Secrets Manager secret holding that key (AWS; ``rft_common.aws.fingerprints``)."""
    unsubscribe_secret: str | None
    """The unsubscribe links' HMAC-SHA256 key itself (local stack and tests)."""
    unsubscribe_secret_arn: str | None
    """Secrets Manager secret holding that key (AWS; ``rft_common.consent.tokens``)."""
    public_api_url: str
    """Where the public reaches this API (``PUBLIC_API_URL``; the site's own origin, which
    serves ``/api``, unless set): the base of the links emails carry."""
    checkout_consent_notice_version: str | None
    """The version of the consent wording and opt-out notice the booking site shows at
    checkout (``CHECKOUT_CONSENT_NOTICE_VERSION``). Unset: no soft opt-in is recorded."""
    reminder_stages: tuple[int, ...]
    """When renewal reminders go: days before a certificate's expiry, negative after it
    (``REMINDER_STAGES``, comma-separated; ``90,30,7,-1`` unless set)."""
    reminder_policy: str
    """The lawful basis a reminder needs (``REMINDER_POLICY``): ``consent_only`` (explicit
    consent, the default) or ``soft_opt_in`` (explicit consent or a soft opt-in)."""
    reminder_batch_size: int
    """Recipients per transaction of the daily reminder run (``REMINDER_BATCH_SIZE``)."""
    renewal_course_url: str
    """The booking site's page for a course type (``RENEWAL_COURSE_URL``), with
    ``{course_type}`` (``EFAW``) or ``{course_slug}`` (``efaw``, the site's routes)."""
    ses_send_rate: float
    """Most messages per second the email sender sends (``SES_SEND_RATE``): the SES
    account's maximum send rate (each run ends within its minute, so runs never add up)."""


@cache
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        db_secret_arn=env.get("DB_SECRET_ARN") or None,
        db_proxy_endpoint=env.get("DB_PROXY_ENDPOINT") or None,
        db_name=env.get("DB_NAME") or None,
        db_socket_timeout_seconds=int(env.get("DB_SOCKET_TIMEOUT_SECONDS", "5")),
        db_pool_size=int(env.get("DB_POOL_SIZE", "1")),
        secrets_extension_port=int(env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"])
        if env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
        else None,
        flags_file=env.get("RFT_FLAGS_FILE") or None,
        appconfig_agent_url=env.get("APPCONFIG_AGENT_URL")
        or f"http://localhost:{env.get('AWS_APPCONFIG_EXTENSION_HTTP_PORT') or 2772}",
        appconfig_application=env.get("APPCONFIG_APPLICATION") or None,
        appconfig_environment=env.get("APPCONFIG_ENVIRONMENT") or None,
        appconfig_profile=env.get("APPCONFIG_PROFILE") or None,
        flags_max_age_seconds=int(env.get("FLAGS_MAX_AGE_SECONDS", "5")),
        admin_jwt_secret=env.get("ADMIN_JWT_SECRET") or None,
        admin_jwt_secret_arn=env.get("ADMIN_JWT_SECRET_ARN") or None,
        admin_refresh_secret=env.get("ADMIN_REFRESH_SECRET") or None,
        admin_refresh_secret_arn=env.get("ADMIN_REFRESH_SECRET_ARN") or None,
        admin_jwt_issuer=env.get("ADMIN_JWT_ISSUER") or "reactfasttraining.co.uk",
        admin_jwt_audience=env.get("ADMIN_JWT_AUDIENCE") or "admin",
        admin_export_bucket=env.get("ADMIN_EXPORT_BUCKET") or None,
        group_discount_percent=Decimal(env.get("GROUP_DISCOUNT_PERCENT", "10")),
        group_discount_min_participants=int(env.get("GROUP_DISCOUNT_MIN_PARTICIPANTS", "5")),
        stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
        stripe_secret_key_arn=env.get("STRIPE_SECRET_KEY_ARN") or None,
        stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
        stripe_webhook_secret_arn=env.get("STRIPE_WEBHOOK_SECRET_ARN") or None,
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        retention_years=int(env.get("RETENTION_YEARS", "7")),
        email_from=env.get("EMAIL_FROM")
        or "React Fast Training <bookings@reactfasttraining.co.uk>",
        email_reply_to=env.get("EMAIL_REPLY_TO") or None,
        ses_configuration_set=env.get("SES_CONFIGURATION_SET") or None,
        admin_origin=env.get("ADMIN_ORIGIN") or "https://reactfasttraining.co.uk",
        admin_reset_url=env.get("ADMIN_RESET_URL")
        or "{AdminOrigin}/admin/reset-password?token={token}",
        company_phone=env.get("COMPANY_PHONE") or "07447 485644",
        company_email=env.get("COMPANY_EMAIL") or "info@reactfasttraining.co.uk",
        log_fingerprint_key=env.get("LOG_FINGERPRINT_KEY") or None,
        log_fingerprint_key_arn=env.get("LOG_FINGERPRINT_KEY_ARN") or None,
        unsubscribe_secret=env.get("UNSUBSCRIBE_SECRET") or None,
        unsubscribe_secret_arn=env.get("UNSUBSCRIBE_SECRET_ARN") or None,
        public_api_url=(
            env.get("PUBLIC_API_URL")
            or env.get("ADMIN_ORIGIN")
            or "https://reactfasttraining.co.uk"
        ).rstrip("/"),
        checkout_consent_notice_version=env.get("CHECKOUT_CONSENT_NOTICE_VERSION") or None,
        reminder_stages=tuple(
            int(days) for days in (env.get("REMINDER_STAGES") or "90,30,7,-1").split(",")
        ),
        reminder_policy=env.get("REMINDER_POLICY") or "consent_only",
        reminder_batch_size=int(env.get("REMINDER_BATCH_SIZE", "500")),
        renewal_course_url=env.get("RENEWAL_COURSE_URL")
        or "https://reactfasttraining.co.uk/courses/{course_slug}",
        ses_send_rate=float(env.get("SES_SEND_RATE", "14")),
    )
