// Package stdouttest captures what a function prints to os.Stdout, for the
// tests of the example programs.
package stdouttest

import (
	"io"
	"os"
	"testing"
)

// Capture runs f with os.Stdout redirected to a pipe and returns what f
// printed. It must not be used by parallel tests.
func Capture(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result)
	go func() {
		b, err := io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		done <- result{b, err}
	}()
	defer func() { os.Stdout = stdout }()
	f()
	os.Stdout = stdout
	if err := w.Close(); err != nil {
		t.Errorf("closing the pipe: %v", err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("reading what was printed: %v", res.err)
	}
	return string(res.b)
}
