# quench: one binary, one library of everything but main, one Criterion test binary.
#   make          builds ./quench
#   make test     builds and runs the test suite
#   make asan     the same tests under -fsanitize=address,undefined (build-asan/)
#   make bench    performance measurements, printed as ratios
# BUILD selects the object folder so several builds can coexist.

CC      ?= cc
# OpenBLAS built on OpenMP, so BLAS and our OpenMP loops share one thread pool
# (the pthreads build and libgomp's spinning workers starve each other).
OPENBLAS_INC ?= /usr/include/x86_64-linux-gnu/openblas-openmp
OPENBLAS_LIB ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
BUILD   ?= build
OPT     ?= -O2
SANITIZE ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(OPT) -g -fopenmp -pthread \
           -I src -I $(OPENBLAS_INC) $(SANITIZE) -MMD -MP $(shell pkg-config --cflags freetype2)
LDLIBS  += -L$(OPENBLAS_LIB) -Wl,--disable-new-dtags,-rpath,$(OPENBLAS_LIB) -lopenblas -llapacke -ljansson -lpcre2-8 -lpng -lfreetype -lncursesw -lm -lpthread
LDFLAGS += -fopenmp $(SANITIZE)

SRCS      := $(shell find src -name '*.c' ! -name main.c | sort)
LIB_OBJS  := $(SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ  := $(BUILD)/src/main.o
TEST_SRCS := $(shell find tests -name '*.c' ! -path 'tests/fuzz/*' ! -path 'tests/cuda/*' | sort)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN  := $(BUILD)/test_quench
BENCH_SRCS := $(shell find bench -name '*.c' | sort)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
BIN       := quench

# ---- CUDA (issue 17) -------------------------------------------------------
# With nvcc (on PATH or in /usr/local/cuda) the library gains the .cu files
# of src/kernels/cuda and the CUDA backend, linked with cudart and cuBLAS;
# without it, or with CUDA=0, src/kernels/cuda/absent.c answers `--device
# cuda` with a clear error and nothing needs the toolkit. The code is sm_90
# (H100/H200) plus compute_90 PTX for later GPUs (CUDA_ARCH=NN changes it).
# `make cuda-test` / `make cuda-bench` need a GPU and say so when none answers.
.DEFAULT_GOAL := all
NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA      ?= $(if $(NVCC),1,0)
CUDA_ARCH ?= 90
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
CU_SRCS   := $(shell find src -name '*.cu' | sort)
CU_OBJS   := $(CU_SRCS:%.cu=$(BUILD)/%.cu.o)
NVCCFLAGS ?= -O2 -g -std=c++17 -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
             -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) -Xcompiler -Wall,-Wextra
CFLAGS    += -DQN_HAVE_CUDA
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
SRCS      := $(filter-out src/kernels/cuda/absent.c,$(SRCS))
else
SRCS      := $(filter-out src/kernels/backend_cuda.c,$(SRCS))
endif
LIB_OBJS  := $(SRCS:%.c=$(BUILD)/%.o) $(CU_OBJS)

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I src -MMD -MP -c $< -o $@

CUDA_TEST_SRCS := $(shell find tests/cuda -name '*.c' 2>/dev/null | sort)
CUDA_TEST_BIN  := $(BUILD)/test_cuda
$(CUDA_TEST_BIN): $(CUDA_TEST_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/tests/support.o $(BUILD)/tests/kernels/kernel_cases.o \
                  $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

# Every CUDA kernel against the CPU on the same packed matrices, and SmolLM2
# perplexity on both devices. tests/cuda/main.c exits 1, saying why, when no
# GPU answers (or the build has no CUDA), before any test runs.
.PHONY: cuda-test cuda-bench
cuda-test: $(CUDA_TEST_BIN) $(BUILD)/quench
	QN_SHARED=$(QN_SHARED) QN_BIN=$(abspath $(BUILD)/quench) $(CUDA_TEST_BIN) --jobs 1 $(TEST_ARGS)

# Kernels against cuBLAS fp16 at the issue's shapes (targets: aqlm-2x8 and
# int4 >= 3x, aqlm-1x16 >= 1.5x at one token), then decode speed of SmolLM2
# on the GPU: f16 (its weights as loaded) and RTN int4 (quantized here once;
# AQLM and SpQR of a 135M model take too long on a CPU to do in a bench run).
CUDA_BENCH_SHAPES  ?= 4096x4096 11008x4096 8192x28672
CUDA_BENCH_FORMATS ?= aqlm-2x8 aqlm-1x16 aqlm-1x8 int4 int3 int2 spqr-w3
CUDA_BENCH_MODEL   ?= $(QN_SHARED)/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf
CUDA_BENCH_INT4    := $(BUILD)/cuda-bench-smollm2-rtn4
cuda-bench: $(BUILD)/quench
	@for shape in $(CUDA_BENCH_SHAPES); do for f in $(CUDA_BENCH_FORMATS); do \
	  $(BUILD)/quench bench-kernel --device cuda --format $$f --rows $${shape%x*} --cols $${shape#*x} --reps 50 || exit 1; \
	  echo; done; done
	$(BUILD)/quench bench $(CUDA_BENCH_MODEL) --device cuda
	test -f $(CUDA_BENCH_INT4)/config.json || $(BUILD)/quench quantize $(CUDA_BENCH_MODEL) --preset rtn-4 \
	  --calib $(QN_SHARED)/text/tinystories-valid-head.txt --nsamples 4 --seqlen 64 --out $(CUDA_BENCH_INT4) --force
	$(BUILD)/quench bench $(CUDA_BENCH_INT4) --device cuda
# ---- end CUDA --------------------------------------------------------------

SHELL := /bin/bash
.PHONY: all test asan bench clean test-interop
all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libquench.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

ifeq ($(BUILD),build)
$(BIN): $(MAIN_OBJ) $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
else
$(BIN): $(BUILD)/quench
endif

$(BUILD)/quench: $(MAIN_OBJ) $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%.o: CFLAGS += -I tests

$(TEST_BIN): $(TEST_OBJS) $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcriterion -o $@

# Tests run from the repository root; QN_SHARED points at the shared data and
# QN_BIN at the binary the CLI tests drive. --verbose: a line as each test
# starts and ends, so a long run shows its progress.
QN_SHARED ?= $(abspath ../shared)
# Idle OpenMP workers sleep (as quench sets for itself, engine/threads.h):
# spinning ones make a busy machine's tests several times slower.
test: $(TEST_BIN) $(BUILD)/quench
	OMP_WAIT_POLICY=passive QN_SHARED=$(QN_SHARED) QN_BIN=$(abspath $(BUILD)/quench) $(TEST_BIN) --jobs 2 --verbose $(TEST_ARGS)
	$(TEST_EXTRA)

# Criterion counts a test as passed even when a sanitizer reported in it, so
# the log is searched too.
asan:
	@mkdir -p build-asan
	set -o pipefail; LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) $(MAKE) BUILD=build-asan OPT=-O1 CUDA=0 \
	  SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" test 2>&1 | tee build-asan/test.log
	@! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" build-asan/test.log || \
	  (echo "make asan: sanitizer reports above"; exit 1)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Each bench/*.c is one program; they run one after another (the machine is
# noisy: each takes medians of repetitions and prints ratios to a baseline).
bench: $(BIN) $(BENCH_BINS)
	@for b in $(BENCH_BINS); do OMP_WAIT_POLICY=passive QN_SHARED=$(QN_SHARED) $$b || exit 1; echo; done

clean:
	rm -rf build build-asan build-fuzz $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Interop with the Python ecosystem (transformers, torch; aqlm later), installed
# from the package index into a private virtual environment. Not part of `make test`.
INTEROP_VENV ?= build/interop-venv
$(INTEROP_VENV)/.ready:
	python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install -q numpy safetensors transformers torch sentencepiece accelerate "aqlm[cpu]"
	touch $@

# The imported default model, then the AQLM and Hugging Face SpQR folders quench writes, then SmolLM2
# exported by export-hf (f32, f16, bf16), through transformers.
test-interop: $(BIN) $(INTEROP_VENV)/.ready
	$(INTEROP_VENV)/bin/python tests/interop/check_hf_import.py assets/stories260K ./$(BIN)
	./$(BIN) quantize assets/stories260K --preset aqlm-small-2x8 --nsamples 16 --seqlen 64 \
	  --calib $(QN_SHARED)/text/tinystories-valid-head.txt --out $(BUILD)/interop-aqlm --force
	$(INTEROP_VENV)/bin/python tests/interop/check_aqlm.py $(BUILD)/interop-aqlm ./$(BIN)
	./$(BIN) quantize assets/stories260K --preset spqr-3.6 --nsamples 16 --seqlen 64 \
	  --calib $(QN_SHARED)/text/tinystories-valid-head.txt --out $(BUILD)/interop-spqr --force
	$(INTEROP_VENV)/bin/python tests/interop/check_spqr_hf.py $(BUILD)/interop-spqr/hf-spqr ./$(BIN)
	$(INTEROP_VENV)/bin/python tests/interop/check_smollm2_hf.py \
	  $(QN_SHARED)/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf ./$(BIN) $(BUILD)/interop-smollm2

# ---- hardening (issue 14): fuzzing and fault tests --------------------------
# libFuzzer harnesses over every reader (tests/fuzz/fuzz_*.c), built with clang
# into build-fuzz/ with ASan and UBSan. Seeds are made at build time from the
# shipped model and $(QN_SHARED) (tests/fuzz/make_seeds.c); the corpus grows in
# build-fuzz/corpus/TARGET. `make fuzz` runs each target FUZZ_SECONDS, one after
# another; `make fuzz-smoke` a few seconds each. `make fault` kills quantize at
# random points and resumes, fills a small tmpfs, runs two writers at once
# (tests/fault/fault.sh; FAULT_ROUNDS kills). `make test` (in build/) runs a
# short fault test and, when clang is there, the fuzz smoke test.
FUZZ_CC       ?= clang
FUZZ_BUILD    := build-fuzz
FUZZ_SECONDS  ?= 120
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_NICE     ?= nice -n 10
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_common.c,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SANITIZE := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HAVE_FUZZ_CC  := $(shell command -v $(FUZZ_CC) >/dev/null 2>&1 && echo yes)
FAULT_ROUNDS  ?= 6
.PHONY: fuzz fuzz-smoke fuzz-build fuzz-bins fault fault-short

ifeq ($(BUILD),build)
TEST_EXTRA = $(MAKE) --no-print-directory fault-short$(if $(HAVE_FUZZ_CC), fuzz-smoke)
endif

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/fuzz_common.o $(BUILD)/libquench.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

$(BUILD)/fuzz-tools/make_seeds: $(BUILD)/tests/fuzz/make_seeds.o $(BUILD)/tests/fuzz/fuzz_common.o $(BUILD)/libquench.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%) $(BUILD)/fuzz-tools/make_seeds

fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) not found (libFuzzer needs clang)"; exit 1; }
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="-O1 -g" SANITIZE="$(FUZZ_SANITIZE)" fuzz-bins
	@test -f $(FUZZ_BUILD)/seeds/.ready || { rm -rf $(FUZZ_BUILD)/seeds && \
	  ASAN_OPTIONS=detect_leaks=0 $(FUZZ_BUILD)/fuzz-tools/make_seeds $(FUZZ_BUILD)/seeds $(QN_SHARED) && \
	  touch $(FUZZ_BUILD)/seeds/.ready; }

# One target at a time, each for FUZZ_SECONDS; a crash stops with its reproducer in build-fuzz/crashes/.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crashes
	@for t in $(FUZZ_TARGETS); do mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_NICE) $(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=30 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- \
	    $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/seeds/$$t 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY|.*runtime error)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; done

fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SMOKE_SECONDS) -rss_limit_mb=4096 -timeout=30 \
	    $(FUZZ_BUILD)/seeds/$$t >$(FUZZ_BUILD)/smoke-$$t.log 2>&1 || { tail -40 $(FUZZ_BUILD)/smoke-$$t.log; \
	    echo "fuzz-smoke: $$t failed (log: $(FUZZ_BUILD)/smoke-$$t.log)"; exit 1; }; \
	  echo "fuzz-smoke $$t: $$(grep -Eo '#[0-9]+' $(FUZZ_BUILD)/smoke-$$t.log | tail -1 | tr -d '#') runs, no crash"; done

fault: $(BIN)
	QN_SHARED=$(QN_SHARED) tests/fault/fault.sh ./$(BIN) $(FAULT_ROUNDS)

fault-short: $(BIN)
	QN_SHARED=$(QN_SHARED) FAULT_NSAMPLES=4 FAULT_SEQLEN=32 tests/fault/fault.sh ./$(BIN) 2
