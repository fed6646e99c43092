"""The FUSE mount (pyfuse3): every bucket a top-level directory, every key a path.

    service.py      serve_fuse(): mount, run the pyfuse3 session inside the daemon's loop, unmount
    operations.py   pyfuse3.Operations: thin translations to facade calls (files, attributes)
    nodes.py        the state and helpers every handler shares; namespace.py entries made,
                    removed and renamed (files, special files, symlinks, directories, hard links)
    tree.py         lookups and directory listings over the facade (markers, implicit dirs)
    inodes.py       the inode table (a hard-linked file is one node with several names);
                    handles.py open directory handles; dirtimes.py directory mtime/ctime
    staging.py      open-file state: writes staged in a local file (small files in memory), committed by commit_patch
    encryption.py   which keys new data is written with (the bucket default, or the file's own)
    attrs.py        POSIX attributes <-> object metadata; xattr_ops.py extended attributes
    access.py       the configured owner, group and modes per bucket, for what S3 did not set
    paths.py        name rules and key <-> path; errnos.py the one errno table
    invalidation.py kernel cache invalidation when S3 changes what the mount shows

The rules (what S3 sees of files, directories, symlinks; consistency) are in SEMANTICS.md.
May import the engine's facade (appliance.engine, appliance.engine.errors), appliance.config,
appliance.iam (the POSIX-attribute rules it shares with the gateway) and diskmgr; never s3gw or
the daemon.
"""
