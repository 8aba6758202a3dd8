// Command service is esv2 in an HTTP service: errors mapped to status
// codes, idempotent commands, correlation IDs and traces from the request's
// context, and read-your-writes through a subscription. It serves on
// httptest and plays a client against itself. The README shows this file;
// internal/readmetest keeps the two equal.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/aggregate"
	"github.com/esv2/esv2/codec"
	"github.com/esv2/esv2/esotel"
	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/subscription"
)

type Account struct{ Owner string }

type AccountEvent interface{ isAccountEvent() }
type Opened struct{ Owner string }
type Deposited struct{ Amount int64 }

func (Opened) isAccountEvent()    {}
func (Deposited) isAccountEvent() {}

func evolve(a Account, e AccountEvent) Account {
	if o, ok := e.(Opened); ok {
		a.Owner = o.Owner
	}
	return a
}

var errInvalid = errors.New("invalid request")

// status maps esv2's errors to HTTP. ErrGaveUp comes before ErrConcurrency,
// which it wraps: an Update that lost every race is the server's trouble
// (503, try again later with the same Idempotency-Key), while a conflict
// with the version the client sent (If-Match) is the client's (409).
func status(err error) int {
	switch {
	case errors.Is(err, errInvalid), errors.Is(err, eventstore.ErrInvalidInput):
		return http.StatusBadRequest
	case errors.Is(err, aggregate.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, eventstore.ErrStreamDeleted): // erased on request
		return http.StatusGone
	case errors.Is(err, aggregate.ErrGaveUp), errors.Is(err, eventstore.ErrUnknownOutcome):
		return http.StatusServiceUnavailable
	case errors.Is(err, eventstore.ErrConcurrency):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// balances is the read model, fed by a subscription.
type balances struct {
	mu sync.Mutex
	m  map[string]int64
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	// Tracing: a real service installs an exporter (OTLP) here.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(ctx) }()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	store, err := sqlite.Open(ctx, "") // in memory
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	events := codec.New[AccountEvent]()
	if err := errors.Join(codec.Register[Opened](events, "account.opened"),
		codec.Register[Deposited](events, "account.deposited")); err != nil {
		return err
	}
	repo, err := aggregate.NewRepository(esotel.WrapStore(store), aggregate.Config[Account, AccountEvent]{
		Evolve: evolve, Codec: events, Hooks: esotel.RepositoryHooks(),
	})
	if err != nil {
		return err
	}

	model := &balances{m: map[string]int64{}}
	sub, err := subscription.New(store, "balances", func(_ context.Context, batch []eventstore.Recorded) error {
		model.mu.Lock()
		defer model.mu.Unlock()
		for _, r := range batch {
			e, err := events.DecodeRecorded(&r)
			if err != nil {
				return err
			}
			if d, ok := e.(Deposited); ok {
				model.m[r.StreamID] += d.Amount
			}
			fmt.Printf("  read model: %s %s correlation=%s\n", r.StreamID, r.Type, r.Metadata[eventstore.CorrelationIDKey])
		}
		return nil
	}, subscription.WithHooks(esotel.SubscriptionHooks()))
	if err != nil {
		return err
	}
	subCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- sub.Run(subCtx) }()
	defer func() { stop(); err = errors.Join(err, <-stopped) }()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /accounts/{id}", func(w http.ResponseWriter, r *http.Request) {
		acc, err := repo.Update(r.Context(), r.PathValue("id"), func(a Account) ([]AccountEvent, error) {
			if a.Owner != "" {
				return nil, nil // opened already: nothing to do
			}
			return []AccountEvent{Opened{Owner: r.FormValue("owner")}}, nil
		}, aggregate.WithCommandID(r.Header.Get("Idempotency-Key")))
		if err == nil {
			err = sub.WaitFor(r.Context(), acc.Position())
		}
		reply(w, err, http.StatusCreated, "")
	})
	mux.HandleFunc("POST /accounts/{id}/deposits", func(w http.ResponseWriter, r *http.Request) {
		amount, _ := strconv.ParseInt(r.FormValue("amount"), 10, 64)
		acc, err := repo.Update(r.Context(), r.PathValue("id"), func(Account) ([]AccountEvent, error) {
			if amount <= 0 {
				return nil, fmt.Errorf("%w: amount %d", errInvalid, amount)
			}
			return []AccountEvent{Deposited{Amount: amount}}, nil
		}, aggregate.WithCommandID(r.Header.Get("Idempotency-Key")), aggregate.MustExist())
		if err == nil {
			// Read your writes: wait for the read model to reach the event.
			err = sub.WaitFor(r.Context(), acc.Position())
		}
		model.mu.Lock()
		balance := model.m[r.PathValue("id")]
		model.mu.Unlock()
		reply(w, err, http.StatusOK, fmt.Sprintf("balance %d", balance))
	})
	mux.HandleFunc("PUT /accounts/{id}/owner", func(w http.ResponseWriter, r *http.Request) {
		acc, err := repo.LoadExisting(r.Context(), r.PathValue("id"))
		if err == nil {
			// The client edits the version it read (If-Match): a newer one is a conflict.
			expected, _ := strconv.ParseUint(r.Header.Get("If-Match"), 10, 64)
			acc.Record(Opened{Owner: r.FormValue("owner")})
			if acc.Version() != expected {
				err = &eventstore.ConflictError{StreamID: acc.ID(), Expected: eventstore.Exact(expected), Actual: acc.Version()}
			} else {
				err = repo.Save(r.Context(), acc)
			}
		}
		reply(w, err, http.StatusOK, "")
	})
	srv := httptest.NewServer(middleware(mux))
	defer srv.Close()

	for _, c := range []struct{ method, path, key, header string }{
		{"POST", "/accounts/acc-1?owner=ann", "open-1", ""},
		{"POST", "/accounts/acc-1/deposits?amount=50", "dep-1", ""},
		{"POST", "/accounts/acc-1/deposits?amount=50", "dep-1", ""}, // a client's retry: stored once
		{"POST", "/accounts/acc-9/deposits?amount=50", "dep-2", ""},
		{"POST", "/accounts/acc-1/deposits?amount=-5", "dep-3", ""},
		{"PUT", "/accounts/acc-1/owner?owner=bob", "", "1"},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, srv.URL+c.path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Idempotency-Key", c.key)
		req.Header.Set("If-Match", c.header)
		req.Header.Set("X-Correlation-ID", "req-"+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		fmt.Printf("%s %s -> %s %s\n", c.method, c.path, resp.Status, resp.Header.Get("X-Result"))
	}

	linked := 0
	for _, s := range spans.Ended() {
		if s.Name() == "esv2.subscription.batch" {
			linked += len(s.Links())
		}
	}
	fmt.Printf("read model batches link to %d appending spans\n", linked)
	return nil
}

// middleware starts each request's span from its traceparent header and
// puts its correlation ID in the context: every event it causes carries it.
func middleware(next http.Handler) http.Handler {
	tracer := otel.Tracer("service")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method+" "+r.Pattern)
		defer span.End()
		ctx = eventstore.WithCorrelationID(ctx, r.Header.Get("X-Correlation-ID"))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func reply(w http.ResponseWriter, err error, ok int, result string) {
	if err != nil {
		w.Header().Set("X-Result", err.Error())
		w.WriteHeader(status(err))
		return
	}
	w.Header().Set("X-Result", result)
	w.WriteHeader(ok)
}
