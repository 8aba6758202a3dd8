package aggregate_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTypeSafety compiles small programs that misuse a repository's types
// and checks that the compiler refuses each with the error we expect (and
// accepts the well-typed twin), so that "the compiler catches a wrong
// reducer or event type" stays true. The programs live in an overlay; no
// file is written into the module.
func TestTypeSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles programs; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	const header = `package typecheck

import (
	"context"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/eventstore"
)

type Account struct{ Balance int64 }
type AccountEvent interface{ isAccountEvent() }
type Deposited struct{ Amount int64 }
func (Deposited) isAccountEvent() {}

type Order struct{}
type OrderEvent interface{ isOrderEvent() }
type Placed struct{}
func (Placed) isOrderEvent() {}

func evolve(a Account, e AccountEvent) Account { return a }
func evolveOrder(o Order, e OrderEvent) Order   { return o }

var (
	store  eventstore.Store
	events = codec.New[AccountEvent]()
	orders = codec.New[OrderEvent]()
	ctx    = context.Background()
)
`
	good := header + `
func use() {
	repo, _ := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{Evolve: evolve, Codec: events})
	a, _ := repo.Load(ctx, "a")
	a.Record(Deposited{Amount: 1})
	_, _ = repo.Update(ctx, "a", func(Account) ([]AccountEvent, error) { return []AccountEvent{Deposited{}}, nil })
	_, _ = orders, evolveOrder
}
`
	bad := header + `
func use() {
	_ = aggregate.Config[Account, AccountEvent]{Evolve: evolveOrder, Codec: events}                        // reducer of another aggregate
	_ = aggregate.Config[Account, AccountEvent]{Evolve: evolve, Codec: orders}                             // codec of another event type
	repo, _ := aggregate.NewRepository(store, aggregate.Config[Account, AccountEvent]{Evolve: evolve, Codec: events})
	a, _ := repo.Load(ctx, "a")
	a.Record(Placed{})                                                                                     // event of another aggregate
	_, _ = repo.Update(ctx, "a", func(Order) ([]AccountEvent, error) { return nil, nil })                  // decide on the wrong state
	_, _ = repo.Update(ctx, "a", func(Account) ([]OrderEvent, error) { return nil, nil })                  // decide returning wrong events
	_, _, _ = events.Encode(Placed{})                                                                      // encode a foreign event
}
`
	wantErrors := []string{
		"cannot use evolveOrder",
		"cannot use orders",
		"as AccountEvent value in argument to a.Record",
		"cannot use func(Order) ([]AccountEvent, error)",
		"cannot use func(Account) ([]OrderEvent, error)",
		"as AccountEvent value in argument to events.Encode",
	}

	if out, err := compile(t, gobin, good); err != nil {
		t.Fatalf("the well-typed program does not compile: %v\n%s", err, out)
	}
	out, err := compile(t, gobin, bad)
	if err == nil {
		t.Fatal("the ill-typed program compiled")
	}
	for _, want := range wantErrors {
		if !strings.Contains(out, want) {
			t.Errorf("compiler output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "cannot use"); n != 6 {
		t.Errorf("%d type errors, want 6:\n%s", n, out)
	}
}

// compile builds src as a package inside this module through an overlay
// and returns the compiler's output.
func compile(t *testing.T, gobin, src string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "typecheck.go")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	pkgDir, err := filepath.Abs("zz_typecheck")
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(pkgDir, "typecheck.go"): file}})
	if err != nil {
		t.Fatal(err)
	}
	ovFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), gobin, "build", "-overlay="+ovFile, "./zz_typecheck")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
