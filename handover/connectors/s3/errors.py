"""botocore and urllib3 errors translated into handover's ConnectorError tree, naming s3://bucket/key.

Every S3 call of the connector goes through `s3_errors(where)` (or
`raise_s3_error` where a caller inspects the code first), so a failure reads
the same whichever module made the call: AuthFailed for refused
credentials, PermanentConnectorError for a missing bucket or object,
TransientConnectorError for an unreachable endpoint (tasks retry those). No
secret is ever in a message: the server's own words are quoted only for
unclassified errors and never for authentication ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NoReturn

from handover.errors import (
    AuthFailed,
    ConnectorError,
    PermanentConnectorError,
    TransientConnectorError,
)

__all__ = ["MISSING_OBJECT_CODES", "raise_s3_error", "s3_error_code", "s3_errors"]

_AUTH_CODES = {
    "InvalidAccessKeyId": "invalid access key",
    "SignatureDoesNotMatch": "signature does not match (wrong secret key?)",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "ExpiredToken": "expired session token",
    "InvalidToken": "invalid session token",
    "TokenRefreshRequired": "expired session token",
    "AuthorizationHeaderMalformed": "authorization header malformed (wrong region?)",
    "InvalidClientTokenId": "invalid access key",
    "403": "access denied",
    "Forbidden": "access denied",
}
_TRANSIENT_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "500",
    "502",
    "503",
    "504",
}
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
"""What HEAD and GET answer for a key that does not exist."""
_NO_SUCH_OBJECT_CODES = MISSING_OBJECT_CODES | {"NoSuchVersion"}
_PERMANENT_REASONS = {
    "PreconditionFailed": "object changed while it was being read (ETag differs): run again",
    "412": "object changed while it was being read (ETag differs): run again",
    "InvalidObjectState": "object is archived (Glacier / Deep Archive): restore it first",
}


def s3_error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError (`NoSuchKey`, `404`...), else ''."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def s3_errors(where: str) -> Iterator[None]:
    """Translate what the block raises into handover's errors naming `where` (s3://bucket/key)."""
    try:
        yield
    except Exception as exc:
        raise_s3_error(exc, where)


def raise_s3_error(exc: Exception, where: str) -> NoReturn:
    """Re-raise a botocore/urllib3 error as a ConnectorError naming `where` (s3://bucket/key).

    Wrong or missing credentials → AuthFailed; a missing bucket or key, a
    refused precondition, an archived object → PermanentConnectorError; a
    dead endpoint, a timeout, a 5xx → TransientConnectorError. A
    ConnectorError passes unchanged, and anything not from S3 (a bug) too.
    """
    translated = _translated(exc, where)
    if translated is exc:
        raise exc
    raise translated from exc


def _translated(exc: Exception, where: str) -> Exception:
    """The error to raise for `exc`: a new ConnectorError, or `exc` itself when none fits."""
    import botocore.exceptions

    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        return _from_client_error(exc, where)
    return _from_transport_error(exc, where)


def _from_client_error(exc: Any, where: str) -> ConnectorError:
    """An error the server answered: classified by its code, else by its HTTP status."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _AUTH_CODES:
        return AuthFailed(f"{_AUTH_CODES[code]} ({code})", host=where)
    if code == "NoSuchBucket" or (code == "404" and "/" not in where[5:]):
        bucket = where[5:].split("/", 1)[0]
        return PermanentConnectorError("bucket does not exist", host=f"s3://{bucket}")
    if code in _NO_SUCH_OBJECT_CODES:
        return PermanentConnectorError("no such object", host=where)
    if code in _PERMANENT_REASONS:
        return PermanentConnectorError(_PERMANENT_REASONS[code], host=where)
    if code in _TRANSIENT_CODES or status >= 500:
        return TransientConnectorError(f"server error {code or status}", host=where)
    message = str(error.get("Message", ""))[:200]
    return PermanentConnectorError(f"{code or status}: {message}".rstrip(": "), host=where)


def _from_transport_error(exc: Exception, where: str) -> Exception:
    """An error on the client's side of the wire: credentials, endpoint, connection, checksum."""
    import botocore.exceptions as boto
    import urllib3.exceptions

    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return AuthFailed(
            "no usable credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or perimeter.s3 references)",
            host=where,
        )
    if isinstance(exc, boto.EndpointConnectionError):
        return TransientConnectorError(
            f"endpoint unreachable ({exc.kwargs.get('endpoint_url', '?')})", host=where
        )
    if isinstance(
        exc,
        boto.ConnectionError
        | boto.HTTPClientError
        | boto.ReadTimeoutError
        | boto.ResponseStreamingError
        | urllib3.exceptions.HTTPError
        | ConnectionError
        | TimeoutError,
    ):
        return TransientConnectorError(f"connection lost ({type(exc).__name__})", host=where)
    if isinstance(exc, boto.FlexibleChecksumError):
        return PermanentConnectorError(
            "the data received does not match the object's checksum", host=where
        )
    if isinstance(exc, boto.BotoCoreError):
        return PermanentConnectorError(f"{type(exc).__name__}: {exc}", host=where)
    return exc
