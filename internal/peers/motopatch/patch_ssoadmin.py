"""Serve the tagging calls of IAM Identity Center (sso-admin) and refuse a
second permission set of the same name, as AWS does.

Upstream behaviour mended (moto 5.2.5, moto/ssoadmin/responses.py and
models.py):

1. TagResource, UntagResource and ListTagsForResource are not implemented
   (moto answers an HTML 500), although CreatePermissionSet keeps the tags
   it is given. AWS tags permission sets and lists their tags with
   ListTagsForResource(InstanceArn, ResourceArn).
2. CreatePermissionSet accepts a name that already exists in the instance.
   AWS answers ConflictException: a permission set's name is unique within
   its Identity Center instance.
"""

import json

UPSTREAM = {}


def _find(backend, instance_arn, resource_arn):
    return backend._find_permission_set(instance_arn, resource_arn)


def _list_tags_for_resource(self):
    ps = _find(self.ssoadmin_backend, self._get_param("InstanceArn"), self._get_param("ResourceArn"))
    return json.dumps({"Tags": list(ps.tags or [])})


def _tag_resource(self):
    ps = _find(self.ssoadmin_backend, self._get_param("InstanceArn"), self._get_param("ResourceArn"))
    tags = {t["Key"]: t.get("Value", "") for t in (ps.tags or [])}
    for t in self._get_param("Tags") or []:
        tags[t["Key"]] = t.get("Value", "")
    ps.tags = [{"Key": k, "Value": v} for k, v in tags.items()]
    return "{}"


def _untag_resource(self):
    ps = _find(self.ssoadmin_backend, self._get_param("InstanceArn"), self._get_param("ResourceArn"))
    drop = set(self._get_param("TagKeys") or [])
    ps.tags = [t for t in (ps.tags or []) if t["Key"] not in drop]
    return "{}"


def _create_permission_set(self, name, description, instance_arn, session_duration, relay_state, tags):
    from moto.ssoadmin.exceptions import ConflictException

    for ps in self.permission_sets:
        if ps.instance_arn == instance_arn and ps.name == name:
            raise ConflictException(message=f"PermissionSet with name {name} already exists")
    return UPSTREAM["create_permission_set"](self, name, description, instance_arn, session_duration, relay_state, tags)


def apply():
    from moto.ssoadmin.models import SSOAdminBackend
    from moto.ssoadmin.responses import SSOAdminResponse

    if UPSTREAM:
        return
    UPSTREAM["create_permission_set"] = SSOAdminBackend.create_permission_set
    SSOAdminBackend.create_permission_set = _create_permission_set
    SSOAdminResponse.list_tags_for_resource = _list_tags_for_resource
    SSOAdminResponse.tag_resource = _tag_resource
    SSOAdminResponse.untag_resource = _untag_resource
