# Convenience wrapper; run.sh is the real entry point (it works without make).
.PHONY: all demo test install fuzz
all:
	./run.sh build
demo:
	./run.sh demo
test:
	./run.sh test
install:
	./run.sh install
fuzz:
	./run.sh fuzz
