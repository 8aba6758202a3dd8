package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// childEnv names the environment variable that makes this program a child
// measuring one operation's peak RSS (see runChild).
const childEnv = "ESBENCH_CHILD"

// selfPeakRSSMB returns this process's peak resident set size in MiB.
func selfPeakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// runChild re-runs this program as a child that opens the store described
// by env, does op over stream (which must hold events events) and exits;
// it returns the child's peak RSS in MiB, which covers the whole child
// (Go runtime, open connections, the operation) and nothing of this
// process.
func runChild(ctx context.Context, env []string, op, stream string, events int) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, childEnv+"="+op, "ESBENCH_STREAM="+stream, "ESBENCH_EVENTS="+strconv.Itoa(events))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %w: %s", op, err, out.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, fmt.Errorf("%s: no rusage", op)
	}
	return float64(ru.Maxrss) / 1024, nil
}

// childMain is the child's side of runChild.
func childMain(op string) int {
	if err := child(context.Background(), op); err != nil {
		fmt.Fprintln(os.Stderr, "esbench child:", err)
		return 1
	}
	return 0
}

func child(ctx context.Context, op string) error {
	stream := os.Getenv("ESBENCH_STREAM")
	want, err := strconv.Atoi(os.Getenv("ESBENCH_EVENTS"))
	if err != nil {
		return err
	}
	e, err := openChild(ctx)
	if err != nil {
		return err
	}
	defer e.cleanup()
	switch op {
	case "read":
		n, err := libraryRead(ctx, e.store, stream)
		return countErr(n, want, err)
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
