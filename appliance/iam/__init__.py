"""Identity and access: who a request comes from and what it may do.

    credentials.py  the root key (environment, config, or generated in the embedded mode) and the
                    access-key lookup the gateway authenticates with
    users.py        users and access keys (`stowage user`/`key`)
    masterkey.py    the appliance master key that wraps every stored secret
    kms.py          the built-in KMS (named keys) and the data keys of SSE-S3, SSE-KMS, SSE-C
    rotation.py     `stowage kms rotate-master`: every wrapped key re-wrapped with a new master key

May import: appliance.engine (its facade and records, for the identity records it stores),
appliance.config and diskmgr. Imported by the frontends (authentication, authorization), the
control ops and the CLI. Never imports the services, the frontends or the daemon; policy
evaluation stays pure (no I/O), so the gateway can call it on every request.
"""
