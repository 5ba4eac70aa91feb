"""cdk-nag v3 acknowledgments, each with its reason, scoped to one construct or finding."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge cdk-nag finding ``rule`` (e.g. ``AwsSolutions-S1``) on ``scope``.

    A reason is mandatory: it is the audit trail of why the rule does not apply.
    """
    if not reason.strip():
        raise ValueError(f"{rule}: an acknowledgment needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical ID of ``construct`` (or of its default child)."""
    element = construct if isinstance(construct, CfnElement) else construct.node.default_child
    if not isinstance(element, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    stack = Stack.of(element)
    return str(stack.resolve(stack.get_logical_id(element)))


def arn_finding(resource: IConstruct, suffix: str = "", attribute: str = "Arn") -> str:
    """The cdk-nag IAM5 finding for a resource ARN with a wildcard ``suffix``.

    e.g. ``Resource::<LakeBucket1234.Arn>/lake/*``.
    """
    return f"AwsSolutions-IAM5[Resource::<{logical_id(resource)}.{attribute}>{suffix}]"


def depends_only_on(resource: IConstruct, *deps: IConstruct) -> None:
    """Set ``resource``'s DependsOn to exactly ``deps``.

    CDK's Function also depends on its role, which the template already implies through
    GetAtt; cfn-lint reports that as W3005. The policies are the real ordering need (a
    mapping or an invocation must not race the role's permissions).
    """
    element = resource if isinstance(resource, CfnResource) else resource.node.default_child
    assert isinstance(element, CfnResource)
    element.add_override("DependsOn", sorted(logical_id(d) for d in deps))
