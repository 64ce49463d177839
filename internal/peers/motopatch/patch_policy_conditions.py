"""Judge the Condition of policy statements as AWS does, with
aws:SecureTransport in the request context.

Upstream behaviour mended (moto 5.2.5, moto/iam/access_control.py and
moto/iam/policy_conditions.py):

1. moto never puts aws:SecureTransport in the request context:
   IAMPolicyStatement._check_conditions only ever sees the sts:ExternalId
   of an AssumeRole call, and S3 asks a bucket policy with no context at
   all (FakeBucket.get_permission).
2. A condition whose key is absent from the request context counts as met:
   _check_conditions collects no value for it and
   TrustCondition.verify_condition accepts an empty list. Only StringEquals
   is evaluated; every other operator (Bool among them) counts as met.
3. A statement whose condition does not match answers DENIED, whatever its
   effect (IAMPolicyStatement.is_action_permitted), where AWS simply leaves
   the statement out.

Together they make a TLS-only bucket policy (Deny s3:* when
aws:SecureTransport is false) refuse every object call, over HTTPS too,
which AWS never does.

AWS's rules, from the IAM User Guide ("IAM JSON policy elements:
Condition operators" and "Condition keys not present in the request"):
a statement applies only when every operator in its Condition matches;
within one operator every key must match; a key matches when any of its
values does. A key absent from the request context does not match, except
that negated operators (StringNotEquals, StringNotLike, ArnNotEquals,
ArnNotLike, ...) and ...IfExists operators then match, ForAllValues then
matches, and Null tests exactly whether the key is there. Condition key
names are not case-sensitive.

The request context this patch gives: aws:SecureTransport ("true" when the
request reached moto over TLS, read from the WSGI url scheme) plus what
moto itself passes (sts:ExternalId). An operator this patch does not know
is judged as upstream moto judges it (met), and logged.
"""

import contextlib
import logging
import re
import threading

log = logging.getLogger("moto.portal_patch.policy_conditions")

_request = threading.local()

# The functions this patch replaces, kept for the test that checks upstream
# still needs it.
UPSTREAM = {}


@contextlib.contextmanager
def request_context(values):
    """Make values (condition key -> string) the request context of the
    policy evaluations done inside the with block, on this thread."""
    previous = getattr(_request, "values", None)
    _request.values = {k.lower(): v for k, v in values.items()}
    try:
        yield
    finally:
        _request.values = previous


def current_context():
    return dict(getattr(_request, "values", None) or {})


def record_scheme(call):
    """Wrap a WSGI application's __call__ so each request runs with
    aws:SecureTransport set from the scheme it arrived by."""

    def __call__(self, environ, start_response):
        secure = "true" if environ.get("wsgi.url_scheme") == "https" else "false"
        with request_context({"aws:SecureTransport": secure}):
            return call(self, environ, start_response)

    return __call__


def _text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _values(v):
    if isinstance(v, list):
        return [_text(x) for x in v]
    return [_text(v)]


def _like(pattern, value):
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.DOTALL) is not None


# Positive operators: expected value, actual value -> match.
_MATCH = {
    "StringEquals": lambda e, a: a == e,
    "StringEqualsIgnoreCase": lambda e, a: a.lower() == e.lower(),
    "StringLike": _like,
    "ArnEquals": _like,
    "ArnLike": _like,
    "Bool": lambda e, a: a.lower() == e.lower(),
}
# Negated operators and the positive operator they negate.
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def operator_matches(operator, block, context):
    """Whether one condition operator with its keys matches context (keys in
    lower case)."""
    name = operator
    qualifier = ""
    for q in ("ForAnyValue:", "ForAllValues:"):
        if name.startswith(q):
            qualifier, name = q[:-1], name[len(q):]
    if_exists = name.endswith("IfExists") and name != "IfExists"
    if if_exists:
        name = name[: -len("IfExists")]
    if name != "Null" and name not in _MATCH and name not in _NEGATED:
        log.warning("condition operator %s is not evaluated by this emulator; treated as met, as upstream moto does", operator)
        return True
    for key, expected in block.items():
        expected = _values(expected)
        present = key.lower() in context
        if name == "Null":
            if not any((e.lower() == "true") == (not present) for e in expected):
                return False
            continue
        if not present:
            if if_exists or name in _NEGATED or qualifier == "ForAllValues":
                continue
            return False
        actual = _values(context[key.lower()])
        positive = _MATCH[_NEGATED.get(name, name)]

        def one(a):
            hit = any(positive(e, a) for e in expected)
            return not hit if name in _NEGATED else hit

        if qualifier == "ForAllValues":
            ok = all(one(a) for a in actual)
        else:
            ok = any(one(a) for a in actual)
        if not ok:
            return False
    return True


def _check_conditions(self, incoming_condition_values):
    conditions = self._statement.get("Condition")
    if not conditions:
        return True
    context = current_context()
    for k, v in (incoming_condition_values or {}).items():
        context[k.lower()] = v
    return all(operator_matches(op, block, context) for op, block in conditions.items())


def _is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    from moto.iam.access_control import PermissionResult

    if "NotAction" in self._statement:
        concerned = not self._check_element_matches("NotAction", action)
    else:
        concerned = self._check_element_matches("Action", action)
    if not concerned:
        return PermissionResult.NEUTRAL
    if self.is_unknown_principal(self._statement.get("Principal")):
        return PermissionResult.NEUTRAL
    if principal and not self._check_principal(principal):
        return PermissionResult.DENIED
    if not self._check_conditions(incoming_condition_values):
        # AWS leaves out a statement whose condition does not match.
        return PermissionResult.NEUTRAL
    if not self._statement.get("Resource"):
        return PermissionResult.PERMITTED
    if not self._check_element_matches("Resource", resource):
        return PermissionResult.NEUTRAL
    if self._statement["Effect"] == "Allow":
        return PermissionResult.PERMITTED
    return PermissionResult.DENIED


def apply():
    from moto.iam.access_control import IAMPolicyStatement
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if UPSTREAM:
        return
    UPSTREAM["is_action_permitted"] = IAMPolicyStatement.is_action_permitted
    UPSTREAM["_check_conditions"] = IAMPolicyStatement._check_conditions
    UPSTREAM["__call__"] = DomainDispatcherApplication.__call__
    IAMPolicyStatement.is_action_permitted = _is_action_permitted
    IAMPolicyStatement._check_conditions = _check_conditions
    DomainDispatcherApplication.__call__ = record_scheme(DomainDispatcherApplication.__call__)
