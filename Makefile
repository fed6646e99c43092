# Stowage: the two entry points a person needs are `make run` and `make test`.
# Both install what they need first (apt packages and a virtualenv), idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./stowage-data

APT_PACKAGES := fuse3 libfuse3-dev pkg-config python3-venv python3-dev gcc \
	xfsprogs e2fsprogs smartmontools util-linux sqlite3 rsync git tar attr \
	s3cmd rclone restic s3fs fio debootstrap systemd-container \
	chromium chromium-driver duplicity python3-boto3 dpkg-dev debhelper fakeroot

.PHONY: setup run test lint bench install clean-venv deb

setup: .stamp-apt $(VENV)/.stamp-pip

# apt-get only runs when a package is missing, so re-running is cheap; it waits for another
# apt/dpkg run holding the lock (up to 10 minutes) instead of failing.
.stamp-apt: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages: $$missing"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; \
	fi
	@touch $@

$(VENV)/.stamp-pip: pyproject.toml .stamp-apt
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: setup
	$(BIN)/stowage serve --data $(DATA)

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench.engine

# Install or upgrade Stowage on this (Debian 12) box as a systemd service; see images/install.sh.
install:
	bash images/install.sh

# The Debian package (packaging/deb/build.sh): dist/stowage_VERSION_ARCH.deb, installing under
# /opt/stowage with its own venv, the units, the default config and /usr/bin/stowage.
deb: .stamp-apt
	bash packaging/deb/build.sh --output dist
