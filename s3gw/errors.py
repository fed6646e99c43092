"""The one table of S3 errors: code -> HTTP status and AWS's message, and the XML error body.

Core errors (appliance.engine.errors) carry a stable `.code`; `from_exception` translates them here,
once, at the HTTP edge. Gateway-only failures (auth, framing, XML) raise S3Error directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from appliance.engine.errors import StowageError


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    message: str


TABLE: dict[str, ErrorSpec] = {
    # authentication
    "AccessDenied": ErrorSpec(403, "Access Denied"),
    "AccessForbidden": ErrorSpec(403, "CORSResponse: This CORS request is not allowed."),  # a refused preflight
    "InvalidAccessKeyId": ErrorSpec(
        403, "The AWS Access Key Id you provided does not exist in our records."
    ),
    "ExpiredToken": ErrorSpec(400, "The provided token has expired."),  # an access key past its expiry
    "SignatureDoesNotMatch": ErrorSpec(
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "RequestTimeTooSkewed": ErrorSpec(
        403, "The difference between the request time and the current time is too large."
    ),
    "AuthorizationHeaderMalformed": ErrorSpec(400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": ErrorSpec(
        400, "Error parsing the X-Amz-Credential parameter."
    ),
    "XAmzContentSHA256Mismatch": ErrorSpec(
        400, "The provided 'x-amz-content-sha256' header does not match what was computed."
    ),
    # request shape
    "InvalidRequest": ErrorSpec(400, "Invalid Request"),
    "BadRequest": ErrorSpec(400, "Bad Request"),  # a CORS preflight without Origin or method
    "InvalidArgument": ErrorSpec(400, "Invalid Argument"),
    "InvalidURI": ErrorSpec(400, "Couldn't parse the specified URI."),
    "MalformedXML": ErrorSpec(
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    ),
    "InvalidDigest": ErrorSpec(400, "The Content-MD5 or checksum value you specified is not valid."),
    "BadDigest": ErrorSpec(400, "The Content-MD5 or checksum you specified did not match what we received."),
    "IncompleteBody": ErrorSpec(
        400, "You did not provide the number of bytes specified by the Content-Length HTTP header."
    ),
    "InvalidChunkSizeError": ErrorSpec(400, "Only the last chunk is allowed to have a size less than 8192 bytes"),
    "MissingContentLength": ErrorSpec(411, "You must provide the Content-Length HTTP header."),
    "RequestTimeout": ErrorSpec(
        400,
        "Your socket connection to the server was not read from or written to within the timeout "
        "period. Idle connections will be closed.",
    ),
    "RequestHeaderSectionTooLarge": ErrorSpec(
        400, "Your request header section exceeds the maximum allowed size."
    ),
    "MaxMessageLengthExceeded": ErrorSpec(400, "Your request was too big."),
    "EntityTooLarge": ErrorSpec(400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": ErrorSpec(400, "Your proposed upload is smaller than the minimum allowed object size."),
    "KeyTooLongError": ErrorSpec(400, "Your key is too long"),
    "MetadataTooLarge": ErrorSpec(400, "Your metadata headers exceed the maximum allowed metadata size."),
    "InvalidTag": ErrorSpec(400, "The TagSet is not valid."),
    "AccessControlListNotSupported": ErrorSpec(400, "The bucket does not allow ACLs"),
    "InvalidBucketAclWithObjectOwnership": ErrorSpec(
        400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
    ),
    "MalformedACLError": ErrorSpec(
        400, "The XML you provided was not well-formed or did not validate against our published schema."
    ),
    "UnresolvableGrantByEmailAddress": ErrorSpec(
        400, "The email address you provided does not match any account on record."
    ),
    "MissingSecurityHeader": ErrorSpec(400, "Your request was missing a required header."),
    "MalformedPolicy": ErrorSpec(400, "Policies must be valid JSON and the first byte must be '{'"),
    "InvalidStorageClass": ErrorSpec(400, "The storage class you specified is not valid"),
    "InvalidRange": ErrorSpec(416, "The requested range is not satisfiable"),
    "InvalidPartNumber": ErrorSpec(416, "The requested partnumber is not satisfiable"),
    "InvalidPart": ErrorSpec(
        400,
        "One or more of the specified parts could not be found. The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag.",
    ),
    "InvalidPartOrder": ErrorSpec(
        400, "The list of parts was not in ascending order. Parts must be ordered by part number."
    ),
    "IllegalVersioningConfigurationException": ErrorSpec(
        400, "The versioning configuration specified in the request is invalid."
    ),
    "UnexpectedContent": ErrorSpec(400, "This request does not support content"),
    # POST Object (browser-form uploads)
    "MalformedPOSTRequest": ErrorSpec(400, "The body of your POST request is not well-formed multipart/form-data."),
    "MaxPostPreDataLengthExceeded": ErrorSpec(
        400, "Your POST request fields preceding the upload file were too large."
    ),
    "InvalidPolicyDocument": ErrorSpec(
        400, "The content of the form does not meet the conditions specified in the policy document."
    ),
    # resources
    "InvalidBucketName": ErrorSpec(400, "The specified bucket is not valid."),
    "NoSuchBucket": ErrorSpec(404, "The specified bucket does not exist"),
    "NoSuchKey": ErrorSpec(404, "The specified key does not exist."),
    "NoSuchVersion": ErrorSpec(404, "The specified version does not exist."),
    "NoSuchUpload": ErrorSpec(
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may "
        "have been aborted or completed.",
    ),
    "NoSuchTagSet": ErrorSpec(404, "The TagSet does not exist"),
    "ReplicationConfigurationNotFoundError": ErrorSpec(404, "The replication configuration was not found"),
    "NoSuchLifecycleConfiguration": ErrorSpec(404, "The lifecycle configuration does not exist"),
    "NoSuchConfiguration": ErrorSpec(404, "The specified configuration does not exist."),
    "InvalidObjectState": ErrorSpec(403, "The operation is not valid for the object's storage class"),
    "RestoreAlreadyInProgress": ErrorSpec(409, "Object restore is already in progress"),
    "QuotaExceeded": ErrorSpec(403, "The write would exceed a hard quota of the bucket or its owner."),
    "NoSuchBucketPolicy": ErrorSpec(404, "The bucket policy does not exist"),
    "NoSuchCORSConfiguration": ErrorSpec(404, "The CORS configuration does not exist"),
    "OwnershipControlsNotFoundError": ErrorSpec(404, "The bucket ownership controls were not found"),
    "NoSuchPublicAccessBlockConfiguration": ErrorSpec(404, "The public access block configuration was not found"),
    "ObjectLockConfigurationNotFoundError": ErrorSpec(404, "Object Lock configuration does not exist for this bucket"),
    "NoSuchObjectLockConfiguration": ErrorSpec(404, "The specified object does not have a ObjectLock configuration"),
    "InvalidBucketState": ErrorSpec(409, "The request is not valid with the current state of the bucket."),
    "BucketAlreadyExists": ErrorSpec(
        409, "The requested bucket name is not available. Please select a different name and try again."
    ),
    "BucketAlreadyOwnedByYou": ErrorSpec(
        409, "Your previous request to create the named bucket succeeded and you already own it."
    ),
    "BucketNotEmpty": ErrorSpec(409, "The bucket you tried to delete is not empty"),
    "InvalidTargetBucketForLogging": ErrorSpec(400, "The target bucket for logging does not exist"),
    "MethodNotAllowed": ErrorSpec(405, "The specified method is not allowed against this resource."),
    "PreconditionFailed": ErrorSpec(412, "At least one of the pre-conditions you specified did not hold"),
    "NotModified": ErrorSpec(304, "Not Modified"),
    "ServerSideEncryptionConfigurationNotFoundError": ErrorSpec(
        404, "The server side encryption configuration was not found"
    ),
    # the KMS of server-side encryption (AWS reports KMS's own codes)
    "KMS.NotFoundException": ErrorSpec(400, "Invalid keyId"),
    "KMS.DisabledException": ErrorSpec(400, "The KMS key is disabled."),
    # server side
    "NotImplemented": ErrorSpec(501, "A header you provided implies functionality that is not implemented"),
    "InternalError": ErrorSpec(500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": ErrorSpec(503, "Service is unable to handle request."),
    "SlowDown": ErrorSpec(503, "Please reduce your request rate."),
    "InsufficientStorage": ErrorSpec(507, "The pool does not have enough free space or healthy disks."),
}

# Core codes whose S3 spelling differs from the core's own name.
CORE_ALIASES: dict[str, str] = {
    "InsufficientShards": "ServiceUnavailable",
    "ObjectLocked": "AccessDenied",  # a version object lock protects: AWS's 403, with its message
    "DiskError": "InternalError",
    "FormatError": "InternalError",
    "ConfigError": "InternalError",
    "SseCustomerKeyRequired": "InvalidRequest",
    "SseCustomerKeyMismatch": "AccessDenied",
}


# Core errors whose message is not for clients (it names segments and disks), said plainly:
# "reduce your request rate" made clients retry unreadable data as if throttled.
CORE_MESSAGES: dict[str, str] = {
    "InsufficientShards": "The object's data cannot be read now: too many of the disks holding it are "
                          "missing or damaged.",
}


class S3Error(Exception):
    """An S3 error response: code, message, and extra XML fields (Key, BucketName, ...)."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
        **fields: str,
    ) -> None:
        spec = TABLE.get(code) or TABLE["InternalError"]
        self.code = code if code in TABLE else "InternalError"
        self.status = spec.status
        self.message = message or spec.message
        self.fields = fields
        self.headers = headers or {}
        self.close = close  # the connection cannot be reused after this error
        super().__init__(f"{self.code}: {self.message}")


def from_exception(exc: BaseException) -> S3Error:
    """Translate any exception to the S3Error a client should see."""
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, StowageError):
        code = CORE_ALIASES.get(exc.code, exc.code)
        if code not in TABLE:
            code = "InternalError"
        spec = TABLE[code]
        message = exc.message if code not in ("InternalError", "ServiceUnavailable") else spec.message
        return S3Error(code, CORE_MESSAGES.get(exc.code, message))
    return S3Error("InternalError")


def error_xml(err: S3Error, resource: str, request_id: str, host_id: str) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
        f"<Code>{err.code}</Code>",
        f"<Message>{escape(err.message)}</Message>",
    ]
    for name, value in err.fields.items():
        parts.append(f"<{name}>{escape(value)}</{name}>")
    if resource:
        parts.append(f"<Resource>{escape(resource)}</Resource>")
    parts.append(f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>")
    return "".join(parts).encode()
