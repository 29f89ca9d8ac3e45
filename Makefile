# The two commands (README.md): `make demo` and `make test`. Both install the
# Debian packages they need, build, and run.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build test demo bench format format-check clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

test: build
	./scripts/test.sh $(BUILD)

demo: build
	./scripts/demo.sh $(BUILD)

bench: build
	./bench/run.sh $(BUILD)

# clang-format on every C++ source; format-check only checks (a stage of
# `make test`).
format:
	./scripts/format.sh

format-check:
	./scripts/format.sh --check

clean:
	rm -rf $(BUILD) build-*
