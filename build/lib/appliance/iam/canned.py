"""Canned identity policies, named as MinIO users know them.

- readonly: read and list every bucket (MinIO's own `readonly` cannot list, a frequent surprise;
  ours can, like its `consolereadonly`);
- writeonly: upload objects (PutObject covers multipart uploads), nothing else;
- readwrite: every S3 action on every bucket and object;
- admin: everything, S3, IAM and the appliance's own `stowage:` actions (MinIO's consoleAdmin).

They are documents, parsed like any other policy, so `stowage policy show readonly` prints
exactly what is enforced.
"""

from __future__ import annotations

import json

_VERSION = "2012-10-17"


def _document(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": _VERSION, "Statement": list(statements)}, indent=2)


CANNED: dict[str, str] = {
    "readonly": _document({
        "Effect": "Allow",
        "Action": ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListAllMyBuckets"],
        "Resource": ["arn:aws:s3:::*"],
    }),
    "writeonly": _document({
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::*"],
    }),
    "readwrite": _document({
        "Effect": "Allow",
        "Action": ["s3:*"],
        "Resource": ["arn:aws:s3:::*"],
    }),
    "admin": _document({
        "Effect": "Allow",
        "Action": ["s3:*", "iam:*", "stowage:*"],
        "Resource": ["*"],
    }),
}
