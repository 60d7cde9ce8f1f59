"""The AppConfig resources in template.yaml, the flag document files and their JSON Schema.

``config/flags.schema.json`` and ``config/flags.default.json`` are the canonical files;
template.yaml carries them inline (CloudFormation cannot read a file) and these tests
keep the copies byte-identical: after editing a file, paste it into the template.
"""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft4Validator

from rft_common.aws.flags import SAFE_VALUES, validate_flag_document
from rft_tools.cfn_template import load_template
from rft_tools.checks.flag_document import LOCAL_DEFAULTS_FILE, SAFE_DEFAULTS_FILE, SCHEMA_FILE
from tests.conftest import PROJECT_ROOT

TEMPLATE = load_template(PROJECT_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
SCHEMA = json.loads(SCHEMA_FILE.read_text())
VALIDATOR = Draft4Validator(SCHEMA)


def resources_of_type(type_name: str) -> dict[str, dict]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == type_name}


def schema_errors(document) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(document)]


def safe_defaults() -> dict:
    return json.loads(SAFE_DEFAULTS_FILE.read_text())


class TestTemplateCarriesTheCanonicalFiles:
    def test_the_profile_validator_is_the_schema_file(self):
        [validator] = RESOURCES["FlagsProfile"]["Properties"]["Validators"]

        assert validator["Type"] == "JSON_SCHEMA"
        assert validator["Content"] == SCHEMA_FILE.read_text(), (
            "paste config/flags.schema.json into FlagsProfile's validator Content"
        )

    def test_the_deployed_version_is_the_safe_defaults_file(self):
        version = RESOURCES["FlagsSafeDefaults"]["Properties"]

        assert version["ContentType"] == "application/json"
        assert version["Content"] == SAFE_DEFAULTS_FILE.read_text(), (
            "paste config/flags.default.json into FlagsSafeDefaults' Content"
        )


class TestDocuments:
    def test_the_schema_is_a_valid_draft_4_schema_as_appconfig_expects(self):
        Draft4Validator.check_schema(SCHEMA)

    def test_the_safe_defaults_validate_against_the_profile_schema(self):
        assert schema_errors(safe_defaults()) == []
        validate_flag_document(safe_defaults())

    def test_the_safe_defaults_are_exactly_each_flags_documented_safe_value(self):
        assert safe_defaults() == {name: {"default": value} for name, value in SAFE_VALUES.items()}

    def test_the_local_defaults_validate_against_the_profile_schema(self):
        local = json.loads(LOCAL_DEFAULTS_FILE.read_text())

        assert schema_errors(local) == []
        validate_flag_document(local)


def with_rule(rule_name: str, condition: dict, when_match=True) -> dict:
    document = safe_defaults()
    document["customer_accounts"]["rules"] = {
        rule_name: {"when_match": when_match, "conditions": [condition]}
    }
    return document


def percentage(start: int, end: int) -> dict:
    return {
        "action": "MODULO_RANGE",
        "key": "bucket",
        "value": {"BASE": 100, "START": start, "END": end},
    }


class TestTheSchemaRejects:
    def test_a_document_missing_a_flag(self):
        document = safe_defaults()
        del document["backfill"]

        assert schema_errors(document)

    def test_a_misspelt_flag(self):
        assert schema_errors(safe_defaults() | {"customer_acounts": {"default": True}})

    def test_a_default_that_is_not_a_boolean(self):
        assert schema_errors(safe_defaults() | {"admin_users_api": {"default": "true"}})

    def test_rules_on_a_flag_that_is_one_switch_for_everyone(self):
        document = copy.deepcopy(safe_defaults())
        document["backfill"]["rules"] = {}

        assert schema_errors(document)

    def test_a_percentage_that_does_not_start_at_bucket_zero(self):
        assert schema_errors(with_rule("percentage rollout", percentage(10, 19)))

    def test_a_percentage_beyond_the_last_bucket(self):
        assert schema_errors(with_rule("percentage rollout", percentage(0, 100)))

    def test_an_allow_listed_email_that_is_not_normalised(self):
        condition = {"action": "IN", "key": "email", "value": ["Jo@Example.com"]}

        assert schema_errors(with_rule("allow-listed emails", condition))

    def test_an_allow_list_keyed_on_an_unknown_context_field(self):
        condition = {"action": "IN", "key": "emial", "value": ["jo@example.com"]}

        assert schema_errors(with_rule("allow-listed emails", condition))

    def test_a_rule_that_turns_the_flag_off(self):
        condition = {"action": "IN", "key": "domain", "value": ["example.com"]}

        assert schema_errors(with_rule("allow-listed domains", condition, when_match=False))

    def test_a_rule_under_an_unknown_name(self):
        assert schema_errors(with_rule("staff", percentage(0, 9)))

    @pytest.mark.parametrize("percent", [1, 10, 50, 100])
    def test_nothing_wrong_with_a_percentage_rollout(self, percent):
        assert schema_errors(with_rule("percentage rollout", percentage(0, percent - 1))) == []


class TestAppConfigResources:
    def test_the_profile_is_a_hosted_freeform_one_as_powertools_needs(self):
        profile = RESOURCES["FlagsProfile"]["Properties"]

        assert (profile["Type"], profile["LocationUri"]) == ("AWS.Freeform", "hosted")

    def test_the_stack_deploys_the_safe_defaults_all_at_once(self):
        deployment = RESOURCES["FlagsDeployment"]["Properties"]
        strategy = RESOURCES["FlagsDeploymentStrategy"]["Properties"]

        assert deployment["ConfigurationVersion"] == {
            "Fn::GetAtt": ["FlagsSafeDefaults", "VersionNumber"]
        }
        assert deployment["DeploymentStrategyId"] == {"Ref": "FlagsDeploymentStrategy"}
        assert (strategy["DeploymentDurationInMinutes"], strategy["GrowthFactor"]) == (0, 100)

    def test_every_function_gets_the_appconfig_identifiers(self):
        variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]

        assert variables["APPCONFIG_APPLICATION"] == {
            "Fn::GetAtt": ["FlagsApplication", "ApplicationId"]
        }
        assert variables["APPCONFIG_ENVIRONMENT"] == {
            "Fn::GetAtt": ["FlagsEnvironment", "EnvironmentId"]
        }
        assert variables["APPCONFIG_PROFILE"] == {
            "Fn::GetAtt": ["FlagsProfile", "ConfigurationProfileId"]
        }
        assert variables["FLAGS_MAX_AGE_SECONDS"] == "5"

    def test_the_read_policy_allows_only_reading_this_profile(self):
        [statement] = RESOURCES["FlagsReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]

        assert statement["Effect"] == "Allow"
        assert sorted(statement["Action"]) == [
            "appconfig:GetLatestConfiguration",
            "appconfig:StartConfigurationSession",
        ]
        assert statement["Resource"]["Fn::Sub"].endswith(
            "application/${FlagsApplication.ApplicationId}"
            "/environment/${FlagsEnvironment.EnvironmentId}"
            "/configuration/${FlagsProfile.ConfigurationProfileId}"
        )

    @pytest.mark.parametrize("function", sorted(resources_of_type("AWS::Serverless::Function")))
    def test_every_function_may_read_the_flags(self, function):
        policies = RESOURCES[function]["Properties"].get("Policies", [])

        assert {"Ref": "FlagsReadPolicy"} in policies, (
            f"add '- !Ref FlagsReadPolicy' to {function}'s Policies: it reads its flags"
        )

    @pytest.mark.parametrize(
        "output",
        [
            "FlagsApplicationId",
            "FlagsEnvironmentId",
            "FlagsConfigurationProfileId",
            "FlagsDeploymentStrategyId",
        ],
    )
    def test_operators_get_the_ids_the_rollout_commands_need(self, output):
        assert TEMPLATE["Outputs"][output]["Value"]
