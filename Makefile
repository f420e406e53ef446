# Pocket Terminal. On a fresh Debian machine with Python 3.11 these do all the set-up:
#   make run    the virtual handheld with its rig (prints "REPL on <pty>")
#   make test   every test: gates, on-device tests in the virtual handheld, host tests
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FIRMWARE := boot.py main.py $(shell find board drivers lib -name '*.py' 2>/dev/null)

PORT ?= /dev/ttyUSB0

.PHONY: setup image run test deploy screens clean host-tools

setup: $(STAMP) host-tools

# Host software the independent checks run (tests/host/test_pn532_model.py): libnfc's nfc-list,
# from Debian's libnfc-bin, installed when missing (as root, as CI runs; lists updated if needed).
host-tools:
	@command -v nfc-list >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnfc-bin \
		|| (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnfc-bin) \
		|| { echo "setup: nfc-list (Debian package libnfc-bin) is missing and could not be installed;" \
			"install it as root: apt-get install libnfc-bin" >&2; exit 1; }

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

image: build/flash.img

build/flash.img: $(STAMP) $(FIRMWARE) tools/image.py
	$(PY) -m tools.image -o $@

run: build/flash.img
	$(PY) -m tools.vdevice --image build/flash.img

test: $(STAMP) host-tools
	$(PY) -m pytest

# A real board (README): the firmware files onto its file system, over mpremote.
deploy: $(STAMP)
	$(PY) -m tools.device --port $(PORT) deploy

# Re-record the golden screenshots in tests/screens (look at them before committing).
screens: $(STAMP)
	$(PY) -m tools.screenshots record

clean:
	rm -rf build
