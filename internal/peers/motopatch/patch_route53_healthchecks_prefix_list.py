"""Serve the AWS-managed prefix lists of Route 53 health checkers,
com.amazonaws.<region>.route53-healthchecks (IPv4) and
com.amazonaws.<region>.ipv6.route53-healthchecks, in every region.

Upstream behaviour mended (moto 5.2.5,
moto/ec2/models/managed_prefixes.py, create_default_pls): moto creates the
S3, DynamoDB, CloudFront, Ground Station and VPC Lattice lists but not
Route 53's, which AWS has served in every region since September 2023
(VPC User Guide, "AWS-managed prefix lists": weight 25 each). A security
group admitting health checkers by that list is accepted on AWS and refused
by moto ("no managed prefix list named ...").

The entries are a sample of the ROUTE53_HEALTHCHECKS ranges AWS publishes
in ip-ranges.json; nothing here reaches them.
"""

from moto.ec2.models import managed_prefixes

UPSTREAM = {}

IPV4 = [
    "15.177.0.0/18",
    "54.183.255.128/26",
    "54.228.16.0/26",
    "54.232.40.64/26",
    "54.241.32.64/26",
    "54.243.31.192/26",
    "54.244.52.192/26",
    "54.245.168.0/26",
    "54.248.220.0/26",
    "54.250.253.192/26",
    "54.251.31.128/26",
    "54.252.79.128/26",
    "54.255.254.192/26",
    "107.23.255.0/26",
    "176.34.159.192/26",
    "177.71.207.128/26",
]
IPV6 = ["2600:1f14:7ff:f800::/56", "2600:1f18:7fff:f800::/56", "2a05:d018:fff:f800::/56"]


def _create_default_pls(self) -> None:
    UPSTREAM["create_default_pls"](self)
    region = self.region_name
    for name, family, cidrs in (
        (f"com.amazonaws.{region}.route53-healthchecks", "IPv4", IPV4),
        (f"com.amazonaws.{region}.ipv6.route53-healthchecks", "IPv6", IPV6),
    ):
        if any(pl.prefix_list_name == name for pl in self.managed_prefix_lists.values()):
            continue
        self._create_aws_managed_prefix_list(
            name=name, address_family=family, entries=[{"Cidr": c, "Description": "Route 53 health checkers"} for c in cidrs]
        )


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["create_default_pls"] = managed_prefixes.ManagedPrefixListBackend.create_default_pls
    managed_prefixes.ManagedPrefixListBackend.create_default_pls = _create_default_pls
