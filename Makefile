# virtnet — two commands on a fresh Debian 12 machine, as root:
#   make demo   runs the main job end to end
#   make test   installs what it needs and runs the tests
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# What libvirt, QEMU and OVS-DPDK need on Debian 12 (see ../shared/notes/host.md for why each), then
# what the viewing tests drive: a virtual X server, the real viewers, screenshots and OCR.
APT_PACKAGES := qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libvirt-dev \
	pkg-config gcc python3-dev python3-venv openvswitch-switch-dpdk librte-mempool-ring23 \
	libxml2-utils busybox-static iperf3 iputils-ping ethtool cpio mmdebstrap \
	xvfb virt-manager virt-viewer imagemagick xdotool tesseract-ocr tesseract-ocr-eng dbus-daemon
BENCH_APT_PACKAGES := virtinst

.PHONY: help deps venv test demo golden lint bench screenshot clean

help:
	@echo "make demo    - the walkthrough on a throwaway lab: OVS-DPDK, two VMs with vhost-user NICs, ping"
	@echo "make test    - install dependencies and run the test suite"
	@echo "make golden  - rewrite xml/*.xml from examples/*.toml, and virtnet/helptext.py"
	@echo "make lint    - ruff and mypy"
	@echo "make bench   - benchmarks under bench/ (installs virt-install)"
	@echo "make screenshot - docs/virt-manager.png: virt-manager showing a virtnet VM, on a lab of its own"

deps: .stamp-apt venv

# Installs only what is missing, so a machine that has everything pays nothing.
.stamp-apt: Makefile
	@missing=(); for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if ! ls /var/lib/apt/lists/ | grep -q _Packages; then apt-get update -q; fi; \
	if [ $${#missing[@]} -gt 0 ]; then \
		echo ">>> apt-get install $${missing[*]}"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$${missing[@]}"; \
	fi
	@touch $@

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml | .stamp-apt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# --durations: CI's log then says which tests its ~50 minutes go to.
test: deps
	$(PY) -m pytest --durations=30

lint: deps
	$(VENV)/bin/ruff check virtnet tests bench cli
	$(VENV)/bin/ruff format --check virtnet tests bench cli
	$(VENV)/bin/mypy

demo: deps
	VIRTNET=$(VENV)/bin/virtnet bash cli/walkthrough.sh

golden: deps
	$(PY) -m pytest tests/test_golden.py tests/test_startup.py --update-golden -q

screenshot: deps
	VIRTNET=$(VENV)/bin/virtnet PY=$(PY) bash cli/readme-screenshot.sh

bench: deps
	@dpkg -s $(BENCH_APT_PACKAGES) >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BENCH_APT_PACKAGES))
	$(PY) bench/startup.py
	$(PY) bench/xml_render.py
	$(PY) bench/ovs_ports.py
	$(PY) bench/migration.py
	$(PY) bench/debian_guest.py
	$(PY) bench/network.py

clean:
	rm -rf $(VENV) .stamp-apt .pytest_cache .mypy_cache .ruff_cache build *.egg-info
