# Convenience targets; the scripts do the work.
.PHONY: all install test
all:
	cargo build --release --target x86_64-unknown-linux-musl
install:
	scripts/install.sh
test:
	scripts/test.sh
