// Package esotel traces and measures esv2 with OpenTelemetry: a store
// wrapper ([WrapStore]), repository hooks ([RepositoryHooks]) and
// subscription hooks ([SubscriptionHooks]). It is the only package of esv2
// that imports OpenTelemetry: a program that does not import it links none
// of it, and pays nothing for it.
//
// # Set-up
//
//	store, err := sqlite.Open(ctx, "events.db")
//	traced := esotel.WrapStore(store)                   // the global providers
//	repo, err := aggregate.NewRepository(traced, aggregate.Config[S, E]{
//		Evolve: evolve, Codec: events,
//		Hooks:  esotel.RepositoryHooks(),
//	})
//	sub, err := subscription.New(store, "read-model", handle,
//		subscription.WithHooks(esotel.SubscriptionHooks()))
//
// Each constructor takes [WithTracerProvider] and [WithMeterProvider]; by
// default it uses the global providers (otel.GetTracerProvider,
// otel.GetMeterProvider), which do nothing until the program installs an
// SDK.
//
// # Spans
//
// The wrapper makes a span for each Append ("esv2.append", kind producer),
// Read, Watch (for the whole watch), Info, FindEvent, snapshot save and
// load, and the eventstore.Lifecycle calls ("esv2.stream.delete",
// "esv2.stream.truncate", "esv2.snapshot.delete"; the wrapper has that
// ability when the wrapped store has it), with the attributes an operator needs: esv2.stream,
// esv2.expected_version, esv2.version (the actual one, after an append or
// on a conflict), esv2.position, esv2.events, esv2.bytes, esv2.conflict,
// esv2.adapter. The repository hooks make "esv2.load", "esv2.save" and
// "esv2.update" spans (with esv2.attempts and esv2.gave_up), parents of
// the store's spans when the repository is given the wrapped store. The
// subscription hooks make one "esv2.subscription.batch" span (kind
// consumer) per call of the handler, parent of the handler's own spans.
//
// # Trace context through events
//
// On Append the wrapper stores the W3C trace context of the context's span
// in each event's metadata, under [eventstore.TraceParentKey] and
// [eventstore.TraceStateKey] (through [eventstore.WithMetadata]; an event's
// own keys win). A subscription's batch span then links to the span of
// each request that appended one of its events, in whichever process or
// store it ran: a link, not a parent, since one batch handles the events
// of many requests, long after they ended.
//
// # Metrics
//
//   - esv2.append.duration (histogram, s): appends, by esv2.adapter and
//     esv2.outcome (ok, conflict, error)
//   - esv2.events.appended (counter): events newly stored
//   - esv2.append.conflicts (counter)
//   - esv2.watch.lag (histogram, s): time from an event's Time to its
//     delivery by a watch
//   - esv2.update.retries (counter): Update attempts after a conflict
//   - esv2.update.give_ups (counter): Updates that gave up
//   - esv2.subscription.events (counter): events handed to handlers that
//     succeeded, by esv2.subscription
//   - esv2.subscription.lag (gauge): positions between the head and the
//     last event of the latest batch, by esv2.subscription
//   - esv2.subscription.parked (counter): events parked
//   - esv2.commits, esv2.commit.appends (counters) and
//     esv2.commit.group_size (gauge): group commit, from the adapter's
//     Stats, with [ObserveCommits]
package esotel
