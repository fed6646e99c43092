# Stowage: the two entry points a person needs are `make run` and `make test`.
# Both install what they need first (apt packages and a virtualenv), idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./stowage-data
# Test files run on parallel workers: most of the suite's time is waiting on daemons, disks and
# clients, so more workers than cores pays; a file's tests stay on one worker (module fixtures).
# --no-loadscope-reorder: files go out in collection order (tests/conftest.py puts the slow ones
# first); xdist's default hands out files with the most tests first, which left the one-test
# power-cut file, the longest, for the end of the run.
TEST_WORKERS ?= 2

# What running the appliance needs; `make run` installs only these. libisal2: ISA-L's SIMD
# parity (appliance/engine/isal.py; zfec computes the same bytes without it).
RUN_APT := fuse3 libfuse3-dev pkg-config python3-venv python3-dev gcc \
	xfsprogs e2fsprogs smartmontools util-linux attr libisal2
# What the test suite drives besides: S3 clients, a FUSE S3 client, fio, the image tests' tools, and
# pebble (an ACME test CA for [tls] mode = "acme").
TEST_APT := sqlite3 rsync git tar s3cmd rclone restic s3fs fio debootstrap systemd-container \
	chromium chromium-driver duplicity python3-boto3 dpkg-dev debhelper fakeroot pebble
# What the benchmarks add: wrk, the low-overhead load generator (bench/wrkload.py).
BENCH_APT := wrk
# Where `stowage` is linked so that it is on PATH after set-up.
BINDIR ?= $(if $(filter 0,$(shell id -u)),/usr/local/bin,$(HOME)/.local/bin)

.PHONY: setup setup-test run test lint bench install clean-venv deb

setup: .stamp-apt-run $(VENV)/.stamp-pip $(BINDIR)/stowage
setup-test: setup .stamp-apt-test $(VENV)/.stamp-pip-dev

# apt-get only runs when a package is missing, so re-running is cheap; it waits for another
# apt/dpkg run holding the lock (up to 10 minutes) instead of failing.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages: $$missing"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; \
	fi
	@touch $@
endef

.stamp-apt-run: Makefile
	$(call apt_install,$(RUN_APT))

.stamp-apt-test: Makefile
	$(call apt_install,$(TEST_APT))

.stamp-apt-bench: Makefile
	$(call apt_install,$(BENCH_APT))

$(VENV)/.stamp-pip: pyproject.toml .stamp-apt-run
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.stamp-pip-dev: pyproject.toml $(VENV)/.stamp-pip .stamp-apt-test
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# `stowage` on PATH: a link to the virtualenv's entry point (it finds ./stowage-data by itself)
$(BINDIR)/stowage: $(VENV)/.stamp-pip
	@mkdir -p $(BINDIR)
	@ln -sfn $(CURDIR)/$(BIN)/stowage $@
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: add $(BINDIR) to PATH to run stowage";; esac

run: setup
	$(BIN)/stowage serve --data $(DATA) --banner

test: setup-test
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 $(PYTEST_ARGS)

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup-test .stamp-apt-bench
	$(BIN)/python -m bench.engine

# Install or upgrade Stowage on this (Debian 12) box as a systemd service; see images/install.sh.
install:
	bash images/install.sh

# The Debian package (packaging/deb/build.sh): dist/stowage_VERSION_ARCH.deb, installing under
# /opt/stowage with its own venv, the units, the default config and /usr/bin/stowage.
deb: .stamp-apt-test
	bash packaging/deb/build.sh --output dist
