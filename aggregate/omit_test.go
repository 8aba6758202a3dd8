package aggregate_test

import (
	"context"
	"fmt"
	"iter"
	"testing"

	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/eventstore"
)

// omitStore records the Omit of every Read.
type omitStore struct {
	eventstore.Store
	omits []eventstore.Fields
}

func (o *omitStore) Read(ctx context.Context, id string, opts eventstore.ReadOptions) iter.Seq2[eventstore.Recorded, error] {
	o.omits = append(o.omits, opts.Omit)
	return o.Store.Read(ctx, id, opts)
}

// TestLoadOmitsUnusedFields checks that Load asks the store not to read
// the events' IDs, metadata and times, which folding never uses (on
// SQLite, reading them was a fifth of a Load's instructions), and still
// folds events that have all three.
func TestLoadOmitsUnusedFields(t *testing.T) {
	ctx := t.Context()
	store := &omitStore{Store: openSQLite(t, "")}
	reg := counterCodec(t)
	repo := newRepo(t, store, aggregate.Config[Counter, CounterEvent]{Evolve: countOnly, Codec: reg})
	for i := range 3 {
		ev, err := reg.Event(Added{By: int64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ev.ID, ev.Metadata = fmt.Sprint("id-", i), map[string]string{"k": "v"}
		if _, err := store.Append(ctx, "omit", eventstore.Any, ev); err != nil {
			t.Fatal(err)
		}
	}
	a, err := repo.Load(ctx, "omit")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.State().N; got != 6 || a.Version() != 3 || a.Position() != 3 {
		t.Errorf("loaded N=%d version %d position %d, want 6, 3, 3", got, a.Version(), a.Position())
	}
	if len(store.omits) != 1 || store.omits[0] != eventstore.AllFields {
		t.Errorf("Load read with Omit %v, want one read omitting %v", store.omits, eventstore.AllFields)
	}
}
