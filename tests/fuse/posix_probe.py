"""System calls on request, for tests/fuse/posix_oracle.py: run (as any uid, via setpriv) by the
system's python3, in a directory given as argv[1]; reads one JSON list [op, args...] per line
and answers one JSON object per line: {"ok": value} or {"err": "ENAME"}. Descriptors stay open
between requests. Standalone on purpose: it imports nothing from the repository.
"""

import errno
import json
import os
import socket
import stat
import sys

FLAGS = {name: getattr(os, name) for name in ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC",
                                               "O_APPEND", "O_NONBLOCK")}
TYPES = {"fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "sock": stat.S_IFSOCK, "reg": stat.S_IFREG}


def stat_of(st):
    return {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            "nlink": st.st_nlink, "size": st.st_size, "rdev": st.st_rdev, "ino": st.st_ino,
            "atime_ns": st.st_atime_ns, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def when(spec):
    if spec == "now":
        return (0, (1 << 30) - 1)  # UTIME_NOW
    if spec == "omit":
        return (0, (1 << 30) - 2)  # UTIME_OMIT
    return tuple(spec)


def utimens(path, atime, mtime, follow=True):
    """utimensat(2) with UTIME_NOW / UTIME_OMIT, which os.utime cannot express."""
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    libc = ctypes.CDLL(None, use_errno=True)
    times = (Timespec * 2)(Timespec(*when(atime)), Timespec(*when(mtime)))
    at_fdcwd, at_symlink_nofollow = -100, 0x100
    if libc.utimensat(at_fdcwd, path.encode(), times, 0 if follow else at_symlink_nofollow) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def run(op, args):
    if op == "creat":
        os.close(os.open(args[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, args[1]))
    elif op == "open":
        flags = 0
        for name in args[1]:
            flags |= FLAGS[name]
        return os.open(args[0], flags, args[2] if len(args) > 2 else 0o644)
    elif op == "close":
        os.close(args[0])
    elif op == "write":
        return os.write(args[0], args[1].encode("latin-1"))
    elif op == "pread":
        return os.pread(args[0], args[1], args[2]).decode("latin-1")
    elif op == "readfile":
        with open(args[0], "rb") as f:
            return f.read().decode("latin-1")
    elif op == "ftruncate":
        os.ftruncate(args[0], args[1])
    elif op == "truncate":
        os.truncate(args[0], args[1])
    elif op == "fstat":
        return stat_of(os.fstat(args[0]))
    elif op == "stat":
        return stat_of(os.stat(args[0]))
    elif op == "lstat":
        return stat_of(os.lstat(args[0]))
    elif op == "mkdir":
        os.mkdir(args[0], args[1])
    elif op == "rmdir":
        os.rmdir(args[0])
    elif op == "unlink":
        os.unlink(args[0])
    elif op == "rename":
        os.rename(args[0], args[1])
    elif op == "link":
        os.link(args[0], args[1], follow_symlinks=False)
    elif op == "symlink":
        os.symlink(args[0], args[1])
    elif op == "readlink":
        return os.readlink(args[0])
    elif op == "mkfifo":
        os.mkfifo(args[0], args[1])
    elif op == "mknod":
        os.mknod(args[0], TYPES[args[1]] | args[2], os.makedev(args[3], args[4]))
    elif op == "bind":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(args[0])
        finally:
            s.close()
    elif op == "chmod":
        os.chmod(args[0], args[1])
    elif op == "fchmod":
        os.fchmod(args[0], args[1])
    elif op == "chown":
        os.chown(args[0], args[1], args[2])
    elif op == "lchown":
        os.lchown(args[0], args[1], args[2])
    elif op == "fchown":
        os.fchown(args[0], args[1], args[2])
    elif op == "utimens":
        utimens(args[0], args[1], args[2])
    elif op == "utimes_null":
        os.utime(args[0], None)
    elif op == "setxattr":
        os.setxattr(args[0], args[1], args[2].encode())
    elif op == "getxattr":
        return os.getxattr(args[0], args[1]).decode()
    elif op == "removexattr":
        os.removexattr(args[0], args[1])
    elif op == "listdir":
        return sorted(os.listdir(args[0]))
    elif op == "access":
        return os.access(args[0], args[1])
    else:
        raise ValueError(f"unknown op {op}")
    return None


def main():
    os.chdir(sys.argv[1])
    os.umask(0)
    for line in sys.stdin:
        op, *args = json.loads(line)
        try:
            out = {"ok": run(op, args)}
        except OSError as e:
            out = {"err": errno.errorcode.get(e.errno, str(e.errno))}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
