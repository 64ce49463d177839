"""List tagged resources while other requests create resources, as AWS does.

Upstream behaviour mended (moto 5.2.5,
moto/resourcegroupstaggingapi/models.py, _get_resources_generator, and
moto/core/resource_tagging.py, iter_taggable_backends): GetResources walks
the live dictionaries of every service's accounts, regions and resources
lazily. moto's server answers requests on several threads, so a resource,
region or account created meanwhile by another request (another stack being
applied in the same emulator) raises "RuntimeError: dictionary changed size
during iteration" inside moto, which answers HTTP 500 with an HTML page
instead of an AWS error: the caller reads it as an unsupported call.

AWS's behaviour (Resource Groups Tagging API Reference, GetResources): the
call answers with the tagged resources it finds; resources created at the
same time may or may not be listed, and the call does not fail because of
them. The patch takes the listing in one go, walking again when a dictionary
changed under it.
"""

from moto.resourcegroupstaggingapi import models

UPSTREAM = {}

ATTEMPTS = 20


def _settled(walk):
    def listing(self, *args, **kwargs):
        for attempt in range(ATTEMPTS):
            try:
                items = list(walk(self, *args, **kwargs))
                break
            except RuntimeError:
                if attempt == ATTEMPTS - 1:
                    raise
        yield from items

    return listing


def apply() -> None:
    if UPSTREAM:
        return
    cls = models.ResourceGroupsTaggingAPIBackend
    for name in ("_get_resources_generator", "_get_tag_keys_generator", "_get_tag_values_generator"):
        UPSTREAM[name] = getattr(cls, name)
        setattr(cls, name, _settled(UPSTREAM[name]))
