# keyrite — see README.md.  `make`, `make check`, `make demo`, `make lint`.

BUILD   ?= build
CC      ?= cc
PKGS     = libcrypto libssl p11-kit-1 sqlite3 libpq ldns jansson libevent_openssl libevent_pthreads
SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# ASan records each allocation's stack with the fast (frame-pointer)
# unwinder: the slow one made the ASan run 5x slower (12 of the 18 minutes
# of make check). The tests that sign with Ed25519 on SoftHSM, whose leak
# tests/lsan.supp suppresses by library, ask for the slow one (slow_unwind
# in tests/e2e/lib.sh): only it sees through libcrypto, built without frame
# pointers, to SoftHSM. Under a sanitizer the registry-scale tests run at a
# fifth of their size (KR_E2E_BULK devices): the same checks, at a cost the
# 20-minute budget takes.
SAN_RUN  = KR_E2E_BULK=2000 ASAN_OPTIONS=fast_unwind_on_malloc=1:detect_leaks=1:abort_on_error=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0

TSAN     = -fsanitize=thread -fno-omit-frame-pointer
TSAN_RUN = KR_E2E_BULK=2000 TSAN_OPTIONS=halt_on_error=1:exitcode=66

WARN     = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong $(WARN) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(EXTRA_LDFLAGS)

LIB_SRC  = $(wildcard util/*.c crypto/*.c hsm/*.c store/*.c ca/*.c fw/*.c policy/*.c ceremony/*.c publish/*.c registry/*.c serve/*.c)
CLI_SRC  = $(wildcard cli/*.c)
SRC_DIRS = $(sort $(dir $(LIB_SRC) $(CLI_SRC))) # every source folder, for the checkers
UNIT_SRC = $(wildcard tests/unit/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ = $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps check unit e2e e2e-pg asan demo bench lint format clean fuzz
all: $(BUILD)/keyrite

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The archive is made afresh whenever the list of its objects changes, so
# that a moved or deleted source does not linger in it.
$(BUILD)/objects.list: FORCE
	@mkdir -p $(BUILD)
	@echo '$(LIB_OBJ)' | cmp -s - $@ || echo '$(LIB_OBJ)' >$@

$(BUILD)/libkeyrite.a: $(LIB_OBJ) $(BUILD)/objects.list
	@rm -f $@
	@$(AR) rcs $@ $(LIB_OBJ)

FORCE:

$(BUILD)/keyrite: $(CLI_OBJ) $(BUILD)/libkeyrite.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(BUILD)/libkeyrite.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# Fuzz targets (tests/fuzz/README.md): libFuzzer, ASan and UBSan, with clang.
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.c $(BUILD)/libkeyrite.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -DKR_FUZZ_REPO='"$(CURDIR)"' -o $@ $^ $(LDLIBS)

# Test and benchmark helper (not part of keyrite).
$(BUILD)/mkcsr: tests/tools/mkcsr.c
	@echo "  LINK    $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Werror -o $@ $< -lcrypto

# Fault injection for the crash tests (tests/tools/crashat.c; not part of keyrite).
$(BUILD)/crashat.so: tests/tools/crashat.c
	@echo "  LINK    $@"
	@$(CC) -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

# The meters' eSIMs for the registry's tests: keys made on a token, their CSRs
# (tests/tools/esim.c; not part of keyrite).
$(BUILD)/esim: tests/tools/esim.c $(BUILD)/libkeyrite.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/csign: bench/csign.c $(BUILD)/libkeyrite.a
	@echo "  LINK    $@"
	@$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -o $@ $^ $(LDLIBS)

# The load generator of bench/serve.sh (not part of keyrite): libcurl and
# OpenSSL's CMP client.
$(BUILD)/cmpload: bench/cmpload.c
	@echo "  LINK    $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< -lcurl -lcrypto -lpthread

bench: deps
	@scripts/deps.sh bench
	$(MAKE) all $(BUILD)/mkcsr $(BUILD)/csign $(BUILD)/cmpload
	bench/issue.sh $(N)

deps:
	@scripts/deps.sh

# Unit tests (Criterion), then end-to-end tests against real SoftHSM tokens and
# independent verifiers; then the same again under ASan and UBSan; then the
# end-to-end tests under TSan, since batches sign, parse and write on several
# threads. (Criterion's shared arena cannot live in TSan's memory layout, so
# the unit tests sit that one out; the threaded code runs end to end.)
check: deps
	$(MAKE) unit e2e e2e-pg
	$(MAKE) BUILD=build/asan EXTRA_CFLAGS="$(SAN)" EXTRA_LDFLAGS="$(SAN)" RUN_ENV="$(SAN_RUN)" unit e2e
	$(MAKE) BUILD=build/tsan EXTRA_CFLAGS="$(TSAN)" EXTRA_LDFLAGS="$(TSAN)" RUN_ENV="$(TSAN_RUN)" e2e
	$(MAKE) fuzz FUZZ_SECONDS=4

# Every fuzz target for FUZZ_SECONDS (or FUZZ_RUNS executions, if sooner),
# after replaying its seed corpus; make check runs each for seconds.
FUZZ_TARGETS = csr manifest ca_config ceremony mcuboot cms uri registry serve share backup
FUZZ_SAN     = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= -1
fuzz: deps
	$(MAKE) BUILD=build/fuzz CC=clang EXTRA_CFLAGS="$(FUZZ_SAN) -U_FORTIFY_SOURCE" \
	  EXTRA_LDFLAGS="$(FUZZ_SAN)" $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_RUNS) $(FUZZ_TARGETS)

unit: $(BUILD)/unit-tests $(BUILD)/keyrite
	$(RUN_ENV) KEYRITE=$(abspath $(BUILD)/keyrite) $(BUILD)/unit-tests --jobs 2

e2e: $(BUILD)/keyrite $(BUILD)/mkcsr $(BUILD)/crashat.so $(BUILD)/esim
	$(RUN_ENV) KEYRITE=$(abspath $(BUILD)/keyrite) MKCSR=$(abspath $(BUILD)/mkcsr) \
	  CRASHAT=$(abspath $(BUILD)/crashat.so) ESIM=$(abspath $(BUILD)/esim) tests/e2e/run.sh

# The issuance, revocation, CRL, audit, publication and registry tests again,
# and several nodes on one store (t_nodes.sh),
# on PostgreSQL (a server of their own, tests/e2e/pg.sh), at the sanitizer
# runs' bulk size: the same checks, in the 20-minute budget.
e2e-pg: $(BUILD)/keyrite $(BUILD)/mkcsr $(BUILD)/crashat.so $(BUILD)/esim
	KR_E2E_STORE=postgresql KR_E2E_FILES="issue registry publish nodes" KR_E2E_BULK=2000 \
	  KEYRITE=$(abspath $(BUILD)/keyrite) MKCSR=$(abspath $(BUILD)/mkcsr) \
	  CRASHAT=$(abspath $(BUILD)/crashat.so) ESIM=$(abspath $(BUILD)/esim) tests/e2e/run.sh

demo: deps
	$(MAKE) all $(BUILD)/mkcsr
	scripts/demo.sh

C_FILES  = $(shell find util crypto hsm store ca fw policy ceremony publish registry serve cli tests bench -name '*.[ch]')

# Static analysis and formatting; the build itself already has -Werror.
lint:
	@scripts/deps.sh lint
	scripts/layers.sh
	clang-format --dry-run -Werror $(C_FILES)
	clang-tidy --quiet $(LIB_SRC) $(CLI_SRC) -- $(ALL_CFLAGS) -U_FORTIFY_SOURCE
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr -D_GNU_SOURCE --suppress=unknownMacro:ca/der.h --suppress=unknownMacro:fw/attrs.c \
	  --suppress=unknownMacro:crypto/backup.c \
	  -I. $(SRC_DIRS)

format:
	clang-format -i $(C_FILES)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
