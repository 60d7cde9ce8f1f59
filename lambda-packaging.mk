# What sam build does to every artifact that ships libraries: the shared layer
# (layers/common/Makefile) and the functions with libraries of their own
# (functions/*/Makefile, which are one include of this file). sam build runs them with
# BuildMethod makefile; `make build` at the top level puts the runtime's python3.13 on
# PATH.
#
# Precompiled: Lambda's file system is read-only, so without .pyc files every cold
# start compiles the libraries from source (about 3x slower imports, see
# docs/performance.md). Third-party packages ship as bytecode only (smaller, and
# without docstrings: -OO); unchecked-hash pycs stay valid whatever timestamps the zip
# gives the files. Without column ranges (PYTHONNODEBUGRANGES): 6% smaller bytecode;
# tracebacks keep their line numbers and lose only the ^^^ markers.
PYTHON_RUNTIME ?= python3.13
COMPILE = PYTHONNODEBUGRANGES=1 $(PYTHON_RUNTIME) -m compileall -q -j0 --invalidation-mode unchecked-hash
COMPILE_LEAN = $(COMPILE) -o 2

# Pinned wheels for Lambda's python3.13 on x86_64, without their dependencies: each
# requirements file lists every package it installs.
PIP_INSTALL = python3 -m pip install --quiet --disable-pip-version-check --no-deps \
	--only-binary=:all: --platform manylinux2014_x86_64 --implementation cp \
	--python-version 3.13

# $(call bytecode_only,DIR): installed libraries in DIR as bytecode only, compiled
# extensions without debug symbols, and no console scripts, installers' file lists
# (RECORD, SBOMs), typing stubs or long descriptions in METADATA.
define bytecode_only
	find "$(1)" -name __pycache__ -type d -prune -exec rm -rf {} +
	find "$(1)" -name '*.pyi' -delete
	find "$(1)" -name '*.so' -exec strip --strip-unneeded {} +
	rm -rf "$(1)"/bin "$(1)"/*.dist-info/RECORD "$(1)"/*.dist-info/sboms
	for metadata in "$(1)"/*.dist-info/METADATA; do sed -i '/^$$/,$$d' "$$metadata"; done
	$(COMPILE_LEAN) -b "$(1)" > /dev/null
	find "$(1)" -name '*.py' -delete
endef

# A function with libraries of its own (its requirements.txt: what only it imports,
# kept out of the shared layer): the handler as source, the libraries as bytecode.
FUNCTION_SOURCE = $(dir $(abspath $(firstword $(MAKEFILE_LIST))))

build-%Function:
	$(PIP_INSTALL) --target "$(ARTIFACTS_DIR)" -r "$(FUNCTION_SOURCE)requirements.txt"
	$(call bytecode_only,$(ARTIFACTS_DIR))
	cp "$(FUNCTION_SOURCE)app.py" "$(ARTIFACTS_DIR)/"
