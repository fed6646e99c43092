"""Presigned GET URLs for the console's downloads and share links (SigV4 query signing).

The console signs with the logged-in user's own key, so a link grants exactly what that user
may read, for at most MAX_EXPIRES seconds (AWS's limit for SigV4), and stops working when the
key is revoked.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from ..sigv4 import ALGORITHM, UNSIGNED, canonical_query, sign, signing_key, string_to_sign, uri_encode

MAX_EXPIRES = 7 * 24 * 3600


def presign_get(scheme: str, host: str, bucket: str, key: str, access_key: str, secret: str, region: str,
                expires: int, now: datetime, *, version_id: str | None = None, attachment: str | None = None) -> str:
    """A URL that GETs bucket/key (or its version) for `expires` seconds from `now`; with
    `attachment`, the answer asks the browser to save it under that file name."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    params = {"X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{access_key}/{scope}", "X-Amz-Date": amz_date,
              "X-Amz-Expires": str(max(1, min(expires, MAX_EXPIRES))), "X-Amz-SignedHeaders": "host"}
    if version_id:
        params["versionId"] = version_id
    if attachment is not None:
        params["response-content-disposition"] = f"attachment; filename*=UTF-8''{quote(attachment, safe='')}"
    raw_query = "&".join(f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}"
                         for k, v in params.items())
    path = "/" + bucket + "/" + uri_encode(key, keep_slash=True)
    creq = f"GET\n{path}\n{canonical_query(raw_query, drop_signature=False)}\nhost:{host}\n\nhost\n{UNSIGNED}"
    signature = sign(signing_key(secret, amz_date[:8], region, "s3"), string_to_sign(amz_date, scope, creq))
    return f"{scheme}://{host}{path}?{raw_query}&X-Amz-Signature={signature}"
