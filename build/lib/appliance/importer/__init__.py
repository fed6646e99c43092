"""`stowage import s3`: copy buckets from any S3 service into Stowage, through Stowage's own S3
gateway (so every write takes the gateway's checks, object lock and encryption paths).

    cursor.py    the persisted cursor: which source versions were copied (a re-run copies the rest)
    ratelimit.py a byte-rate limit shared by the copy workers
    source.py    what a source bucket holds: its versions in order, its configuration
    copier.py    copying one bucket: configuration, then every version of every key, verified
    minio_iam.py users, groups, policies and service accounts of a MinIO `mc admin cluster iam export`
    report.py    the final report (objects, bytes, versions, skipped items with reasons)
"""
