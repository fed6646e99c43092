"""Loop-device fixtures are shared with the disk-management tests (torn down even on failure)."""

from tests.diskmgr.conftest import make_loop  # noqa: F401 - re-exported fixture
