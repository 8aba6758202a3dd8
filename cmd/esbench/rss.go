package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// childEnv names the environment variable that makes this program a child
// measuring one operation's peak RSS (see runChild).
const childEnv = "ESBENCH_CHILD"

// selfPeakRSSMB returns this process's peak resident set size in MiB (see
// peakKB), 0 if it cannot be read.
func selfPeakRSSMB() float64 {
	kb, err := peakKB()
	if err != nil {
		return 0
	}
	return float64(kb) / 1024
}

// childPeak is what a child process reports: its peak RSS in MiB, and its
// baseline, the peak before the operation began (Go runtime, the store
// opened).
type childPeak struct {
	peakMB, baselineMB float64
}

// The lines on which a child reports its baseline and its peak, in KiB.
const (
	baselinePrefix = "esbench-baseline-kb "
	peakPrefix     = "esbench-peak-kb "
)

// peakKB returns this process's peak RSS in KiB: VmHWM, the high-water
// mark of its own address space, where /proc has it. Not ru_maxrss: Linux
// carries that over exec from the address space the child was forked
// with, which for Go's fork (CLONE_VM) is the parent's, so a parent that
// had grown to 1.3 GB made every child report 1.3 GB.
func peakKB() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return ru.Maxrss, nil // kilobytes on Linux
}

// runChild re-runs this program as a child that opens the store described
// by env, does op over stream (which must hold events events) and exits;
// it returns the child's peak RSS, which covers the whole child (Go
// runtime, open connections, the operation) and nothing of this process,
// and its baseline.
func runChild(ctx context.Context, env []string, op, stream string, events int) (childPeak, error) {
	exe, err := os.Executable()
	if err != nil {
		return childPeak{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, childEnv+"="+op, "ESBENCH_STREAM="+stream, "ESBENCH_EVENTS="+strconv.Itoa(events))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return childPeak{}, fmt.Errorf("%s: %w: %s", op, err, out.String())
	}
	var res childPeak
	var found [2]bool
	for line := range strings.Lines(out.String()) {
		for i, p := range []struct {
			prefix string
			dst    *float64
		}{{baselinePrefix, &res.baselineMB}, {peakPrefix, &res.peakMB}} {
			if kb, ok := strings.CutPrefix(strings.TrimSpace(line), p.prefix); ok {
				n, err := strconv.ParseInt(kb, 10, 64)
				if err != nil {
					return childPeak{}, fmt.Errorf("%s: line %q: %w", op, line, err)
				}
				*p.dst, found[i] = float64(n)/1024, true
			}
		}
	}
	if !found[0] || !found[1] {
		return childPeak{}, fmt.Errorf("%s: the child reported no baseline or peak: %s", op, out.String())
	}
	return res, nil
}

// childMain is the child's side of runChild.
func childMain(op string) int {
	run := child
	switch op {
	case "sub-member":
		run = func(ctx context.Context, _ string) error { return subMember(ctx) }
	case "update-hot":
		run = func(ctx context.Context, _ string) error { return hotMember(ctx) }
	case "append-mp":
		run = func(ctx context.Context, _ string) error { return mpMember(ctx) }
	}
	if err := run(context.Background(), op); err != nil {
		fmt.Fprintln(os.Stderr, "esbench child:", err)
		return 1
	}
	return 0
}

func child(ctx context.Context, op string) (err error) {
	stream := os.Getenv("ESBENCH_STREAM")
	want, err := strconv.Atoi(os.Getenv("ESBENCH_EVENTS"))
	if err != nil {
		return err
	}
	e, err := openChild(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.cleanup()) }()
	// The baseline: the peak so far, with the runtime up and the store
	// open and a connection made, before the operation.
	if _, err := e.store.Info(ctx, stream); err != nil {
		return err
	}
	kb, err := peakKB()
	if err != nil {
		return err
	}
	fmt.Printf("%s%d\n", baselinePrefix, kb)
	if err := childOp(ctx, e, op, stream, want); err != nil {
		return err
	}
	if kb, err = peakKB(); err != nil {
		return err
	}
	fmt.Printf("%s%d\n", peakPrefix, kb)
	return nil
}

// childOp does op over stream, which holds want events.
func childOp(ctx context.Context, e *env, op, stream string, want int) error {
	switch op {
	case "read":
		n, err := libraryRead(ctx, e.store, stream)
		return countErr(n, want, err)
	case "watch":
		_, err := watchCount(ctx, e.store, stream, want)
		return err
	case "driver-read":
		n, err := e.drv.read(ctx, stream, 1, func(uint64, string, []byte) error { return nil })
		return countErr(n, want, err)
	case "load":
		repo, err := newCounterRepo(e.store, 0, nil)
		if err != nil {
			return err
		}
		a, err := repo.Load(ctx, stream)
		if err == nil && a.Version() != uint64(want) {
			err = fmt.Errorf("loaded version %d, want %d", a.Version(), want)
		}
		return err
	}
	return fmt.Errorf("unknown child operation %q", op)
}

// openChild opens the store and driver the parent described in the
// environment, without creating or dropping anything.
func openChild(ctx context.Context) (*env, error) {
	cfg := defaultConfig()
	switch os.Getenv("ESBENCH_BACKEND") {
	case "sqlite":
		return openSQLiteAt(ctx, &cfg, os.Getenv("ESBENCH_PATH"), nil)
	case "postgres":
		return attachPostgres(ctx, os.Getenv("ESBENCH_DSN"), os.Getenv("ESBENCH_SCHEMA"), nil)
	}
	return nil, fmt.Errorf("ESBENCH_BACKEND %q", os.Getenv("ESBENCH_BACKEND"))
}
