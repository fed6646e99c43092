"""The disk layer: host-side knowledge of block devices and the appliance's disks.

    discovery.py  block devices (lsblk/sysfs), roles suggested for them
    smart.py      SMART through `smartctl --json`
    health.py     the pure health policy: observations + SMART -> DiskState with reasons
    state.py      DiskState and its allowed transitions; latency.py per-disk latency histogram
    label.py      the versioned identity label at a disk's root; mounting checks
    prepare.py    `disks add`: preflight, mkfs, mount by UUID, label (plain parameters)
    bootmount.py  boot-time mount units; durable.py atomic small-file writes and directory fsync
    errors.py     the root of Stowage's error model (StowageError) and the disk errors

The lowest layer: imports nothing from appliance, s3gw or fusefs (tests/test_layering.py).
To add a health rule: a field on health.DiskObservation filled by the disk monitor
(appliance/services/diskmon.py) and a branch in health.assess, with a table test.
"""
