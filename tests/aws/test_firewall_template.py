"""Per-client rate limits in front of the API, and no way around them (issue 23, outcome 8):
AWS WAF's rate-based rules on the stage, the execute-api endpoint off with a custom domain."""

from __future__ import annotations

from typing import Any

from rft_tools.cfn_template import load_template
from tests.conftest import PROJECT_ROOT

TEMPLATE = load_template(PROJECT_ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]


def _rule(name: str) -> dict[str, Any]:
    [rule] = [
        rule for rule in RESOURCES["ApiFirewall"]["Properties"]["Rules"] if rule["Name"] == name
    ]
    return rule


def _scoped_to(rule: dict[str, Any]) -> tuple[str, str]:
    statements = rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["AndStatement"][
        "Statements"
    ]
    matches = {
        next(iter(statement["ByteMatchStatement"]["FieldToMatch"])): statement["ByteMatchStatement"]
        for statement in statements
    }
    assert matches["UriPath"]["PositionalConstraint"] == "ENDS_WITH"
    assert [t["Type"] for t in matches["UriPath"]["TextTransformations"]] == ["URL_DECODE"]
    return matches["Method"]["SearchString"], matches["UriPath"]["SearchString"]


def test_a_regional_web_acl_blocks_clients_over_each_rate_per_ip():
    firewall = RESOURCES["ApiFirewall"]
    assert firewall["Type"] == "AWS::WAFv2::WebACL"
    assert firewall["Properties"]["Scope"] == "REGIONAL"
    assert firewall["Properties"]["DefaultAction"] == {"Allow": {}}
    limits = {}
    for rule in firewall["Properties"]["Rules"]:
        rate = rule["Statement"]["RateBasedStatement"]
        assert rule["Action"] == {"Block": {}}
        assert (rate["AggregateKeyType"], rate["EvaluationWindowSec"]) == ("IP", 300)
        limits[rule["Name"]] = rate["Limit"]
    assert limits == {
        "sign-in-per-client": {"Ref": "WafSignInLimit"},
        "payment-intents-per-client": {"Ref": "WafPaymentIntentLimit"},
        "requests-per-client": {"Ref": "WafRequestLimit"},
    }
    assert _scoped_to(_rule("sign-in-per-client")) == ("POST", "/api/admin/auth/login")
    assert _scoped_to(_rule("payment-intents-per-client")) == (
        "POST",
        "/api/bookings/create-payment-intent",
    )
    assert (
        "ScopeDownStatement" not in _rule("requests-per-client")["Statement"]["RateBasedStatement"]
    )


def test_the_web_acl_guards_the_api_stage_and_can_be_left_off():
    association = RESOURCES["ApiFirewallAssociation"]
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["ApiFirewall", "Arn"]}
    assert (
        "/restapis/${Api}/stages/${Api.Stage}"
        in association["Properties"]["ResourceArn"]["Fn::Sub"]
    )
    assert RESOURCES["ApiFirewall"]["Condition"] == association["Condition"] == "UsesWaf"
    assert TEMPLATE["Conditions"]["UsesWaf"] == {"Fn::Equals": [{"Ref": "WafEnabled"}, "true"]}
    assert TEMPLATE["Parameters"]["WafEnabled"]["Default"] == "true"


def test_with_a_custom_domain_the_execute_api_endpoint_is_disabled():
    api = RESOURCES["Api"]["Properties"]
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["HasCustomDomain", True, False]}
    assert TEMPLATE["Conditions"]["HasCustomDomain"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CustomDomainName"}, ""]}]
    }
    assert RESOURCES["ApiDomain"]["Condition"] == "HasCustomDomain"
    assert RESOURCES["ApiDomainMapping"]["Properties"]["RestApiId"] == {"Ref": "Api"}
