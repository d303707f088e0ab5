# Two commands set up a fresh machine: `make run` (the main job on the sample study) and
# `make test` (the whole suite under Xvfb). Both install what is missing: Debian packages, the venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out/demo
APT_PACKAGES := xvfb xauth libgl1 libglx-mesa0 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 \
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
  libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 fonts-dejavu-core
# Keep napari, Qt and Mesa from writing into $HOME.
RUNTIME := $(CURDIR)/.runtime
export XDG_CONFIG_HOME := $(RUNTIME)/config
export XDG_CACHE_HOME := $(RUNTIME)/cache
export XDG_DATA_HOME := $(RUNTIME)/data
export XDG_RUNTIME_DIR := $(RUNTIME)/xdg-runtime
export MPLCONFIGDIR := $(RUNTIME)/mpl
unexport QT_QPA_PLATFORM

.PHONY: run test setup apt venv bench screenshots sample-data clean

run: setup ## open napari with the sample study, or run the headless demo when there is no display
	@if [ -n "$$DISPLAY" ] && $(PY) -c "from qtpy.QtWidgets import QApplication; QApplication([])" >/dev/null 2>&1; then \
	  echo "Opening napari with a copy of the sample study ..."; $(VENV)/bin/qsm-ms view --sample; \
	else \
	  echo "No display available: running the headless end-to-end demo on sample_data/study instead."; \
	  $(PY) -m napari_qsm_ms.demo sample_data/study --out $(OUT); \
	fi

test: setup ## the whole test suite under a virtual X server
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest $(PYTEST_ARGS)

bench: setup ## speed/accuracy/memory benchmarks (prints figures)
	$(PY) benchmarks/run_all.py

setup: apt venv
	@mkdir -p $(XDG_CONFIG_HOME) $(XDG_CACHE_HOME) $(XDG_DATA_HOME) $(MPLCONFIGDIR) $(XDG_RUNTIME_DIR)
	@chmod 700 $(XDG_RUNTIME_DIR)

apt: ## Debian packages napari and Xvfb need (idempotent; only when something is missing)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends --no-upgrade $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[pyqt5,test]"
	$(PY) -m napari_qsm_ms.qsm.warmup
	@touch $(STAMP)

screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) docs/make_screenshots.py

sample-data: setup ## regenerate sample_data/study with the simulator
	$(PY) -m napari_qsm_ms.simulate.sample_study sample_data/study

clean:
	rm -rf $(RUNTIME) out
