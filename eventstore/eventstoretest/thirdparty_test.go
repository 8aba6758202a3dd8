package eventstoretest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// thirdPartyDir is a module of its own (example.com/thirdparty) holding a
// tiny in-memory adapter written as a third party would write one, on
// esv2's public packages only, and its conformance test through this
// package (issue 10).
var thirdPartyDir = filepath.Join("..", "..", "internal", "testsuite", "thirdparty")

// TestThirdPartyModule runs `go test ./...` in thirdPartyDir: the suite
// must be reachable and passable from outside the module, through the
// public entry and driver.New alone. Its go.mod replaces esv2 with this
// checkout, so it tests this tree.
//
// The go command runs with -mod=readonly and GOPROXY=off: the module's
// committed go.mod and go.sum must be complete (nothing is rewritten or
// fetched), and every module it needs is one this module's own build has
// already put in the module cache.
func TestThirdPartyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips building and testing the separate module internal/testsuite/thirdparty with the go command")
	}
	dir, err := filepath.Abs(thirdPartyDir)
	if err != nil {
		t.Fatal(err)
	}
	// go test puts the GOROOT/bin of the go command that runs it first in
	// the test's PATH (Go 1.19 and later), so this is that same go; runtime.GOROOT
	// is deprecated for this use.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command in PATH (run this test with go test): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), goCmd, "test", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS="+goflags(os.Getenv("GOFLAGS")))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./... in %s: %v\n%s", dir, err, out)
	}
	t.Logf("go test ./... in %s:\n%s", dir, out)
}

// goflags returns the caller's GOFLAGS with -mod=readonly in place of any
// -mod flag: -mod=mod would let the go command complete go.sum silently,
// hiding a go.sum that is not committed whole.
func goflags(env string) string {
	var kept []string
	for f := range strings.FieldsSeq(env) {
		if !strings.HasPrefix(f, "-mod=") && !strings.HasPrefix(f, "--mod=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(append(kept, "-mod=readonly"), " ")
}
