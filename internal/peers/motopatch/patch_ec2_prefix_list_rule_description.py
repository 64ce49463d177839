"""Keep the description of a security group rule whose source or
destination is a prefix list, as AWS does.

Upstream behaviour mended (moto 5.2.5, moto/ec2/models/security_groups.py):
SecurityGroupRule keeps only the PrefixListId of a PrefixListIds entry, and
SecurityGroup._flattened_rules lists {"PrefixListId": ...} alone, so a rule
authorized with a Description reads back without it, and every plan sees a
difference that is not there.

AWS's rule, from the EC2 API Reference (PrefixListId): the entry carries
PrefixListId and Description, and DescribeSecurityGroups returns both.
"""

from moto.ec2.models import security_groups

UPSTREAM = {}


def _rule_init(self, *args, **kwargs):
    UPSTREAM["rule_init"](self, *args, **kwargs)
    entry = kwargs.get("prefix_list_id")
    if entry is None and len(args) >= 8:
        entry = args[7]
    self.prefix_list_description = (entry or {}).get("Description")


def _flattened_rules(self, rules):
    views = UPSTREAM["flattened_rules"](self, rules)
    for view in views:
        for entry in view.prefix_list_ids:
            for rule in rules:
                if (
                    rule.prefix_list_id == entry.get("PrefixListId")
                    and rule.from_port == view.from_port
                    and rule.to_port == view.to_port
                    and rule.ip_protocol == view.ip_protocol
                    and getattr(rule, "prefix_list_description", None)
                ):
                    entry["Description"] = rule.prefix_list_description
    return views


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["rule_init"] = security_groups.SecurityGroupRule.__init__
    UPSTREAM["flattened_rules"] = security_groups.SecurityGroup._flattened_rules
    security_groups.SecurityGroupRule.__init__ = _rule_init
    security_groups.SecurityGroup._flattened_rules = _flattened_rules
