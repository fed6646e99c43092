"""Action names a bucket policy may name.

S3 refuses a bucket policy whose Action names no S3 action ("Policy has invalid action"), so a
typo such as `s3:GetObjekt` is caught when the policy is put rather than silently granting
nothing. These are the names of AWS's service authorization reference for S3 (the bucket- and
object-level ones; access points, S3 on Outposts, Storage Lens and batch jobs are left out, since
no bucket policy here can use them). A pattern with wildcards is valid when it matches at least
one of them.
"""

from __future__ import annotations

S3_ACTIONS: frozenset[str] = frozenset("s3:" + name for name in (
    "AbortMultipartUpload", "BypassGovernanceRetention", "CreateBucket", "DeleteBucket",
    "DeleteBucketOwnershipControls", "DeleteBucketPolicy", "DeleteBucketWebsite", "DeleteObject",
    "DeleteObjectTagging", "DeleteObjectVersion", "DeleteObjectVersionTagging", "GetAccelerateConfiguration",
    "GetAnalyticsConfiguration", "GetBucketAcl", "GetBucketCORS", "GetBucketLocation", "GetBucketLogging",
    "GetBucketNotification", "GetBucketObjectLockConfiguration", "GetBucketOwnershipControls", "GetBucketPolicy",
    "GetBucketPolicyStatus", "GetBucketPublicAccessBlock", "GetBucketRequestPayment", "GetBucketTagging",
    "GetBucketVersioning", "GetBucketWebsite", "GetEncryptionConfiguration", "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration", "GetLifecycleConfiguration", "GetMetricsConfiguration", "GetObject", "GetObjectAcl",
    "GetObjectAttributes", "GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging", "GetObjectTorrent",
    "GetObjectVersion", "GetObjectVersionAcl", "GetObjectVersionAttributes", "GetObjectVersionForReplication",
    "GetObjectVersionTagging", "GetObjectVersionTorrent", "GetReplicationConfiguration", "ListAllMyBuckets",
    "ListBucket", "ListBucketMultipartUploads", "ListBucketVersions", "ListMultipartUploadParts",
    "ObjectOwnerOverrideToBucketOwner", "PutAccelerateConfiguration", "PutAnalyticsConfiguration", "PutBucketAcl",
    "PutBucketCORS", "PutBucketLogging", "PutBucketNotification", "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls", "PutBucketPolicy", "PutBucketPublicAccessBlock", "PutBucketRequestPayment",
    "PutBucketTagging", "PutBucketVersioning", "PutBucketWebsite", "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration", "PutInventoryConfiguration", "PutLifecycleConfiguration",
    "PutMetricsConfiguration", "PutObject", "PutObjectAcl", "PutObjectLegalHold", "PutObjectRetention",
    "PutObjectTagging", "PutObjectVersionAcl", "PutObjectVersionTagging", "PutReplicationConfiguration",
    "ReplicateDelete", "ReplicateObject", "ReplicateTags", "RestoreObject",
))

# The account root may always read, replace and delete a bucket policy, even one that denies it
# (AWS's safeguard against locking the owner out of its own bucket).
ROOT_POLICY_ACTIONS: frozenset[str] = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})

# Vendors a bucket policy may name: S3's own, and this appliance's extensions (such as
# stowage:PutPosixAttributes) so that a bucket owner can grant them per bucket.
RESOURCE_POLICY_VENDORS: frozenset[str] = frozenset({"s3", "stowage"})
