"""Identity and access: who a request comes from and what it may do (docs/identities.md).

    credentials.py  the root key (environment, config, or generated in the embedded mode)
    naming.py       IAM's names, paths, ids and ARNs, with IAM's constraints
    errors.py       IAM's error codes (NoSuchEntity, EntityAlreadyExists, DeleteConflict, ...)
    users.py        users, access keys and groups: the rules, over an IdentityView
    managed.py      managed (canned and own) and inline policies, attaching them
    sealing.py      secrets wrapped by the master key; the account; re-wrapping round 1's
    identities.py   Identities: the gateway's in-memory index (authenticate, identity_policies)
    admin.py        IdentityAdmin: the daemon's writer, which rebuilds the index after a change
    commands.py     the `stowage user|key|group|policy` commands (control socket and offline)
    masterkey.py    the appliance master key that wraps every stored secret
    policy.py       the policy language and AWS's evaluation (with document, patterns,
                    conditions, actions, public, canned)
    posixattrs.py   POSIX attributes in S3 user metadata and who may set them (the mount's trust)
    kms.py          the built-in KMS (named keys) and the data keys of SSE-S3, SSE-KMS, SSE-C
    objectkeys.py   which keys an object is encrypted with (request or bucket default) and what
                    S3 reports of it: the rules the gateway and the mount share
    rotation.py     `stowage kms rotate-master`: every wrapped key re-wrapped with a new master key

May import: appliance.engine (its facade, records and the identity store), appliance.config and
diskmgr. Imported by the frontends (authentication, authorization), the control ops and the
CLI. Never imports the services, the frontends or the daemon; policy evaluation stays pure (no
I/O), so the gateway can call it on every request.
"""
