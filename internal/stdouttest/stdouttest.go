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
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	defer func() { os.Stdout = stdout }()
	f()
	os.Stdout = stdout
	w.Close()
	return string(<-done)
}
