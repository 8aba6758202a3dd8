package esotel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOthersDoNotLinkOpenTelemetry: only esotel imports OpenTelemetry, so a
// program that does not import esotel links none of it (issue 14).
func TestOthersDoNotLinkOpenTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped with -short")
	}
	pkgs := []string{
		"github.com/esv2/esv2/eventstore/...", "github.com/esv2/esv2/aggregate", "github.com/esv2/esv2/subscription",
		"github.com/esv2/esv2/adapters/...", "github.com/esv2/esv2/codec", "github.com/esv2/esv2/cmd/...",
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "go.opentelemetry.io/") {
			t.Errorf("%s is linked by a package other than esotel", p)
		}
	}
}
