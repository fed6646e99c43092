"""The S3 gateway: a sans-IO core in a thin trio shell.

    service.py   serve_s3(): bind cfg.s3.listen (TLS optional), connection cap, drain on cancel
    http.py      httptools (llhttp) over trio: keep-alive, 100-continue, timeouts, header cap, bounded streaming
    app.py       one request -> route -> SigV4, SigV2 or anonymous -> authorization -> operation;
                 every failure becomes S3 XML here
    identity.py  the identity source the gateway authenticates against; owners and canonical ids
    authz.py     per operation the S3 action(s), resources and condition keys; the authorizer
                 (identity policies, bucket policy, ACL) that runs before every handler
    acl.py       ACLs: canned, x-amz-grant-* headers, AccessControlPolicy, what a grant permits
    routing.py   path- and virtual-hosted-style addressing; method + subresource -> operation
                 name (Op), and the not-implemented table (REFUSED, UNSUPPORTED_SUBRESOURCES)
    optable.py   Op -> handler, built and checked against the router's names at import
    ctx.py       the typed request context (Ctx) a handler receives
    sigv4.py     Signature V4 (Authorization header and presigned query)
    sigv2.py     Signature V2 (header and presigned query), for the clients that still use it
    chunked.py   aws-chunked decoding with chunk and trailer signature checks
    checksums.py Content-MD5 and x-amz-checksum-* (header or trailer), verified at finalize
    mpchecksums.py multipart checksums: COMPOSITE and FULL_OBJECT, made from the parts' checksums
    body.py      the request-body pipeline into the engine
    errors.py    the one table of S3 errors
    xmlio.py     XML out (string builders) and in (xml.etree, MalformedXML)
    objmeta.py   headers <-> metadata, tags, conditional requests, Range
    sse.py       server-side encryption headers <-> Protection (appliance/iam/objectkeys.py), the
                 checks AWS makes (TLS for SSE-C, conflicting headers, the customer key), and
                 the encryption headers each operation reports
    posixtrust.py whether the mount may honour the POSIX attributes a write carries
    objlock.py   object lock at the edge: x-amz-object-lock-* headers, the lock documents, their
                 condition keys, what HEAD/GET report (the rules are the engine's: docs/object-lock.md)
    ops_*.py     operation handlers by area (bucket, bucket_tagging, object, list, multipart,
                 access: policies, ACLs, ownership controls, public access block; encryption:
                 bucket default encryption; lock: object lock operations, the GOVERNANCE bypass;
                 attributes: GetObjectAttributes)
    bucketpages.py ListBuckets' paging and filters (max-buckets, continuation-token, prefix, region)
    pagetoken.py the continuation tokens of ListObjectsV2 and ListBuckets, taken only as given out
    copychecksum.py CopyObject's x-amz-checksum-algorithm: the copy's checksum, computed once
    cors.py      CORS rules: PutBucketCors's document, preflight and actual-request matching;
                 ops_cors.py its operations and the preflight (OPTIONS)
    postobject.py POST Object (HTML form uploads): postform.py streams the multipart/form-data
                 body (python-multipart), postpolicy.py the policy document and form signature
    console/     the web console under /_stowage/v1/console/ (docs/console.md)
    iamapi.py    IAM's query API on the same endpoint (requests signed for service iam);
                 iamcall.py the call, its authorization and IAM's XML; iamactions.py
                 the actions

To add an operation: name it in routing.Op and return it from routing.operation (taking it out
of the not-implemented table if it was there), then add `Op.Name: handler` to the OPS of the
ops_*.py module for its area; handlers reach the store through ctx.store (appliance.engine's
ObjectStore) and raise S3Error or the engine's errors, which app.py translates. Name the
operation's S3 action(s) in authz.py (BUCKET_ACTIONS, OBJECT_ACTIONS or `required`): the table is
checked against them at import too, so no operation ever runs without authorization.

What the gateway serves of the S3 API, operation by operation, and where it is wider than AWS:
docs/s3-compatibility.md (checked against the router by tests/s3/test_compatibility_doc.py).
Compatibility choices, where AWS leaves room: the credential scope must name the configured
region (s3.region), as AWS checks its own; requests with unsigned x-amz-* headers are refused,
presigned ones included, as AWS does (SigV4 only: SigV2 signs every x-amz-* header); SigV2 is
spoken (header and presigned query) unless s3.allow_sigv2 is off, then refused as a SigV4-only
AWS region refuses it. XML request bodies with a DOCTYPE are refused before parsing; see
docs/gateway-hardening.md for the other limits. Who may do what
(policies, ACLs, ownership, the public access block, and where it differs from AWS):
docs/access-control.md.
"""
