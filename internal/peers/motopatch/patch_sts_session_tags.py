"""Judge AssumeRole's session tags as AWS does, and keep them on the session.

Upstream behaviour mended (moto 5.2.5, moto/sts/responses.py and models.py):
AssumeRole ignores its Tags and TransitiveTagKeys parameters. AWS
(IAM User Guide, "Pass session tags in AWS STS"; STS API Reference, Tag):

1. refuses the call with AccessDenied when the role's trust policy does not
   allow sts:TagSession, since passing session tags needs that permission
   besides sts:AssumeRole. This patch judges it for roles that exist in
   moto's IAM (moto lets a caller assume a role that does not exist, and
   such a call is left as moto answers it); it looks at the trust policy's
   Allow statements and their Action only, not at Principal or Condition;
2. refuses more than 50 session tags, and keys (1 to 128 characters) or
   values (up to 256) outside the pattern [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@],
   with ValidationError;
3. keeps the tags on the session: the assumed role carries session_tags and
   transitive_tag_keys, for tests to read.
"""

import fnmatch
import json
import re
import urllib.parse

UPSTREAM = {}

MAX_TAGS = 50
# Letters, separators and numbers in any script, and _.:/=+-@ (the STS API
# Reference's [\p{L}\p{Z}\p{N}_.:/=+\-@]; Python's \w covers letters,
# numbers and _, \s the separators).
_ALLOWED = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)


def _tags(response):
    tags = response._get_param("Tags") or []
    out = []
    for t in tags:
        out.append((t.get("Key", ""), t.get("Value", "")))
    return out


def _validate(tags):
    from moto.sts.exceptions import STSValidationError

    if len(tags) > MAX_TAGS:
        raise STSValidationError(f"1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}")
    for key, value in tags:
        if not (1 <= len(key) <= 128) or not _ALLOWED.match(key):
            raise STSValidationError(f"1 validation error detected: Value '{key}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128 and match [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]+")
        if len(value) > 256 or not _ALLOWED.match(value):
            raise STSValidationError(f"1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256 and match [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*")


def _actions(statement):
    a = statement.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def trust_allows_tag_session(document):
    """Whether a trust policy has an Allow statement whose Action covers
    sts:TagSession (wildcards and case as IAM matches actions)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(urllib.parse.unquote(document))
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        for action in _actions(st):
            if fnmatch.fnmatchcase("sts:tagsession", action.lower()):
                return True
    return False


def _existing_role(role_arn):
    from moto.iam.models import iam_backends

    m = re.match(r"^arn:(aws[\w-]*):iam::(\d{12}):role/", role_arn or "")
    if not m:
        return None
    try:
        return iam_backends[m.group(2)][m.group(1)].get_role_by_arn(role_arn)
    except Exception:
        return None


def _assume_role(self):
    from moto.core.exceptions import AccessDeniedError

    tags = _tags(self)
    transitive = list(self._get_param("TransitiveTagKeys") or [])
    if tags or transitive:
        _validate(tags)
        role_arn = self._get_param("RoleArn")
        role = _existing_role(role_arn)
        if role is not None and not trust_allows_tag_session(role.assume_role_policy_document):
            # AWS names the caller's ARN; moto's request does not carry it here.
            raise AccessDeniedError(f"(the caller in account {self.current_account})", f"sts:TagSession on resource: {role_arn}")
    result = UPSTREAM["assume_role"](self)
    # The credentials are the assumed-role session moto keeps.
    session = result.result["Credentials"]
    session.session_tags = dict(tags)
    session.transitive_tag_keys = transitive
    return result


def apply():
    from moto.sts.responses import TokenResponse

    if UPSTREAM:
        return
    UPSTREAM["assume_role"] = TokenResponse.assume_role
    TokenResponse.assume_role = _assume_role
