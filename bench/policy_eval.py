"""Policy evaluation micro-benchmark: what authorization costs one S3 request.

    python -m bench.policy_eval [--quick]

A user with 3 attached policies of 10 statements each (wildcard actions and resources, a
policy variable, conditions) and a bucket policy with conditions (aws:SourceIp, TLS required,
a prefix rule); prints evaluations per second and microseconds per evaluation, request
construction (context normalisation) included, for an allowed GET, an allowed PUT, a request
denied by a Deny statement, an implicitly denied one, and the root user beside them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from appliance.iam.policy import AuthzRequest, Decision, Policy, Principal, authorize, parse_policy, s3_arn

V = "2012-10-17"


def identity_policies() -> list[Policy]:
    policies = []
    for n in range(3):
        statements: list[dict[str, object]] = []
        for i in range(10):
            bucket = f"team{n}-data{i}"
            statements.append({
                "Sid": f"S{n}x{i}",
                "Effect": "Deny" if i == 9 else "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:List*"] if i % 2 else ["s3:Put*", "s3:Get*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*",
                             f"arn:aws:s3:::home/${{aws:username}}/{bucket}/*"],
                **({"Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/*"]}}}
                   if i % 3 == 0 and i != 9 else {}),
            })
        policies.append(parse_policy(json.dumps({"Version": V, "Statement": statements}), "identity",
                                     name=f"team{n}"))
    return policies


def bucket_policy() -> Policy:
    return parse_policy(json.dumps({"Version": V, "Statement": [
        {"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:Delete*",
         "Resource": "arn:aws:s3:::shared/*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}},
        {"Sid": "TeamRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"],
         "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}},
        {"Sid": "TeamWrite", "Effect": "Allow", "Principal": {"AWS": "000000000000"},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::shared/incoming/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]}), "resource", bucket="shared", name="shared")


def context(acl: str | None = None) -> dict[str, str | list[str]]:
    ctx: dict[str, str | list[str]] = {
        "aws:SourceIp": "192.0.2.10", "aws:SecureTransport": "true", "aws:CurrentTime": "2025-01-01T00:00:00Z",
        "aws:EpochTime": "1735689600", "s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "REST-HEADER",
    }
    if acl:
        ctx["s3:x-amz-acl"] = acl
    return ctx


def rate(fn: Callable[[], Decision], seconds: float) -> tuple[float, Decision]:
    decision = fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            fn()
        n += 200
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start), decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s per case instead of 2 s")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 2.0
    ident, bucket = identity_policies(), bucket_policy()
    alice, root = Principal.user("alice"), Principal.root()
    cases: list[tuple[str, Principal, str, str, str | None]] = [
        ("GET allowed (bucket policy)", alice, "s3:GetObject", s3_arn("shared", "reports/q1.csv"), None),
        ("PUT allowed (bucket policy)", alice, "s3:PutObject", s3_arn("shared", "incoming/x"),
         "bucket-owner-full-control"),
        ("GET allowed (identity)", alice, "s3:GetObject", s3_arn("team2-data4", "k"), None),
        ("GET explicit deny", alice, "s3:GetObject", s3_arn("team1-data9", "k"), None),
        ("PUT implicit deny", alice, "s3:PutObject", s3_arn("elsewhere", "k"), None),
        ("root GET (same policies)", root, "s3:GetObject", s3_arn("shared", "k"), None),
    ]
    print(f"{'case':32} {'decision':72} {'evals/s':>10} {'us/eval':>8}")
    for label, principal, action, resource, acl in cases:
        ctx = context(acl)
        policies = [] if principal.kind == "root" else ident

        def one(principal: Principal = principal, action: str = action, resource: str = resource,
                ctx: dict[str, str | list[str]] = ctx, policies: list[Policy] = policies) -> Decision:
            return authorize(AuthzRequest(principal, action, resource, ctx), policies, bucket)

        per_s, decision = rate(one, seconds)
        print(f"{label:32} {str(decision)[:72]:72} {per_s:>10,.0f} {1e6 / per_s:>8.1f}")


if __name__ == "__main__":
    main()
