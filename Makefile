# Pocket Terminal. On a fresh Debian machine with Python 3.11 these do all the set-up:
#   make run    the reference bank host, the virtual handheld with its rig, and the web simulator
#               (prints "REPL on <pty>" and the page's address)
#   make test   every test: gates, on-device tests in the virtual handheld, host tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FIRMWARE := boot.py main.py $(shell find board drivers lib -name '*.py' 2>/dev/null)
# The board-faithful interpreter (tools/vdevice/build.py): MicroPython v1.28.0's unix port, 32-bit,
# the firmware frozen into it. Its source: the tarball named by $(MICROPYTHON_TARBALL) if set (CI
# sets it), else the tag fetched from GitHub; firmware/patches applied to it, as to the board's.
MICROPYTHON := build/micropython-1.28.0/ports/unix/build-pocket/micropython
FROZEN := $(FIRMWARE) firmware/manifest.py firmware/manifest_terminal.py tools/vdevice/launcher.py \
	$(wildcard tools/vdevice/port/*) $(wildcard firmware/patches/*.patch)

# A real board's serial port (make deploy PORT=...), and the web simulator's page (make run
# WEB_PORT=8081 when 8080 is taken).
PORT ?= /dev/ttyUSB0
WEB_PORT ?= 8080

.PHONY: setup image micropython run test deploy screens clean host-tools

setup: $(STAMP) host-tools $(MICROPYTHON)

# Debian packages the tests need, installed when missing (as root, as CI runs; lists updated if
# needed): libnfc's nfc-list, the independent check of the PN532 model; what pip needs to build
# pyscard (no manylinux wheel on PyPI) for the ATR check: swig, libpcsclite-dev, a C compiler and
# the Python headers; PostgreSQL, whose throwaway server the bank host's tests start; Chromium,
# the browser Playwright drives in the web simulator's test; gcc-multilib, which builds the
# board-faithful MicroPython 32-bit; git, which fetches its source where no tarball is given;
# pcsc-tools for its public list of ATRs (/usr/share/pcsc/smartcard_list.txt, GPL: read where
# Debian installs it, not copied), which tests/host/test_atr.py compares with pyscard.
HOST_DEBS = libnfc-bin swig libpcsclite-dev gcc gcc-multilib git python3-dev postgresql chromium pcsc-tools
GCC_M32 = printf 'int main(void){return 0;}' | gcc -m32 -x c -o /dev/null -
PY_HEADERS = import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
host-tools:
	@{ command -v nfc-list && command -v swig && $(GCC_M32) && command -v git && test -f /usr/include/PCSC/winscard.h \
		&& ls /usr/lib/postgresql/*/bin/initdb && command -v chromium && test -f /usr/share/pcsc/smartcard_list.txt \
		&& $(PYTHON) -c '$(PY_HEADERS)'; } >/dev/null 2>&1 \
		|| DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(HOST_DEBS) \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(HOST_DEBS)) \
		|| { echo "setup: $(HOST_DEBS) (Debian packages) are missing and could not be installed;" \
			"install them as root: apt-get install $(HOST_DEBS)" >&2; exit 1; }

# pyscard builds against swig and libpcsclite-dev: the Debian packages come first.
$(STAMP): requirements.txt | host-tools
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

micropython: $(MICROPYTHON)

$(MICROPYTHON): $(FROZEN) | $(STAMP) host-tools
	$(PY) -m tools.vdevice.build

image: build/flash.img

build/flash.img: $(STAMP) $(FIRMWARE) tools/image.py
	$(PY) -m tools.image -o $@

run: build/flash.img $(MICROPYTHON)
	$(PY) -m tools.websim --image build/flash.img --port $(WEB_PORT)

# In two parts (tests/conftest.py): the tests that time nothing on two workers (pytest-xdist, a
# module to a worker), then those that do (marked serial) alone. Both parts run; the target
# fails if either does, or finds no tests at all (pytest's exit code 5).
test: $(STAMP) host-tools $(MICROPYTHON)
	$(PY) -m pytest -n 2 --dist loadfile -m "not serial"; parallel=$$?; \
	$(PY) -m pytest -m serial; serial=$$?; \
	test $$parallel -eq 0 && test $$serial -eq 0

# A real board (README): the firmware files onto its file system, over mpremote.
deploy: $(STAMP)
	$(PY) -m tools.device --port $(PORT) deploy

# Re-record the golden screenshots in tests/screens (look at them before committing).
screens: $(STAMP)
	$(PY) -m tools.screenshots record

clean:
	rm -rf build
