# rill: build, test, install, benchmark, and a live demo.
#
#   make run      build, then run the pipeline under a supervisor (Ctrl-C stops it)
#   make test     all tests (sets itself up: as root it installs the peers)
#   make deps     as root: install what the tests and benchmarks use
#   make install  PREFIX=/usr/local DESTDIR= : programs, man pages, service definitions
#   make setup    as root: the services' accounts and directories
#   make bench    the benchmarks of tests/bench/, side by side with the peers

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo

# Where make install puts the service definitions and their setup script.
SERVICES = $(PREFIX)/share/rill/services

PROGRAMS := cyclog klog-read follow-log-directories export-to-remote log-show syslog-read
MANPAGES := $(wildcard man/*.[1-8])

# What the tests and benchmarks run, as command:Debian-package.
PEERS := multilog:daemontools tai64nlocal:daemontools s6-log:s6 s6-tai64nlocal:s6 svlogd:runit \
	socklog:socklog rsyslogd:rsyslog mandoc:mandoc gzip:gzip zstd:zstd \
	logger:bsdutils hyperfine:hyperfine /usr/bin/time:time openssl:openssl \
	s6-socklog:s6 python3:python3 cc:gcc musl-gcc:musl-tools pgrep:procps \
	strace:strace journalctl:systemd tcpserver:ucspi-tcp
# Packages with nothing to check by command (syslog-ng-core's libraries,
# rsyslog's imrelp for tests/relp.rs).
EXTRA_PACKAGES := rsyslog-gnutls rsyslog-relp libivykis0 libnet1 libpcre3 libwrap0
# Peers whose package conflicts with another peer's (syslog-ng-core with
# rsyslog), or would bring a daemon (systemd-journal-remote, for log-show
# -o export): unpacked, never installed, under PEERS_PREFIX/package, as
# command:package[+library package...]. The tests look there too
# (RILL_PEERS overrides it).
PEERS_PREFIX ?= /opt/rill-peers
PRIVATE_PEERS := usr/sbin/syslog-ng:syslog-ng-core \
	lib/systemd/systemd-journal-remote:systemd-journal-remote+libmicrohttpd12

.PHONY: all test deps deps-ready private-peers install uninstall setup bench run clean

all:
	$(CARGO) build --release --locked

# Missing peers: as root, install them; otherwise say exactly which.
deps-ready:
	@missing=""; for p in $(PEERS); do \
		command -v "$${p%%:*}" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	for p in $(PRIVATE_PEERS); do \
		pkgs=$${p##*:}; pkg=$${pkgs%%+*}; \
		[ -x "$(PEERS_PREFIX)/$$pkg/$${p%%:*}" ] || missing="$$missing $$pkg(unpacked)"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory deps; \
		else \
			echo "missing (command:package):$$missing"; \
			echo "install them as root with: make deps"; \
			exit 1; \
		fi; \
	fi

# Package scripts must not start system daemons (they would take /dev/log):
# a policy-rc.d that refuses is in place while apt-get runs.
deps:
	@[ "$$(id -u)" = 0 ] || { echo "make deps installs packages: run it as root"; exit 1; }
	@set -e; \
	policy=/usr/sbin/policy-rc.d; ours=""; \
	if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; ours=1; fi; \
	packages="$(EXTRA_PACKAGES)"; for p in $(PEERS); do packages="$$packages $${p##*:}"; done; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$packages >/dev/null \
	&& $(MAKE) --no-print-directory private-peers; \
	status=$$?; [ -z "$$ours" ] || rm -f $$policy; exit $$status

# Unpacks each private peer's package afresh under PEERS_PREFIX (as root).
private-peers:
	@set -e; for p in $(PRIVATE_PEERS); do \
		pkgs=$${p##*:}; pkg=$${pkgs%%+*}; dl=$$(mktemp -d); \
		( cd $$dl && apt-get download -qq -o APT::Sandbox::User=root $$(echo $$pkgs | tr + ' ') ); \
		rm -rf $(PEERS_PREFIX)/$$pkg; mkdir -p $(PEERS_PREFIX)/$$pkg; \
		for deb in $$dl/*.deb; do dpkg -x $$deb $(PEERS_PREFIX)/$$pkg; done; rm -rf $$dl; \
		echo "unpacked $$pkgs in $(PEERS_PREFIX)/$$pkg"; \
	done

test: deps-ready
	RILL_PEERS=$(PEERS_PREFIX) $(CARGO) test --locked --no-fail-fast
	sh tests/layers.sh
	mandoc -Tlint $(MANPAGES)
	@for p in $(PROGRAMS); do ls man/$$p.[18] >/dev/null 2>&1 || { echo "no man page for $$p"; exit 1; }; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	for p in $(PROGRAMS); do install -m 755 target/release/$$p $(DESTDIR)$(PREFIX)/bin/$$p; done
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
		install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	install -d $(DESTDIR)$(SERVICES)
	rm -rf $(DESTDIR)$(SERVICES)/src $(DESTDIR)$(SERVICES)/runit $(DESTDIR)$(SERVICES)/s6 \
		$(DESTDIR)$(SERVICES)/daemontools $(DESTDIR)$(SERVICES)/nosh
	cp -RP services/src services/runit services/s6 services/daemontools services/nosh $(DESTDIR)$(SERVICES)/
	install -m 755 services/generate services/setup $(DESTDIR)$(SERVICES)/

uninstall:
	for p in $(PROGRAMS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$p; done
	for m in $(MANPAGES); do rm -f $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$${m##*/}; done
	rm -rf $(DESTDIR)$(SERVICES)

# As root: the accounts and directories the services' settings name
# (safe to run again). After install: $(SERVICES)/setup does the same.
setup:
	services/setup

bench: all deps-ready
	tests/bench/cyclog.sh
	tests/bench/cyclog-split.sh
	tests/bench/export.sh
	tests/bench/export-to-rill.sh
	tests/bench/log-show.sh
	tests/bench/event-time.sh
	tests/bench/log-show-journal.sh
	tests/bench/syslog-read.sh
	tests/bench/follow.sh

# The whole pipeline under a real supervisor, in the foreground, no root.
run: all
	@services/run-here

clean:
	$(CARGO) clean
	rm -rf run
