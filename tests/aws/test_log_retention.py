"""Every function logs to a log group of its own with a retention period: logs hold
fingerprints and request details, and nothing may outlive what erasure and retention
remove (issue 23, outcome 9). Lambda's default group keeps logs forever."""

from __future__ import annotations

from rft_tools.cfn_template import load_template
from tests.conftest import PROJECT_ROOT

RESOURCES = load_template(PROJECT_ROOT / "template.yaml")["Resources"]
FUNCTIONS = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::Function"
}


def test_every_function_logs_to_its_own_group_with_a_retention_period():
    groups = []
    for name, function in FUNCTIONS.items():
        reference = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert reference == {"Ref": f"{name}LogGroup"}, name
        group = RESOURCES[f"{name}LogGroup"]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert group["Properties"]["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{name}"
        }
        groups.append(name)
    assert len(groups) == len(FUNCTIONS) >= 11
