package keystoretest_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"

	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/codec/keystoretest"
)

// mutantEnv names the bug of a child process's key store.
const mutantEnv = "ESV2_KEYSTORE_MUTANT"

// mutants are deliberately broken key stores, each with the case that must
// catch it.
var mutants = map[string]string{
	"create-replaces":   "Create/ThenKey",
	"forget-noop":       "Forget/ThenKeyNotFound",
	"forget-keeps-used": "Forget/AfterKeyRead",
	"forget-all":        "Forget/ThenKeyNotFound",
	"forget-unknown":    "Forget/Unknown",
	"create-revives":    "Forget/CreateAgainMakesNewKey",
	"shared-bytes":      "Create/ReturnedKeyIsACopy",
	"no-validation":     "Subject/Invalid",
	"ignores-ctx":       "Context/Cancelled",
	"prefix-match":      "Subject/Unusual",
	"same-key":          "Create/KeysDiffer",
	"short-key":         "Create/ThenKey",
}

// buggy wraps a MemoryKeyStore and breaks it as its bug says.
type buggy struct {
	bug   string
	inner *codec.MemoryKeyStore
	mu    sync.Mutex
	cache map[string][]byte // forget-keeps-used, create-revives, shared-bytes
	fixed []byte
}

func (b *buggy) Key(ctx context.Context, s string) ([]byte, error) {
	if b.bug == "no-validation" && s == "" {
		return nil, nil
	}
	if b.bug == "ignores-ctx" {
		ctx = context.Background()
	}
	if b.bug == "prefix-match" && len(s) > 1 && s[len(s)-1] == '%' {
		return b.inner.Key(ctx, s+"_\\b") // as LIKE would match "a%_\\b"
	}
	b.mu.Lock()
	if k, ok := b.cache[s]; ok && (b.bug == "forget-keeps-used" || b.bug == "shared-bytes") {
		b.mu.Unlock()
		return k, nil
	}
	b.mu.Unlock()
	k, err := b.inner.Key(ctx, s)
	if err == nil && b.bug == "forget-keeps-used" {
		b.mu.Lock()
		b.cache[s] = k
		b.mu.Unlock()
	}
	return k, err
}

func (b *buggy) Create(ctx context.Context, s string) ([]byte, error) {
	switch b.bug {
	case "no-validation":
		if s == "" {
			return make([]byte, codec.KeySize), nil
		}
	case "ignores-ctx":
		ctx = context.Background()
	case "create-replaces":
		_ = b.inner.Forget(ctx, s)
	case "same-key":
		return bytes.Clone(b.fixed), nil
	case "short-key":
		k, err := b.inner.Create(ctx, s)
		return k[:16], err
	case "create-revives", "shared-bytes":
		b.mu.Lock()
		defer b.mu.Unlock()
		if k, ok := b.cache[s]; ok {
			if b.bug == "create-revives" {
				_, _ = b.inner.Create(ctx, s)
			}
			return k, nil
		}
		k, err := b.inner.Create(ctx, s)
		b.cache[s] = k
		return k, err
	}
	return b.inner.Create(ctx, s)
}

func (b *buggy) Forget(ctx context.Context, s string) error {
	switch b.bug {
	case "no-validation":
		if s == "" {
			return nil
		}
	case "ignores-ctx":
		ctx = context.Background()
	case "forget-noop":
		return nil
	case "forget-all":
		b.inner = codec.NewMemoryKeyStore()
		return nil
	case "forget-unknown":
		if _, err := b.inner.Key(ctx, s); err != nil {
			return err
		}
	}
	return b.inner.Forget(ctx, s)
}

func newStore(t *testing.T) codec.KeyStore {
	bug := os.Getenv(mutantEnv)
	if bug == "" {
		return codec.NewMemoryKeyStore()
	}
	fixed, err := codec.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return &buggy{bug: bug, inner: codec.NewMemoryKeyStore(), cache: make(map[string][]byte), fixed: fixed}
}

func TestSuite(t *testing.T) { keystoretest.Run(t, newStore) }

// TestSuiteCatchesMutants runs the suite on each broken key store in a
// child process (a failing subtest cannot be contained otherwise) and
// checks that the case meant to catch it fails.
func TestSuiteCatchesMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant run")
	}
	for bug, fails := range mutants {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			run := "^TestSuite$/^" + regexp.QuoteMeta(fails) + "$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed on a key store with bug %q; output:\n%s", bug, out)
			}
			if !regexp.MustCompile(`(?m)^\s*--- FAIL: TestSuite/` + regexp.QuoteMeta(fails) + ` `).Match(out) {
				t.Errorf("bug %q did not fail %s; output:\n%s", bug, fails, out)
			}
		})
	}
}
