"""Keep scaling policies with their Auto Scaling group, as AWS does.

Upstream behaviour mended (moto 5.2.5, moto/autoscaling/models.py,
AutoScalingBackend.put_scaling_policy and delete_auto_scaling_group):
PutScalingPolicy stores a policy for any group name, existing or not, and
DeleteAutoScalingGroup leaves the group's policies behind. A policy then
outlives its group: a later group of the same name (a re-create after a
failed apply, or after the emulator lost its state) finds a policy its
owner never made, and the portal, which judges a policy's owner by its
group's tags, reads it as someone else's and refuses to adopt it.

AWS's rules (Amazon EC2 Auto Scaling API Reference): PutScalingPolicy names
an existing group and fails otherwise with ValidationError "AutoScalingGroup
name not found - null" (AWS's own wording, as SDK users report it); "If the group
has scaling policies, deleting the group deletes the policies, the
underlying alarm actions, and any alarm that no longer has an associated
action" (DeleteAutoScalingGroup).
"""

from moto.autoscaling import models
from moto.autoscaling.exceptions import ValidationError

UPSTREAM = {}


def _put_scaling_policy(self, name, policy_type, metric_aggregation_type, adjustment_type, as_name, *args, **kwargs):
    if as_name not in self.autoscaling_groups:
        raise ValidationError("AutoScalingGroup name not found - null")
    return UPSTREAM["put_scaling_policy"](self, name, policy_type, metric_aggregation_type, adjustment_type, as_name, *args, **kwargs)


def _delete_auto_scaling_group(self, group_name):
    UPSTREAM["delete_auto_scaling_group"](self, group_name)
    for name in [n for n, p in self.policies.items() if p.auto_scaling_group_name == group_name]:
        del self.policies[name]


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["put_scaling_policy"] = models.AutoScalingBackend.put_scaling_policy
    UPSTREAM["delete_auto_scaling_group"] = models.AutoScalingBackend.delete_auto_scaling_group
    models.AutoScalingBackend.put_scaling_policy = _put_scaling_policy
    models.AutoScalingBackend.delete_auto_scaling_group = _delete_auto_scaling_group
