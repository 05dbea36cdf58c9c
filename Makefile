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
TEST_SRCS := $(shell find tests -name '*.c' | sort)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
TEST_BIN  := $(BUILD)/test_quench
BENCH_SRCS := $(shell find bench -name '*.c' | sort)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
BIN       := quench

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
test: $(TEST_BIN) $(BUILD)/quench
	QN_SHARED=$(QN_SHARED) QN_BIN=$(abspath $(BUILD)/quench) $(TEST_BIN) --jobs 2 --verbose $(TEST_ARGS)

# Criterion counts a test as passed even when a sanitizer reported in it, so
# the log is searched too.
asan:
	@mkdir -p build-asan
	set -o pipefail; LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) $(MAKE) BUILD=build-asan OPT=-O1 \
	  SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" test 2>&1 | tee build-asan/test.log
	@! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" build-asan/test.log || \
	  (echo "make asan: sanitizer reports above"; exit 1)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libquench.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Each bench/*.c is one program; they run one after another (the machine is
# noisy: each takes medians of repetitions and prints ratios to a baseline).
bench: $(BIN) $(BENCH_BINS)
	@for b in $(BENCH_BINS); do QN_SHARED=$(QN_SHARED) $$b || exit 1; echo; done

clean:
	rm -rf build build-asan $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Interop with the Python ecosystem (transformers, torch; aqlm later), installed
# from the package index into a private virtual environment. Not part of `make test`.
INTEROP_VENV ?= build/interop-venv
$(INTEROP_VENV)/.ready:
	python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install -q numpy safetensors transformers torch sentencepiece accelerate "aqlm[cpu]"
	touch $@

# The imported default model, then the AQLM and Hugging Face SpQR folders quench writes, through transformers.
test-interop: $(BIN) $(INTEROP_VENV)/.ready
	$(INTEROP_VENV)/bin/python tests/interop/check_hf_import.py assets/stories260K ./$(BIN)
	./$(BIN) quantize assets/stories260K --preset aqlm-small-2x8 --nsamples 16 --seqlen 64 \
	  --calib $(QN_SHARED)/text/tinystories-valid-head.txt --out $(BUILD)/interop-aqlm --force
	$(INTEROP_VENV)/bin/python tests/interop/check_aqlm.py $(BUILD)/interop-aqlm ./$(BIN)
	./$(BIN) quantize assets/stories260K --preset spqr-3.6 --nsamples 16 --seqlen 64 \
	  --calib $(QN_SHARED)/text/tinystories-valid-head.txt --out $(BUILD)/interop-spqr --force
	$(INTEROP_VENV)/bin/python tests/interop/check_spqr_hf.py $(BUILD)/interop-spqr/hf-spqr ./$(BIN)
