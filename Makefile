# Convenience targets; CI runs .ci/run, and the README's commands need no make.
GO ?= go

.PHONY: test build demo bench chaos fuzz lint

build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o bin/mps-archiver ./cmd/mps-archiver

test:
	$(GO) test ./...

demo:
	$(GO) run ./cmd/mps-archiver demo

# The performance figures of docs/performance.md: 100k tasks, plus 1M for peak RSS.
bench: build
	bin/mps-archiver bench --tasks 100000 --rss-tasks 1000000 --json bench.json

# Long forms of the reliability suite: 25 kill -9 rounds over 20,000 tasks,
# 20 s of three replicas, PostgreSQL and API faults.
chaos:
	CHAOS=long $(GO) test -count=1 -v -timeout 60m -run 'KillNine|Replicas|Outage|Faults|FaultRates|WhileTasksMove|Hostile' ./e2e ./syncer

# Longer fuzz runs than CI's.
fuzz:
	$(GO) test ./mps -run '^$$' -fuzz '^FuzzDecodePage$$' -fuzztime 5m
	$(GO) test ./mps -run '^$$' -fuzz '^FuzzParseTime$$' -fuzztime 2m
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 2m

lint:
	gofmt -l . && $(GO) vet ./...
